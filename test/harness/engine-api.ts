// Small pieces shared by the Docker and podman harnesses: a GET over a unix socket,
// piping one program into another, and polling with a deadline.
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { HarnessError } from './harness-error.js';

/** GET `path` on an HTTP server listening on a unix socket; resolves with status and body. */
export function unixGet(socketPath: string, path: string, timeoutMs = 2_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method: 'GET', timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** Run `from` with its stdout piped into `to`'s stdin (no shell); throws if either fails. */
export function pipeCommands(
  from: [string, string[]],
  to: [string, string[]],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const a = spawn(from[0], from[1], { stdio: ['ignore', 'pipe', 'pipe'] });
    const b = spawn(to[0], to[1], { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
    a.stdout.pipe(b.stdin);
    let out = '';
    let err = '';
    b.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    a.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    b.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const timer = setTimeout(() => {
      a.kill('SIGKILL');
      b.kill('SIGKILL');
    }, opts.timeoutMs ?? 60_000);
    const codes: Array<number | null> = [];
    const done = () => {
      if (codes.length < 2) return;
      clearTimeout(timer);
      if (codes.every((c) => c === 0)) resolve(out);
      else reject(new HarnessError('harness-pipe-failed', 'internal', `${from[0]} | ${to[0]} exited ${codes.join('/')}: ${err.trim()}`));
    };
    a.on('error', reject);
    b.on('error', reject);
    a.on('close', (c) => {
      codes.push(c);
      done();
    });
    b.on('close', (c) => {
      codes.push(c);
      done();
    });
  });
}

/** Call `probe` every `intervalMs` until it returns true; throws `onTimeout()` after `timeoutMs`. */
export async function waitFor(
  probe: () => Promise<boolean> | boolean,
  timeoutMs: number,
  onTimeout: () => Error,
  intervalMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > deadline) throw onTimeout();
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** The last `lines` lines of a text (for error messages carrying a daemon log). */
export function tail(text: string, lines = 25): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}
