// Crash churn: mixed CNI ADD/DEL (tsbridge + tsipam, tsportmap for some containers) handed
// off to a real daemon per host while daemons are killed with SIGKILL and restarted and plugin
// processes are killed mid-call. Executables fall back to standalone while a daemon is down.
// Then a daemon restart (start-up reconcile) and CNI GC per host: no leaked address, link,
// rule or store record, no duplicate address, every surviving container reachable; and after
// DEL of the survivors, nothing of any container is left.
// Default: 1 host, 60 ops; TSO_FAULTS_FULL=1: 3 hosts, 200 ops (TSO_FAULTS_OPS overrides).
// Daemons restart while plugin calls are in flight (the start-up lock orders them);
// TSO_FAULTS_STARTUP_RACE=0 quiesces plugin calls around restarts instead.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon } from '../harness/daemon.js';
import { NetnsSet } from '../harness/netns.js';
import { pluginDir } from '../cni/harness.js';
import { verifyEmpty, verifyHost } from './fixtures/churn-verify.js';
import { churnScript, removeNetns, runChurn, type ChurnHost, type ChurnSize, type ChurnStats, type LiveContainer } from './fixtures/churn.js';
import { FaultRuntime, type FaultConflist } from './fixtures/cni-runtime.js';
import { envInt, figures, fullRun, percentile, pool, scenarioRng } from './fixtures/scenario.js';

const FILE = 'test/faults/crash-churn.test.ts';

function size(): ChurnSize {
  const full = fullRun();
  const ops = envInt('TSO_FAULTS_OPS', full ? 200 : 60);
  return { hosts: full ? 3 : 1, ops, workers: full ? 4 : 3, daemonKills: Math.max(1, Math.round(ops / 20)), cniKillRate: 0.15, portRate: 0.3 };
}

function conflists(i: number, store: string, socket: string): { plain: FaultConflist; ported: FaultConflist; gateway: string } {
  const bridge = {
    type: 'tsbridge',
    bridge: `tsfz${i}`,
    isGateway: true,
    ipMasq: true,
    store,
    daemonSocket: socket,
    ipam: { type: 'tsipam', ranges: [[{ subnet: `10.70.${i}.0/24` }]], routes: [{ dst: '0.0.0.0/0' }] },
  };
  const portmap = { type: 'tsportmap', capabilities: { portMappings: true }, store, daemonSocket: socket };
  return {
    plain: { cniVersion: '1.0.0', name: 'fzchurn', plugins: [bridge] },
    ported: { cniVersion: '1.0.0', name: 'fzchurn', plugins: [bridge, portmap] },
    gateway: `10.70.${i}.1`,
  };
}

