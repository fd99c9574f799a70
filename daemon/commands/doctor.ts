// `tsoverlay doctor [--json]`: checks what tsoverlay needs from this host and its store, and says
// how to fix what is wrong. Reads only, except a probe namespace it makes and deletes and one
// store key it writes and deletes. Exit 0 when every check passes, 1 otherwise.
import { hostname } from 'node:os';
import { Kernel } from '../../netlink/index.js';
import type { Check, Scope } from '../observability/doctor-check.js';
import { mtuCheck, peersCheck, storeCheck } from '../observability/doctor-cluster.js';
import { backendCheck, forwardCheck } from '../observability/doctor-firewall.js';
import { kernelLinkChecks, sysctlChecks } from '../observability/doctor-kernel.js';

export type { Check } from '../observability/doctor-check.js';

export interface DoctorOptions {
  /** Store URL (default `sqlite://<stateDir>/store.db`). */
  store?: string;
  stateDir: string;
  json?: boolean;
  /** Inspect this network namespace instead of the doctor's own (sysctls, iptables, routes, ping). */
  netnsPath?: string;
  /** This host's id, to find its advertise address (default: the host name). */
  hostId?: string;
  /** Per tool and store call, ms (default 5000). */
  timeoutMs?: number;
  /** Where the report goes (default stdout). */
  write?: (text: string) => void;
}

/** Run every check; never throws (a check that cannot run is a failed check). */
export async function doctorChecks(opts: DoctorOptions): Promise<Check[]> {
  const scope: Scope = { netnsPath: opts.netnsPath, timeoutMs: opts.timeoutMs ?? 5000 };
  const kernel = new Kernel({ timeoutMs: scope.timeoutMs });
  const url = opts.store ?? `sqlite://${opts.stateDir}/store.db`;
  const guard = (name: string, p: Promise<Check | Check[]>): Promise<Check[]> =>
    p.then(
      (c) => (Array.isArray(c) ? c : [c]),
      (err: Error) => [{ name, ok: false, detail: `the check itself failed: ${err.message}`, fix: 'run `tsoverlay doctor` as root' }],
    );
  const local = Promise.all([
    guard('kernel', kernelLinkChecks(kernel, scope)),
    guard('sysctl', sysctlChecks(kernel, scope)),
    guard('iptables-backend', backendCheck(scope)),
    guard('forward-policy', forwardCheck(scope)),
  ]);
  const { check, store } = await storeCheck(url, scope.timeoutMs);
  const cluster: Check[] = [check];
  if (store) {
    try {
      cluster.push(...(await guard('overlay-mtu', mtuCheck(store, kernel, scope, opts.hostId ?? hostname()))));
      cluster.push(...(await guard('peers', peersCheck(store, scope))));
    } finally {
      await store.close().catch(() => {});
    }
  }
  return [...(await local).flat(), ...cluster];
}

/** Text for people: one line per check, the fix under each failure. */
export function formatChecks(checks: Check[]): string {
  const width = Math.max(...checks.map((c) => c.name.length));
  const lines: string[] = [];
  for (const c of checks) {
    lines.push(`${c.ok ? 'ok  ' : 'FAIL'}  ${c.name.padEnd(width)}  ${c.detail}`);
    if (!c.ok && c.fix) lines.push(`${' '.repeat(width + 8)}fix: ${c.fix}`);
  }
  const failed = checks.filter((c) => !c.ok).length;
  lines.push(failed === 0 ? `all ${checks.length} checks passed` : `${failed} of ${checks.length} checks failed`);
  return `${lines.join('\n')}\n`;
}

/** `tsoverlay doctor`: print `{checks: [{name, ok, detail, fix}]}` (--json) or a table; 0 when all ok, else 1. */
export async function runDoctor(opts: DoctorOptions): Promise<number> {
  const checks = await doctorChecks(opts);
  const write = opts.write ?? ((s: string) => void process.stdout.write(s));
  write(opts.json ? `${JSON.stringify({ checks }, null, 2)}\n` : formatChecks(checks));
  return checks.every((c) => c.ok) ? 0 : 1;
}
