// Running tsoverlay's CNI plugins like a runtime does: a CNI_PATH directory with one
// executable per plugin (a small sh wrapper running bin/<plugin>.ts through tsx, so no
// build is needed), the reference plugins after it, env + stdin per call.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { tryRun } from '../harness/exec.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const REFERENCE_DIR = '/usr/lib/cni';
export const OUR_PLUGINS = ['tsbridge', 'tshost', 'tsipam', 'tsportmap'] as const;

/** Register a cleanup (AVA's t.teardown shape). */
export interface Teardown {
  teardown(fn: () => unknown): void;
}

/** A temp directory removed at teardown. */
export async function tempDir(t: Teardown, tag = 'cni'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `tsot-${tag}-`));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** The source folders our executables load code from (not daemon/, dns/ or the CLI). */
const SOURCE_DIRS = ['netlink', 'store', 'ipam', 'plugins', 'proxy', ...OUR_PLUGINS.map((p) => `bin/${p}.ts`)];

/**
 * True when dist/ holds a compiled file at least as new as every TypeScript source (what
 * `npm test`'s pretest build leaves): the tests then run the same code ~3× faster per call.
 * TSOT_CNI_TSX=1 forces the TypeScript sources.
 */
export function distIsFresh(): boolean {
  if (process.env.TSOT_CNI_TSX === '1') return false;
  const fresh = (rel: string): boolean => {
    const out = join(ROOT, 'dist', rel.replace(/\.ts$/, '.js'));
    return existsSync(out) && statSync(out).mtimeMs >= statSync(join(ROOT, rel)).mtimeMs;
  };
  const walk = (rel: string): boolean => {
    const dir = join(ROOT, rel);
    if (!existsSync(dir)) return true;
    if (rel.endsWith('.ts')) return fresh(rel);
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const r = join(rel, e.name);
      if (e.isDirectory()) {
        if (!walk(r)) return false;
      } else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') && !fresh(r)) {
        return false;
      }
    }
    return true;
  };
  return SOURCE_DIRS.every(walk);
}

/** The compiled CNI launcher (bin/launcher/), when `npm run build` made it from the current source. */
export const LAUNCHER = join(ROOT, 'dist', 'bin', 'cni-launcher');
export function launcherBuilt(): boolean {
  return existsSync(LAUNCHER) && statSync(LAUNCHER).mtimeMs >= statSync(join(ROOT, 'bin', 'launcher', 'cni-launcher.c')).mtimeMs;
}

/** Plugin executables: `node` (sh wrappers over the entries) or `launcher` (TSOT_CNI_LAUNCHER=1 makes it the default). */
export type PluginMode = 'node' | 'launcher';
export function defaultMode(): PluginMode {
  return process.env.TSOT_CNI_LAUNCHER === '1' ? 'launcher' : 'node';
}

/**
 * A CNI bin directory holding our plugins as executables: sh wrappers running the compiled
 * entry when dist/ is fresh, else the TypeScript entry through tsx (loader by absolute URL,
 * so any cwd works). Mode `launcher`: copies of the compiled launcher with a
 * tsoverlay-launcher.conf naming the same entries (when dist/ is stale: small ESM shims that
 * load tsx and the TypeScript entry), as `tsoverlay install cni` lays them out.
 */
export async function pluginDir(t: Teardown, mode: PluginMode = defaultMode()): Promise<string> {
  const dir = await tempDir(t, 'cnibin');
  const loader = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
  const compiled = distIsFresh();
  if (mode === 'launcher') {
    if (!launcherBuilt()) throw new Error('dist/bin/cni-launcher is missing or older than bin/launcher/cni-launcher.c: run npm run build');
    let dist = join(ROOT, 'dist');
    if (!compiled) {
      dist = join(dir, '.entries');
      await mkdir(join(dist, 'bin'), { recursive: true });
      await writeFile(join(dist, 'package.json'), '{"type":"module"}\n');
      for (const p of [...OUR_PLUGINS, 'tsoverlay']) {
        await writeFile(join(dist, 'bin', `${p}.js`), `await import(${JSON.stringify(loader)});\nawait import(${JSON.stringify(pathToFileURL(join(ROOT, 'bin', `${p}.ts`)).href)});\n`);
      }
    }
    await writeFile(join(dir, 'tsoverlay-launcher.conf'), `node=${process.execPath}\ndist=${dist}\n`);
    for (const p of OUR_PLUGINS) await copyFile(LAUNCHER, join(dir, p));
    return dir;
  }
  for (const p of OUR_PLUGINS) {
    const file = join(dir, p);
    const run = compiled ? `'${join(ROOT, 'dist', 'bin', `${p}.js`)}'` : `--import='${loader}' '${join(ROOT, 'bin', `${p}.ts`)}'`;
    const script = `#!/bin/sh\nexec '${process.execPath}' ${run} "$@"\n`;
    await writeFile(file, script);
    await chmod(file, 0o755);
  }
  return dir;
}

