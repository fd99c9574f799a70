// Run a delegated plugin (IPAM) the CNI way (SPEC §4): find `type` in CNI_PATH, pass
// the same CNI environment and the complete config on stdin, forward its stderr, and
// turn its answer into a canonical Result or its own CniError (code and msg kept).
import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { CniEnv } from './env.js';
import { CniError, ErrorCode, invalidConfig } from './errors.js';
import type { CniCommand, Result } from './types.js';
import { parseResult } from './version.js';

/** A delegated plugin's name: a file name, never a path (a `type` must not escape CNI_PATH). */
export function checkPluginType(type: unknown, field = 'type'): string {
  if (typeof type !== 'string' || type === '') throw invalidConfig(field, type, 'missing or not a string');
  if (type.includes('/') || type.includes('\\') || type.includes('..') || type.includes('\0')) {
    throw invalidConfig(field, type, 'must be a plugin file name, not a path');
  }
  if (type.length > 255) throw invalidConfig(field, type, 'is longer than 255 characters');
  return type;
}

/**
 * The first executable regular file named `type` in `dirs` (CNI_PATH order).
 * Throws CniError 4 when CNI_PATH is empty, 7 when no directory has it.
 */
export async function findPlugin(type: string, dirs: readonly string[], field = 'type'): Promise<string> {
  checkPluginType(type, field);
  if (dirs.length === 0) {
    throw new CniError(ErrorCode.InvalidEnvironment, `CNI_PATH is empty: cannot find plugin ${JSON.stringify(type)} (${field})`);
  }
  for (const dir of dirs) {
    const file = join(dir, type);
    try {
      if (!(await stat(file)).isFile()) continue;
      await access(file, constants.X_OK);
      return file;
    } catch {
      // Not here (or not executable): keep searching, as libcni's FindInPath does.
    }
  }
  throw new CniError(ErrorCode.InvalidConfig, `plugin ${JSON.stringify(type)} (${field}) not found in CNI_PATH ${JSON.stringify(dirs.join(':'))}`);
}

/** The CNI variables a delegate gets: ours, with CNI_COMMAND replaced by `command`. */
export function delegateEnv(env: CniEnv, command: Exclude<CniCommand, 'VERSION'>, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...base, CNI_COMMAND: command, CNI_PATH: env.path.join(':') };
  const set = (k: string, v: string): void => {
    if (v !== '') out[k] = v;
    else delete out[k];
  };
  set('CNI_CONTAINERID', env.containerId);
  set('CNI_NETNS', env.netns);
  set('CNI_IFNAME', env.ifname);
  set('CNI_ARGS', env.args);
  if (env.netnsOverride) out.CNI_NETNS_OVERRIDE = '1';
  return out;
}

/** One delegation. */
export interface DelegateOptions {
  /** The plugin name (`ipam.type`), checked by checkPluginType. */
  type: string;
  command: Exclude<CniCommand, 'VERSION'>;
  /** The complete config the calling plugin received (string as-is, object JSON-encoded). */
  stdin: string | object;
  /** Our parsed environment; the delegate receives the same values. */
  env: CniEnv;
  /** The config's negotiated version: the delegate answers in it. */
  cniVersion: string;
  /** Field name used in errors (default "ipam.type"). */
  field?: string;
  /** Kill the delegate after this long (default 30 s) → CniError 11. */
  timeoutMs?: number;
  /** Where the delegate's stderr goes (default our stderr, as SPEC §4 asks). */
  stderr?: { write(s: string | Buffer): unknown };
  /** Base process environment (default process.env). */
  baseEnv?: NodeJS.ProcessEnv;
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  timedOut: boolean;
}

function execPlugin(file: string, opts: DelegateOptions): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, [], { env: delegateEnv(opts.env, opts.command, opts.baseEnv), stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 30_000);
    const sink = opts.stderr ?? process.stderr;
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => sink.write(d));
    // A delegate may exit without reading its stdin: EPIPE then is not our failure.
    child.stdin.on('error', () => {});
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new CniError(ErrorCode.Internal, `cannot run plugin ${JSON.stringify(opts.type)} (${file}): ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out).toString('utf8'), timedOut });
    });
    child.stdin.end(typeof opts.stdin === 'string' ? opts.stdin : JSON.stringify(opts.stdin));
  });
}

/** The delegate's own error, if its stdout holds one; else a generic 999. */
function delegateError(type: string, exit: Exit): CniError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(exit.stdout);
  } catch {
    parsed = undefined;
  }
  const e = parsed as { code?: unknown; msg?: unknown; details?: unknown } | undefined;
  if (e && typeof e.code === 'number' && Number.isInteger(e.code)) {
    return new CniError(e.code, typeof e.msg === 'string' ? e.msg : '', typeof e.details === 'string' ? e.details : undefined);
  }
  const how = exit.signal ? `was killed by ${exit.signal}` : `exited with status ${exit.code}`;
  return new CniError(ErrorCode.Internal, `plugin ${JSON.stringify(type)} ${how}`, exit.stdout.trim().slice(0, 500) || undefined);
}

/**
 * Run `type` with `command`. ADD resolves the delegate's result in canonical form;
 * other verbs resolve undefined. A delegate error is rethrown with its own code, msg
 * and details; a timeout is CniError 11; an unparsable ADD answer is CniError 6.
 */
export async function delegate(opts: DelegateOptions): Promise<Result | undefined> {
  const field = opts.field ?? 'ipam.type';
  const file = await findPlugin(checkPluginType(opts.type, field), opts.env.path, field);
  const exit = await execPlugin(file, opts);
  if (exit.timedOut) {
    throw new CniError(ErrorCode.TryAgainLater, `plugin ${JSON.stringify(opts.type)} did not answer ${opts.command} within ${opts.timeoutMs ?? 30_000} ms`);
  }
  if (exit.code !== 0) throw delegateError(opts.type, exit);
  if (opts.command !== 'ADD') return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(exit.stdout);
  } catch {
    throw new CniError(ErrorCode.DecodingFailure, `plugin ${JSON.stringify(opts.type)} answered ADD with non-JSON output`, exit.stdout.trim().slice(0, 500));
  }
  return parseResult(raw, opts.cniVersion, `${opts.type} result`);
}