test('kill -9 of daemons and plugins during ADD/DEL churn: reconcile + GC leave no leak, no duplicate', async (t) => {
  const sz = size();
  t.timeout(fullRun() ? 1_500_000 : 300_000);
  const { rng, seed } = scenarioRng(t, 'churn', FILE, 1011);
  const script = churnScript(rng, sz);
  const tag = `fz${seed.toString(36)}x`;
  const idOf = (c: number) => `${tag}${String(c).padStart(4, '0')}`;
  const set = new NetnsSet('fz');
  const work = mkdtempSync(join(tmpdir(), 'tsot-churn-'));
  const hosts: ChurnHost[] = [];
  t.teardown(async () => {
    for (const h of hosts) await h.daemon.cleanup();
    await set.cleanup();
    rmSync(work, { recursive: true, force: true });
  });
  const bin = await pluginDir(t);
  const started = Date.now();
  for (let i = 0; i < sz.hosts; i++) {
    const ns = await set.add(`h${i}`);
    const dir = join(work, `h${i}`);
    const opts = { dir, netnsPath: ns.path, extraArgs: ['--reconcile-interval', '2', '--log-level', 'info'] };
    const first = await startDaemon(opts);
    const h: ChurnHost = {
      index: i,
      ns,
      daemon: first,
      async restart() {
        h.daemon = await startDaemon(opts);
        await h.daemon.waitForLog('daemon ready', 120_000);
      },
      ...conflists(i, first.store, first.socket),
    };
    hosts.push(h);
    await first.waitForLog('daemon ready', 120_000);
  }
  const stats: ChurnStats = { adds: 0, addsOk: 0, addFailures: {}, dels: 0, delRetries: 0, cniKills: 0, daemonKills: 0, daemonRestarts: 0, killedStarting: 0, addMs: [], trace: new Map() };
  const rt = hosts.map(
    (h) =>
      new FaultRuntime(bin, h.ns.path, (w, r) => {
        const ctr = w.containerId?.startsWith(tag) ? Number(w.containerId.slice(-4)) : -2;
        const line = `  ${w.type} ${w.command} ${w.started}+${r.ms} code=${r.code}${r.killed ? ' killed' : ''} ${r.code ? `${r.stdout.slice(0, 200)} ${r.stderr.slice(-300)}` : ''}`;
        stats.trace.set(ctr, [...(stats.trace.get(ctr) ?? []), line]);
      }),
  );
  const alive = await runChurn({ set, rt, hosts, idOf, portOf: (c) => 21000 + c }, script, sz.workers, stats, process.env.TSO_FAULTS_STARTUP_RACE !== '0');
  const churnMs = Date.now() - started;

  // Full reconcile: every daemon restarted cleanly (start-up pass with pruning), then CNI GC.
  const idPattern = new RegExp(`${tag}\\d{4}`);
  let leaksBeforeGc = 0;
  for (const h of hosts) {
    leaksBeforeGc += (await verifyHost(h, alive, idOf, idPattern)).leaked;
    await h.daemon.stop();
    await h.restart();
    const valid = [...alive.values()].filter((c) => c.host === h.index).map((c) => c.attachment);
    const gc = await rt[h.index]!.gc(h.ported, valid);
    t.deepEqual(gc.map((g) => g.code), gc.map(() => 0), gc.map((g) => g.stdout + g.stderr).join('\n'));
  }
  const totals = { leaks: 0, duplicates: 0, unreachable: 0 };
  for (const h of hosts) {
    const v = await verifyHost(h, alive, idOf, idPattern);
    totals.leaks += v.leaked;
    totals.duplicates += v.duplicates;
    totals.unreachable += v.unreachable;
    if (v.problems.size) {
      const traceOf = (id: string) => stats.trace.get(id ? Number(id.slice(-4)) : -1) ?? [];
      t.log([...v.problems].map(([id, p]) => [`${id || `host ${h.index}`}: ${p.join('; ')}`, ...traceOf(id)].join('\n')).join('\n'));
      t.log(['daemon events:', ...(stats.trace.get(-1) ?? [])].join('\n'));
    }
    t.deepEqual([...v.problems.keys()], [], `host ${h.index}: see the log above`);
  }
  t.deepEqual(totals, { leaks: 0, duplicates: 0, unreachable: 0 });

  // Teardown as a runtime does it: DEL every survivor; then nothing of any container is left.
  await pool([...alive.values()], sz.workers, async (c: LiveContainer) => {
    await rt[c.host]!.delUntilDone(c.ports ? hosts[c.host]!.ported : hosts[c.host]!.plain, c.attachment, c.result);
    await removeNetns(c.ns);
  });
  for (const h of hosts) t.deepEqual(await verifyEmpty(h, idPattern), [], `host ${h.index} after DEL of every survivor`);
  const repairs = hosts.reduce((n, h) => n + h.daemon.logs.filter((l) => l.includes('reconcile repaired state')).length, 0);
  figures(t, 'churn', {
    seed,
    hosts: sz.hosts,
    ops: script.ops.length,
    adds: stats.adds,
    addsOk: stats.addsOk,
    addFailures: stats.addFailures,
    dels: stats.dels,
    delRetries: stats.delRetries,
    cniKills: stats.cniKills,
    daemonKills: stats.daemonKills,
    daemonRestarts: stats.daemonRestarts + hosts.length,
    killedStarting: stats.killedStarting,
    survivors: alive.size,
    leaksBeforeGc,
    ...totals,
    addP50ms: percentile(stats.addMs, 50),
    addP95ms: percentile(stats.addMs, 95),
    churnS: Math.round(churnMs / 100) / 10,
    totalS: Math.round((Date.now() - started) / 100) / 10,
    repairPassesLogged: repairs,
  });
});