/** Attachment parameters of one call. */
export interface CallEnv {
  containerId?: string;
  netns?: string;
  ifname?: string;
  args?: string;
  /** CNI_PATH; default `<bin>:/usr/lib/cni`. */
  path?: string;
  extra?: Record<string, string>;
  /** Run the plugin inside this (host) namespace, by path, as a runtime there would. */
  hostNetns?: string;
}

export interface CallResult {
  code: number;
  stdout: string;
  stderr: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

/** Run plugin `file` with a CNI command and config; never throws for a plugin error. */
export async function call(file: string, command: string, conf: unknown, env: CallEnv = {}, timeoutMs = 60_000): Promise<CallResult> {
  const vars: Record<string, string> = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', CNI_COMMAND: command, ...(env.extra ?? {}) };
  if (env.containerId !== undefined) vars.CNI_CONTAINERID = env.containerId;
  if (env.netns !== undefined) vars.CNI_NETNS = env.netns;
  if (env.ifname !== undefined) vars.CNI_IFNAME = env.ifname;
  if (env.args !== undefined) vars.CNI_ARGS = env.args;
  vars.CNI_PATH = env.path ?? `${join(file, '..')}:${REFERENCE_DIR}`;
  const input = typeof conf === 'string' ? conf : JSON.stringify(conf);
  const r = env.hostNetns
    ? await tryRun('nsenter', [`--net=${env.hostNetns}`, '--', file], { env: vars, input, timeoutMs })
    : await tryRun(file, [], { env: vars, input, timeoutMs });
  let json: unknown;
  try {
    json = r.stdout.trim() ? JSON.parse(r.stdout) : undefined;
  } catch {
    json = undefined;
  }
  return { ...r, json };
}

/** A plugin caller bound to a bin directory. */
export function caller(bin: string) {
  return (plugin: string, command: string, conf: unknown, env: CallEnv = {}) =>
    call(plugin.startsWith('/') ? plugin : join(plugin.startsWith('ts') ? bin : REFERENCE_DIR, plugin), command, conf, { path: `${bin}:${REFERENCE_DIR}`, ...env });
}

/** A conflist as runtimes read it. */
export interface Conflist {
  cniVersion: string;
  name: string;
  plugins: Array<Record<string, unknown> & { type: string; capabilities?: Record<string, boolean> }>;
}

/** What the runtime passes per attachment: capability arguments (portMappings, ips, mac, aliases…). */
export type RuntimeConfig = Record<string, unknown>;

function pluginConf(list: Conflist, i: number, rc: RuntimeConfig, prevResult?: unknown): Record<string, unknown> {
  const p = list.plugins[i]!;
  const conf: Record<string, unknown> = { ...p, name: list.name, cniVersion: list.cniVersion };
  // libcni: runtimeConfig carries only the capabilities the plugin declares.
  const caps = Object.entries(p.capabilities ?? {}).filter(([, on]) => on).map(([k]) => k);
  const runtime = Object.fromEntries(Object.entries(rc).filter(([k]) => caps.includes(k)));
  if (Object.keys(runtime).length) conf.runtimeConfig = runtime;
  if (prevResult !== undefined) conf.prevResult = prevResult;
  return conf;
}

/** Run a conflist like libcni: ADD in order (each gets the previous result), the last result returned. */
export async function conflistAdd(cni: ReturnType<typeof caller>, list: Conflist, env: CallEnv, rc: RuntimeConfig = {}): Promise<CallResult> {
  let prev: unknown;
  let last: CallResult | undefined;
  for (let i = 0; i < list.plugins.length; i++) {
    last = await cni(list.plugins[i]!.type, 'ADD', pluginConf(list, i, rc, prev), env);
    if (last.code !== 0) return last;
    prev = last.json;
  }
  return last!;
}

/** DEL (reverse order) or CHECK (in order) of a conflist with the cached ADD result. */
export async function conflistRun(cni: ReturnType<typeof caller>, command: 'DEL' | 'CHECK', list: Conflist, env: CallEnv, result: unknown, rc: RuntimeConfig = {}): Promise<CallResult[]> {
  const order = list.plugins.map((_, i) => i);
  if (command === 'DEL') order.reverse();
  const out: CallResult[] = [];
  for (const i of order) out.push(await cni(list.plugins[i]!.type, command, pluginConf(list, i, rc, result), env));
  return out;
}
