// The plugin runner shared by tsbridge, tshost, tsipam, tsportmap and tsoverlay: env +
// stdin → a validated CniRequest → the plugin's handler → result or error JSON on stdout
// and the exit code. Drivers only write handlers; nothing here knows a driver.
import { stat } from 'node:fs/promises';
import { parseAttachmentOptions, parseCniArgs, STANDARD_ARG_KEYS, type AttachmentOptions, type CniArgs } from './args.js';
import { CNI_NAME, parseEnv, type CniEnv } from './env.js';
import { CniError, ErrorCode, invalidEnv, toCniError } from './errors.js';
import { readStdinBriefly, versionAnswer } from './fast-entry.js';
import { cniVars, handOff } from './handoff.js';
import { CURRENT_VERSION, SUPPORTED_VERSIONS, negotiateVersion, parseResult, toWireResult, versionAtLeast } from './version.js';
import type { CniCommand, GcAttachment, NetConf, Result } from './types.js';

/** Everything a handler needs, validated; plain data (JSON-serialisable for a daemon hand-off). */
export interface CniRequest {
  command: Exclude<CniCommand, 'VERSION'>;
  env: CniEnv;
  /** The negotiated spec version; results are emitted in it. */
  cniVersion: string;
  /** The parsed config; unknown keys are kept and may be ignored. */
  conf: NetConf;
  /** stdin exactly as received: what a delegated plugin must get (SPEC §4). */
  stdin: string;
  /** `prevResult` in canonical form (ADD in a chain, DEL, CHECK). */
  prevResult?: Result;
  /** CNI_ARGS typed (empty on GC/STATUS). */
  args: CniArgs;
  /** runtimeConfig + args + CNI_ARGS merged (empty on GC/STATUS). */
  options: AttachmentOptions;
  /** GC only: the attachments that are still valid. */
  validAttachments: GcAttachment[];
}

/** A plugin's verbs. Throw CniError or any internal error (mapped by toCniError). */
export interface PluginHandlers {
  /** Return the canonical result; `undefined` passes `prevResult` through unchanged. */
  add(req: CniRequest): Promise<Result | undefined>;
  del(req: CniRequest): Promise<void>;
  check(req: CniRequest): Promise<void>;
  /** Absent: the plugin is always ready. */
  status?(req: CniRequest): Promise<void>;
  /** Absent: the plugin keeps nothing to collect. */
  gc?(req: CniRequest): Promise<void>;
}

/** What runPlugin needs to know about a plugin. */
export interface PluginSpec {
  /** Executable name, e.g. "tsbridge". */
  name: string;
  /** One line printed on stderr when run without CNI_COMMAND. */
  about: string;
  /** Defaults to SUPPORTED_VERSIONS. */
  versions?: readonly string[];
  /** CNI_ARGS keys beyond STANDARD_ARG_KEYS that this plugin accepts. */
  knownArgs?: readonly string[];
  /**
   * The verbs, or a loader for them: a loader is called only when the invocation is not
   * handed to the daemon, so the store and driver modules stay unloaded otherwise.
   */
  handlers: PluginHandlers | ((req?: CniRequest) => Promise<PluginHandlers>);
  /**
   * The daemon socket to hand this request to (e.g. `conf.daemonSocket` or the default),
   * or undefined to run locally. With no daemon listening, the handlers run here.
   */
  daemonSocket?(req: CniRequest): string | undefined;
  /** Longest wait for the daemon's answer (default 30 s) → CniError 11. */
  handOffTimeoutMs?: number;
  /**
   * Called when no daemon took the request, before the handlers run here: holds what the call
   * needs for its whole duration (the host's start-up lock, plugins/cni/standalone.ts) and
   * returns its release. The daemon socket is asked once more afterwards: a daemon that was
   * starting holds that lock until it answers.
   */
  standalone?(req: CniRequest): Promise<() => void>;
}

/** The handlers of a spec, loading them when given as a loader. */
export async function loadHandlers(spec: Pick<PluginSpec, 'handlers'>, req?: CniRequest): Promise<PluginHandlers> {
  return typeof spec.handlers === 'function' ? spec.handlers(req) : spec.handlers;
}

/** The process edges, injectable for tests and for a daemon serving requests. */
export interface CniIo {
  env: NodeJS.ProcessEnv;
  /** Resolves stdin's text; may throw CniError 5 (too large / unreadable). */
  readStdin(): Promise<string>;
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
  /** Whether `path` is this process's own netns (default: compare inodes). */
  isOwnNetns?(path: string): Promise<boolean>;
}

/** Largest stdin accepted (a config plus a long prevResult fits easily). */
export const MAX_STDIN_BYTES = 4 * 1024 * 1024;

