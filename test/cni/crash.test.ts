// Crash safety: tsbridge and tsportmap ADDs SIGKILLed at random (seeded) points, then a DEL
// for every attachment, as a runtime would after a failed ADD: no address, link, rule,
// record or host-port reservation may be left. TSOT_CRASH_N sets the count (default 20; 100 passes too, in ~3.5 min).
import test from 'ava';
import { spawn } from 'node:child_process';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { keys } from '../../store/keys.js';
import { openStore } from '../../store/open.js';
import type { Netns } from '../harness/netns.js';
import { REFERENCE_DIR, type CallEnv } from './harness.js';
import { allocations, bridgeConf, endpointRecords, hostVeths, iptablesSave, makeWorld, ping, type World } from './world.js';

const N = Number(process.env.TSOT_CRASH_N ?? 20);
const SEED = Number(process.env.TSOT_CRASH_SEED ?? 20261130);

/** mulberry32: a small seeded PRNG (the same kill points on every run). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** Run a plugin in the host namespace; SIGKILL it after killMs (undefined: let it finish). Resolves stdout and whether it was killed. */
function runKillable(w: World, plugin: string, command: string, conf: unknown, env: CallEnv, killMs?: number): Promise<{ code: number | null; stdout: string; killed: boolean }> {
  return new Promise((resolve, reject) => {
    const vars: Record<string, string> = { PATH: process.env.PATH ?? '', CNI_COMMAND: command, CNI_CONTAINERID: env.containerId!, CNI_IFNAME: 'eth0', CNI_PATH: `${w.bin}:${REFERENCE_DIR}`, TSOVERLAY_CNI_LOCK_DIR: w.dir };
    if (env.netns) vars.CNI_NETNS = env.netns;
    // nsenter (no --fork) execs sh, which execs node: the pid is the plugin's all along.
    const child = spawn('nsenter', [`--net=${w.host.path}`, '--', join(w.bin, plugin)], { env: vars, stdio: ['pipe', 'pipe', 'ignore'] });
    let out = '';
    let killed = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    const killer = killMs === undefined ? undefined : setTimeout(() => ((killed = true), child.kill('SIGKILL')), killMs);
    const guard = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      if (killer) clearTimeout(killer);
      clearTimeout(guard);
      resolve({ code, stdout: out, killed: killed && code === null });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(JSON.stringify(conf));
  });
}

async function pool<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all(Array.from({ length: width }, async () => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) await fn(item);
  }));
}

test(`${N} ADDs killed at random points, then DEL of each: nothing leaks`, async (t) => {
  t.timeout(240_000);
  const w = await makeWorld(t, 'crash');
  const rand = prng(SEED);
  const br = bridgeConf(w, '10.226.0.0/24');
  const pm = { cniVersion: '1.0.0', name: 'tsot-br', type: 'tsportmap', store: w.store, daemonSocket: join(w.dir, 'none.sock') };
  const ctrs: Netns[] = [];
  for (let i = 0; i < N; i++) ctrs.push(await w.container(`k${i}`));
  // One undisturbed ADD to learn how long an ADD takes here; kill points spread over 1.2× that.
  const t0 = Date.now();
  const warm = await runKillable(w, 'tsbridge', 'ADD', br, { containerId: 'k0', netns: ctrs[0]!.path });
  t.is(warm.code, 0, warm.stdout);
  const span = (Date.now() - t0) * 1.2;
  const plan = ctrs.map((ns, i) => ({ i, ns, killBridge: i === 0 ? undefined : rand() * span, killPortmap: rand() * span }));
  let killed = 0;
  await pool(plan, 3, async ({ i, ns, killBridge, killPortmap }) => {
    const env = { containerId: `k${i}`, netns: ns.path };
    const add = i === 0 ? warm : await runKillable(w, 'tsbridge', 'ADD', br, env, killBridge);
    if (add.killed) killed++;
    if (add.code !== 0) return;
    const rc = { portMappings: [{ hostPort: 9000 + i, containerPort: 80, protocol: 'tcp' }] };
    const r = await runKillable(w, 'tsportmap', 'ADD', { ...pm, runtimeConfig: rc, prevResult: JSON.parse(add.stdout) }, env, killPortmap);
    if (r.killed) killed++;
  });
  t.log(`${killed} of ${2 * N - 1} plugin runs were killed mid-way (seed ${SEED})`);
  t.true(killed > 0);
  await pool(plan, 3, async ({ i, ns }) => {
    const env = { containerId: `k${i}`, netns: ns.path };
    for (const [plugin, conf] of [['tsportmap', pm], ['tsbridge', br]] as const) {
      const del = await runKillable(w, plugin, 'DEL', conf, env);
      t.is(del.code, 0, `${plugin} DEL k${i}: ${del.stdout}`);
    }
  });
  t.deepEqual(await hostVeths(w.host), [], 'no veth left');
  t.deepEqual(await allocations(w.store), [], 'no address left');
  t.deepEqual(await endpointRecords(w.store), [], 'no endpoint record left');
  t.notRegex(await iptablesSave(w.host), /DNAT --to-destination/, 'no DNAT rule left');
  const s = await openStore(w.store);
  try {
    t.deepEqual((await s.range(keys.cniAttachments())).kvs.map((kv) => kv.key), [], 'no attachment record left');
    const ports = (await s.range(keys.hostPorts(hostname()))).kvs.map((kv) => kv.key);
    t.deepEqual(ports, [], 'no host-port reservation left');
  } finally {
    await s.close();
  }
  // The network still works: a fresh container gets an address and reaches the gateway.
  const again = await runKillable(w, 'tsbridge', 'ADD', br, { containerId: 'after', netns: ctrs[0]!.path });
  t.is(again.code, 0, again.stdout);
  t.true(await ping(ctrs[0]!, '10.226.0.1'));
});
