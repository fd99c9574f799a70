// Hand a CNI invocation to the host daemon over its local socket (POST /v1/cni): the wire
// and the executable's client. The executable sends its raw CNI_* variables and stdin; the
// daemon (handoff-server.ts) re-validates them with the same parseEnv/parseRequest.
import { request } from 'node:http';
import { CniError, ErrorCode } from './errors.js';
import type { Result } from './types.js';
import { parseResult } from './version.js';

/** Path of the hand-off route on the daemon's local API. */
export const HANDOFF_PATH = '/v1/cni';

/** Body of POST /v1/cni. */
export interface HandOffRequest {
  /** The executable's name ("tsbridge", …): selects the daemon's handlers. */
  plugin: string;
  /** Only the CNI_* variables of the invocation. */
  env: Record<string, string>;
  /** stdin exactly as received. */
  stdin: string;
  /**
   * `"exec"` (the compiled launcher): answer with {@link ExecReply}, the exact output and
   * exit code of the executable. Absent: {@link HandOffReply} (this module's client).
   */
  reply?: 'exec';
}

/** Reply to a `reply: "exec"` request: what the executable prints and its exit code. */
export interface ExecReply {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Default wait for the daemon's answer; TSOVERLAY_CNI_HANDOFF_TIMEOUT_MS (1 ms … 1 h) overrides it (the launcher reads the same). */
export function handOffTimeoutMs(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.TSOVERLAY_CNI_HANDOFF_TIMEOUT_MS;
  const n = v !== undefined && /^\d+$/.test(v) ? Number(v) : NaN;
  return n > 0 && n <= 3_600_000 ? n : 30_000;
}

/** Reply body: the canonical result (ADD) or nothing on success, or the CNI error. */
export type HandOffReply = { result?: Result } | { error: { code: number; msg: string; details?: string } };

/** What the executable learns from a hand-off attempt. */
export type HandOffOutcome = { handled: false; reason: string } | { handled: true; result?: Result };

/** The CNI_* subset of an environment (what a hand-off carries). */
export function cniVars(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (k.startsWith('CNI_') && typeof v === 'string') out[k] = v;
  return out;
}

/** Errors meaning "no daemon listens there": the caller works standalone instead. */
const NO_DAEMON = new Set(['ENOENT', 'ECONNREFUSED', 'ENOTSOCK', 'ENOTDIR', 'EACCES']);

/**
 * POST the invocation to `socket`. Resolves `{handled: false}` only when nothing was
 * delivered (no socket, refused, or a daemon without the route: 404), so running
 * standalone cannot apply the request twice. A daemon error is thrown as its CniError;
 * a broken or slow exchange after delivery is CniError 11 (try again later).
 * `timeoutMs` defaults to {@link handOffTimeoutMs}.
 */
export function handOff(socket: string, body: HandOffRequest, timeoutMs = handOffTimeoutMs()): Promise<HandOffOutcome> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const req = request({ socketPath: socket, path: HANDOFF_PATH, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } });
    let connected = false;
    const timer = setTimeout(() => req.destroy(new CniError(ErrorCode.TryAgainLater, `daemon on ${socket} did not answer within ${timeoutMs} ms`)), timeoutMs);
    req.on('socket', (s) => s.once('connect', () => (connected = true)));
    req.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (!connected && err.code !== undefined && NO_DAEMON.has(err.code)) return resolve({ handled: false, reason: `${err.code} on ${socket}` });
      reject(err instanceof CniError ? err : new CniError(ErrorCode.TryAgainLater, `daemon on ${socket}: ${err.message}`));
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => {
        clearTimeout(timer);
        if (res.statusCode === 404) return resolve({ handled: false, reason: `daemon on ${socket} has no ${HANDOFF_PATH}` });
        try {
          resolve(readReply(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'), socket));
        } catch (err) {
          reject(err);
        }
      });
    });
    req.end(payload);
  });
}

function readReply(status: number, text: string, socket: string): HandOffOutcome {
  let reply: Partial<{ result: unknown; error: { code?: unknown; msg?: unknown; details?: unknown } }>;
  try {
    reply = JSON.parse(text);
  } catch {
    throw new CniError(ErrorCode.Internal, `daemon on ${socket} answered ${status} with non-JSON`, text.slice(0, 300));
  }
  const e = reply.error;
  if (e && typeof e.code === 'number') {
    throw new CniError(e.code, typeof e.msg === 'string' ? e.msg : '', typeof e.details === 'string' ? e.details : undefined);
  }
  if (status !== 200) throw new CniError(ErrorCode.Internal, `daemon on ${socket} answered ${status}`, text.slice(0, 300));
  // The daemon speaks the canonical (1.1.0) shape.
  return { handled: true, result: reply.result === undefined ? undefined : parseResult(reply.result, '1.1.0', 'daemon result') };
}
