// `tsoverlay network create|rm`: they make bridges, VXLAN devices and firewall rules, so they ask
// the running daemon through its local API (daemon/network-admin.ts does the work there). Without
// a daemon they say which socket nobody answered on.
import { request } from 'node:http';
import { DEFAULT_DAEMON_SOCKET } from '../../plugins/cni/context.js';
import type { NetworkRecord } from '../../plugins/drivers/common/records.js';
import { CodedError } from '../../store/errors.js';
import { checkRequest } from '../network-admin.js';
import { mapOptions } from '../network-options.js';
import { UsageError } from './ls.js';

/** The local API answered with an error, or could not be reached. */
export class ApiError extends CodedError<string> {
  constructor(code: string, kind: 'bad-request' | 'not-found' | 'conflict' | 'unavailable' | 'internal', message: string, retryable = false) {
    super('ApiError', code, kind, message, retryable);
  }
}

export interface ApiOptions {
  /** The daemon's local API socket (default /run/tsoverlay/tsoverlay.sock). */
  socket?: string;
  json?: boolean;
}

const KINDS = new Set(['bad-request', 'not-found', 'conflict', 'unavailable', 'internal']);

/** One request to the daemon's local API; the JSON answer, or ApiError carrying the daemon's code and message. */
export function callDaemon(socket: string, method: string, path: string, body?: unknown, timeoutMs = 60_000): Promise<unknown> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, path, method, timeout: timeoutMs, headers: payload ? { 'content-type': 'application/json' } : {} }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => {
        let v: { code?: unknown; kind?: unknown; message?: unknown; retryable?: unknown } | undefined;
        try {
          v = JSON.parse(text);
        } catch {
          reject(new ApiError('bad-answer', 'internal', `the daemon at ${socket} answered ${res.statusCode} with no JSON`));
          return;
        }
        if ((res.statusCode ?? 500) < 300) return resolve(v);
        const kind = typeof v?.kind === 'string' && KINDS.has(v.kind) ? (v.kind as ApiError['kind']) : 'internal';
        reject(new ApiError(typeof v?.code === 'string' ? v.code : 'internal', kind, String(v?.message ?? `HTTP ${res.statusCode}`), v?.retryable === true));
      });
    });
    req.on('timeout', () => req.destroy(new ApiError('timeout', 'unavailable', `the daemon at ${socket} did not answer within ${timeoutMs / 1000} s`, true)));
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err instanceof ApiError) return reject(err);
      const why = err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? 'is the daemon running? start it with tsoverlay daemon' : err.message;
      reject(new ApiError('daemon-unreachable', 'unavailable', `cannot reach the tsoverlay daemon at ${socket} (${err.code ?? 'error'}: ${why}; another socket: --socket)`, true));
    });
    req.end(payload);
  });
}

export interface NetworkCreateOptions extends ApiOptions {
  driver: string;
  subnet?: string;
  gateway?: string;
  ipRange?: string;
  internal?: boolean;
  /** `-o key=value`, repeatable. */
  opt?: string[];
}

/** `-o key=value` words as an object; a word without `=` or with an empty key names itself. */
export function parseOpts(words: readonly string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const w of words) {
    const eq = w.indexOf('=');
    if (eq <= 0) throw new UsageError(`-o ${JSON.stringify(w)}: expected key=value`);
    const key = w.slice(0, eq);
    if (key in out) throw new UsageError(`-o ${JSON.stringify(w)}: ${key} is given twice`);
    out[key] = w.slice(eq + 1);
  }
  return out;
}

/** `tsoverlay network create --driver D [--subnet …] NAME`: prints the new network's id. */
export async function networkCreate(name: string, opts: NetworkCreateOptions): Promise<number> {
  const body = {
    name,
    driver: opts.driver,
    ...(opts.subnet !== undefined ? { subnet: opts.subnet } : {}),
    ...(opts.gateway !== undefined ? { gateway: opts.gateway } : {}),
    ...(opts.ipRange !== undefined ? { ipRange: opts.ipRange } : {}),
    internal: opts.internal === true,
    options: parseOpts(opts.opt),
  };
  // Checked here too, so a typo is named even when no daemon runs (the daemon checks again).
  mapOptions(checkRequest(body).driver, body.options);
  const rec = (await callDaemon(opts.socket ?? DEFAULT_DAEMON_SOCKET, 'POST', '/v1/networks', body)) as NetworkRecord;
  process.stdout.write(opts.json ? `${JSON.stringify(rec, null, 2)}\n` : `${rec.id}\n`);
  return 0;
}

/**
 * `tsoverlay network rm NET…`: each removed network's reference is printed (as docker does); a
 * failure is printed on stderr and the others are still tried; exit 1 when any failed.
 */
export async function networkRm(refs: string[], opts: ApiOptions): Promise<number> {
  const socket = opts.socket ?? DEFAULT_DAEMON_SOCKET;
  let failed = 0;
  const removed: NetworkRecord[] = [];
  for (const ref of refs) {
    try {
      removed.push((await callDaemon(socket, 'DELETE', `/v1/networks/${encodeURIComponent(ref)}`)) as NetworkRecord);
      if (!opts.json) process.stdout.write(`${ref}\n`);
    } catch (err) {
      if (!(err instanceof ApiError) && (err as { kind?: unknown }).kind === undefined) throw err;
      // The daemon is not there: every other name would say the same.
      if ((err as ApiError).code === 'daemon-unreachable') throw err;
      process.stderr.write(`tsoverlay: ${(err as Error).message}\n`);
      failed++;
    }
  }
  if (opts.json) process.stdout.write(`${JSON.stringify(removed, null, 2)}\n`);
  return failed > 0 ? 1 : 0;
}
