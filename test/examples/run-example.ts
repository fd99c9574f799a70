// Running an example script the way its README says (`node --import tsx examples/NAME/run.ts`,
// the npm-free form of `npx tsx …`) and looking for anything it left behind afterwards.
import type { ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rootSnapshot } from '../harness/root-guard.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface ExampleRun {
  child: ChildProcess;
  /** Resolves with the first stdout/stderr line matching. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>;
  /** Resolves when the script exits. */
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

/** Start `node --import tsx examples/<name>/run.ts`; killed (SIGKILL) after timeoutMs. */
export function startExample(name: string, timeoutMs = 180_000): ExampleRun {
  const child = spawn(process.execPath, ['--import', 'tsx', join('examples', name, 'run.ts')], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const waiters: { re: RegExp; resolve: (l: string) => void }[] = [];
  const scan = () => {
    for (const w of [...waiters]) {
      const line = (stdout + stderr).split('\n').find((l) => w.re.test(l));
      if (line !== undefined) (waiters.splice(waiters.indexOf(w), 1), w.resolve(line));
    }
  };
  child.stdout!.setEncoding('utf8').on('data', (d: string) => ((stdout += d), scan()));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => ((stderr += d), scan()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code, signal) => (clearTimeout(timer), resolve({ code, signal, stdout, stderr }))),
  );
  return {
    child,
    done,
    waitFor(re, waitMs = 120_000) {
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no line ${re} within ${waitMs} ms:\n${stdout}\n${stderr}`)), waitMs);
        waiters.push({ re, resolve: (l) => (clearTimeout(t), resolve(l)) });
        scan();
        // Rejecting after a resolve is a no-op: this only fires when the line never came.
        void done.then(() => (clearTimeout(t), reject(new Error(`exited before ${re}:\n${stdout}\n${stderr}`))));
      });
    },
  };
}

/** Run an example to its end. */
export function runExample(name: string, timeoutMs?: number) {
  return startExample(name, timeoutMs).done;
}

/**
 * What a run by process `pid` left: namespaces, /etc/netns entries and temp dirs named
 * `tsox-<pid base 36>-…`, and live processes whose argv mentions that prefix.
 */
export function leftovers(pid: number): string[] {
  const prefix = `tsox-${pid.toString(36)}-`;
  const out: string[] = [];
  const netns = existsSync('/run/netns') ? readdirSync('/run/netns') : [];
  out.push(...netns.filter((n) => n.startsWith(prefix)).map((n) => `netns ${n}`));
  if (existsSync('/etc/netns')) out.push(...readdirSync('/etc/netns').filter((n) => n.startsWith(prefix)).map((n) => `/etc/netns/${n}`));
  out.push(...readdirSync(tmpdir()).filter((n) => n.startsWith(prefix)).map((n) => `dir ${join(tmpdir(), n)}`));
  for (const p of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      if (argv.includes(prefix)) out.push(`process ${p}: ${argv.replace(/\0/g, ' ').slice(0, 120)}`);
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/**
 * The parts of the root namespace examples must never change: links and both firewalls.
 * (The bridge-nf sysctl is left out: a namespace turning it on loads br_netfilter, which makes
 * the knob appear everywhere; that is the kernel's doing, not a change of the root's settings.)
 */
export async function rootState(): Promise<string> {
  const s = await rootSnapshot();
  return JSON.stringify({ links: s.links, iptables: s.iptables, ip6tables: s.ip6tables, forwarding: [s.sysctls['net/ipv4/ip_forward'], s.sysctls['net/ipv6/conf/all/forwarding']] }, null, 1);
}

/** The `ok: …` lines of a run. */
export const oks = (stdout: string) => stdout.split('\n').filter((l) => l.startsWith('ok: '));

/** Run an example to its end and check what a user would: exit 0, each expected `ok:` line, nothing left, root unchanged. */
export async function checkExample(t: ExecutionContext, name: string, expected: RegExp[]): Promise<void> {
  const before = await rootState();
  const run = startExample(name);
  const r = await run.done;
  t.is(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const got = oks(r.stdout);
  t.is(got.length, expected.length, got.join('\n'));
  expected.forEach((re, i) => t.regex(got[i] ?? '', re));
  t.regex(r.stdout, new RegExp(`^example ${name}: all ${expected.length} checks passed$`, 'm'));
  t.regex(r.stdout, /^removed every namespace, process and file this example made$/m);
  t.deepEqual(leftovers(run.child.pid!), []);
  t.is(await rootState(), before, 'the root namespace is unchanged');
}