/** Minimum config version per verb (libcni skel: CHECK from 0.4.0, STATUS/GC from 1.1.0). */
const MIN_VERSION: Partial<Record<CniCommand, string>> = { CHECK: '0.4.0', STATUS: '1.1.0', GC: '1.1.0' };

function decodeConf(stdin: string): NetConf {
  let conf: unknown;
  try {
    conf = JSON.parse(stdin);
  } catch (err) {
    throw new CniError(ErrorCode.DecodingFailure, `stdin is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof conf !== 'object' || conf === null || Array.isArray(conf)) {
    throw new CniError(ErrorCode.DecodingFailure, `stdin is not a JSON object: ${JSON.stringify(conf)?.slice(0, 80)}`);
  }
  const c = conf as NetConf;
  if (c.name === undefined || c.name === '') throw new CniError(ErrorCode.InvalidConfig, 'missing network name (field "name")');
  if (typeof c.name !== 'string' || !CNI_NAME.test(c.name)) {
    throw new CniError(ErrorCode.InvalidConfig, `invalid network name ${JSON.stringify(c.name)}: want a letter or digit, then letters, digits, "_", "." or "-"`);
  }
  return c;
}

function parseAttachments(conf: NetConf): GcAttachment[] {
  const raw = conf['cni.dev/valid-attachments'] ?? conf['cni.dev/attachments'] ?? [];
  if (!Array.isArray(raw)) throw new CniError(ErrorCode.DecodingFailure, `cni.dev/valid-attachments ${JSON.stringify(raw)}: not a list`);
  return raw.map((a: unknown, i) => {
    const o = a as Partial<GcAttachment> | null;
    if (typeof o?.containerID !== 'string' || typeof o.ifname !== 'string') {
      throw new CniError(ErrorCode.DecodingFailure, `cni.dev/valid-attachments[${i}] ${JSON.stringify(a)}: want {containerID, ifname} strings`);
    }
    return { containerID: o.containerID, ifname: o.ifname };
  });
}

function emptyOptions(args: CniArgs): AttachmentOptions {
  return { portMappings: [], ips: [], aliases: [], ipRanges: [], k8s: args.k8s };
}

/**
 * Build the request from a parsed env and stdin. Pure; throws CniError. DEL is
 * best-effort (SPEC §2): bad CNI_ARGS or runtimeConfig there yield empty options and a
 * warning instead of an error, so a DEL after a refused ADD still cleans up.
 */
export function parseRequest(env: CniEnv, stdin: string, spec: Pick<PluginSpec, 'versions' | 'knownArgs'>, warn: (m: string) => void = () => {}): CniRequest {
  const command = env.command as CniRequest['command'];
  const conf = decodeConf(stdin);
  const cniVersion = negotiateVersion(conf, spec.versions ?? SUPPORTED_VERSIONS);
  const min = MIN_VERSION[command];
  if (min !== undefined && !versionAtLeast(cniVersion, min)) {
    throw new CniError(ErrorCode.IncompatibleVersion, `cniVersion ${JSON.stringify(cniVersion)} does not allow ${command}`, `${command} needs ${min} or later`);
  }
  const attachment = command === 'ADD' || command === 'DEL' || command === 'CHECK';
  const noArgs = parseCniArgs([]);
  const req: CniRequest = { command, env, cniVersion, conf, stdin, args: noArgs, options: emptyOptions(noArgs), validAttachments: [] };
  if (command === 'GC') req.validAttachments = parseAttachments(conf);
  if (!attachment) return req;
  if (conf.prevResult !== undefined && conf.prevResult !== null) req.prevResult = parseResult(conf.prevResult, cniVersion);
  try {
    req.args = parseCniArgs(env.argPairs, [...STANDARD_ARG_KEYS, ...(spec.knownArgs ?? [])]);
    req.options = parseAttachmentOptions(conf, req.args);
  } catch (err) {
    if (command !== 'DEL') throw err;
    warn(`ignoring for DEL: ${(err as Error).message}`);
  }
  return req;
}

/** Run the handler for a request; returns the canonical result for ADD, else undefined. */
export async function dispatch(req: CniRequest, handlers: PluginHandlers): Promise<Result | undefined> {
  switch (req.command) {
    case 'ADD':
      return (await handlers.add(req)) ?? req.prevResult ?? {};
    case 'DEL':
      return void (await handlers.del(req));
    case 'CHECK':
      return void (await handlers.check(req));
    case 'STATUS':
      return void (await handlers.status?.(req));
    case 'GC':
      return void (await handlers.gc?.(req));
  }
}

async function inodeOf(path: string): Promise<string | undefined> {
  try {
    const s = await stat(path);
    return `${s.dev}:${s.ino}`;
  } catch {
    return undefined;
  }
}

/** True when `path` is the network namespace this process runs in. */
export async function isOwnNetns(path: string): Promise<boolean> {
  const [mine, theirs] = await Promise.all([inodeOf('/proc/self/ns/net'), inodeOf(path)]);
  return mine !== undefined && mine === theirs;
}

/**
 * One invocation end to end over `io`. Returns the exit code (0 success, 1 error);
 * every error is printed as `{cniVersion, code, msg, details}` on stdout.
 */
export async function runCni(spec: PluginSpec, io: CniIo): Promise<number> {
  const versions = spec.versions ?? SUPPORTED_VERSIONS;
  let errVersion = CURRENT_VERSION;
  try {
    if (!io.env.CNI_COMMAND) {
      io.stderr.write(`${spec.about}\nCNI protocol versions supported: ${versions.join(', ')}\n`);
      return 0;
    }
    const env = parseEnv(io.env);
    const stdin = await io.readStdin();
    if (env.command === 'VERSION') {
      io.stdout.write(versionAnswer(stdin, versions));
      return 0;
    }
    errVersion = declaredVersion(stdin) ?? errVersion;
    const req = parseRequest(env, stdin, spec, (m) => io.stderr.write(`${spec.name}: ${m}\n`));
    errVersion = req.cniVersion;
    if (env.netns !== '' && !env.netnsOverride && (await (io.isOwnNetns ?? isOwnNetns)(env.netns))) {
      // Configuring our own namespace would rename or delete the host's interfaces.
      throw invalidEnv('CNI_NETNS', env.netns, "is the plugin's own network namespace");
    }
    const result = await execute(spec, req, io.env);
    if (req.command === 'ADD') io.stdout.write(JSON.stringify(toWireResult(result ?? {}, req.cniVersion)) + '\n');
    return 0;
  } catch (err) {
    const e = toCniError(err);
    // An unclassified failure is a bug somewhere: keep its stack for the runtime's log.
    if (e.code === ErrorCode.Internal && err instanceof Error && err.stack) io.stderr.write(`${spec.name}: ${err.stack}\n`);
    io.stdout.write(JSON.stringify(e.toWire(errVersion)) + '\n');
    return 1;
  }
}

/** Hand the request to the daemon when the spec names a socket and one listens; else run here. */
async function execute(spec: PluginSpec, req: CniRequest, env: NodeJS.ProcessEnv): Promise<Result | undefined> {
  const socket = spec.daemonSocket?.(req);
  const toDaemon = () => handOff(socket!, { plugin: spec.name, env: cniVars(env), stdin: req.stdin }, spec.handOffTimeoutMs);
  if (socket) {
    const outcome = await toDaemon();
    if (outcome.handled) return outcome.result;
  }
  const release = socket ? await spec.standalone?.(req) : undefined;
  try {
    if (release) {
      const again = await toDaemon();
      if (again.handled) return again.result;
    }
    return await dispatch(req, await loadHandlers(spec, req));
  } finally {
    release?.();
  }
}

/** The config's own cniVersion when it is one we speak (used to label early errors). */
function declaredVersion(stdin: string): string | undefined {
  try {
    const v = (JSON.parse(stdin) as { cniVersion?: unknown })?.cniVersion;
    return typeof v === 'string' && SUPPORTED_VERSIONS.includes(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Read a stream to the end, refusing more than `limit` bytes (CniError 5). */
export async function readBounded(stream: AsyncIterable<Buffer | string>, limit = MAX_STDIN_BYTES): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of stream) {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      total += buf.length;
      if (total > limit) throw new CniError(ErrorCode.IoFailure, `stdin is larger than ${limit} bytes`);
      chunks.push(buf);
    }
  } catch (err) {
    if (err instanceof CniError) throw err;
    throw new CniError(ErrorCode.IoFailure, `cannot read stdin: ${(err as Error).message}`);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * The `main` of a plugin's heavy module: run one invocation on the real process and
 * exit with its code (handlers may leave store connections or timers open).
 */
export async function runPlugin(spec: PluginSpec): Promise<never> {
  const code = await runCni(spec, {
    env: process.env,
    // VERSION needs only cniVersion and must not hang on a stdin left open.
    readStdin: () => (process.env.CNI_COMMAND === 'VERSION' ? readStdinBriefly(200) : readBounded(process.stdin)),
    stdout: process.stdout,
    stderr: process.stderr,
  });
  // stdout/stderr to pipes and files are synchronous on Linux: nothing is lost here.
  process.exit(code);
}
