// Fuzz: the real tsbridge executable (standalone, tsipam in-process, its own SQLite store) as a
// runtime calls it, inside a test host namespace: ADD with a mutated environment or config, then
// DEL with the same input (what runtimes do after a failed ADD too). Properties: a refused ADD
// answers a spec code (never 999 or a kernel refusal for bad input) and leaves no attachment
// state (veth, container interface, address, records); an accepted ADD answers a well-formed
// result and its DEL leaves no attachment state either.
import test from 'ava';
import { PREFIX } from '../../store/keys.js';
import { openStore } from '../../store/open.js';
import type { Netns } from '../harness/netns.js';
import { bridgeConf, makeWorld, type World } from '../cni/world.js';
import { caseSeed, ifname, mutateJson, nastyString, objectId, randomHex, Rng } from './gen.js';
import { settings, show } from './runner.js';

const FILE = 'test/fuzz/cni-flow.test.ts';
/** Codes a bad invocation may be answered with (plus 102 for an interface that already exists). */
const REFUSALS = new Set([1, 2, 4, 6, 7, 102]);

interface Snapshot {
  host: string[];
  ctr: string[];
  store: string[];
}

/** Store keys of one attachment (the network, its pool and rules stay by design: README). */
const ATTACHMENT_KEYS = ['endpoints/', 'ipam/addresses/', 'ipam/owners/', 'cni/', 'host-ports/'].map((k) => `${PREFIX}${k}`);

/**
 * What an attachment leaves: veth host ends, everything in the container namespace, and the
 * attachment's store keys. tsbridge keeps a network (bridge, rules, pool) after its last DEL, as
 * the reference bridge plugin does, so network-level state is not compared.
 */
async function snapshot(w: World, ctr: Netns): Promise<Snapshot> {
  const links = async (ns: Netns) => {
    const l = JSON.parse(await ns.ip('-j', 'addr', 'show')) as Array<{ ifname: string; mtu: number; addr_info?: Array<{ local: string; prefixlen: number }> }>;
    return l.map((x) => `${x.ifname} mtu=${x.mtu} ${(x.addr_info ?? []).filter((a) => !a.local.startsWith('fe80:')).map((a) => `${a.local}/${a.prefixlen}`).join(',')}`);
  };
  const s = await openStore(w.store);
  try {
    const { kvs } = await s.range(PREFIX);
    const store = kvs.filter((kv) => ATTACHMENT_KEYS.some((k) => kv.key.startsWith(k))).map((kv) => `${kv.key} ${kv.value}`);
    const veths = (await links(w.host)).filter((l) => /^tso[0-9a-f]{12} /.test(l));
    return { host: veths.sort(), ctr: (await links(ctr)).sort(), store: store.sort() };
  } finally {
    await s.close();
  }
}

function diff(a: Snapshot, b: Snapshot): string | undefined {
  const out: string[] = [];
  for (const k of ['host', 'ctr', 'store'] as const) {
    const gone = a[k].filter((x) => !b[k].includes(x));
    const added = b[k].filter((x) => !a[k].includes(x));
    if (gone.length || added.length) out.push(`${k}: -${show(gone)} +${show(added)}`);
  }
  return out.length ? out.join('\n') : undefined;
}

interface FlowCase {
  conf: Record<string, unknown>;
  env: { containerId: string; ifname: string; args?: string; netns?: string };
}

function generate(rng: Rng, w: World, ctr: Netns, i: number): FlowCase {
  const base = bridgeConf(w, '10.220.0.0/24', { bridge: 'fzcni0' });
  const env: FlowCase['env'] = { containerId: `fz${randomHex(rng, 12)}`, ifname: 'eth0', netns: ctr.path };
  let conf: Record<string, unknown> = base;
  const what = rng.int(4);
  if (what === 0) {
    conf = mutateJson(rng, base, 3) as Record<string, unknown>;
  } else if (what === 1) {
    conf = { ...base, runtimeConfig: mutateJson(rng, { portMappings: [{ hostPort: 8080 + i, containerPort: 80, protocol: 'tcp' }], ips: ['10.220.0.9/24'], mac: '02:42:0a:dc:00:09', aliases: ['web'] }, 2) };
  } else if (what === 2) {
    const odd: Array<Record<string, unknown>> = [
      { bridge: nastyString(rng) },
      { mtu: rng.pick([0, 67, 65536, '1500', -1]) },
      { ipam: { type: 'tsipam', ranges: [[{ subnet: rng.pick(['10.220.0.0/33', 'fd00::/129', 'x', '10.220.0.0/31']) }]] } },
      { isGateway: 'yes' },
      { hairpinMode: 3 },
    ];
    conf = { ...base, ...rng.pick(odd) };
  } else {
    env.ifname = ifname(rng);
    if (rng.chance(0.5)) env.containerId = objectId(rng);
    if (rng.chance(0.3)) env.args = rng.pick(['IP=10.220.0.300', 'MAC=01:00:5e:00:00:01', 'FOO=1', `IP=10.220.0.${20 + (i % 200)}`, 'IgnoreUnknown=1;X=y']);
    if (rng.chance(0.2)) env.netns = rng.pick(['relative', '/var/run/netns/tsot-none', '/proc/self/ns/net']);
  }
  // Never mutated: where the store lives and which daemon (none) the plugin may hand off to.
  return { conf: { ...(typeof conf === 'object' && conf !== null ? conf : {}), store: base.store, daemonSocket: base.daemonSocket }, env };
}

test('fuzz: tsbridge ADD/DEL with bad env and config (refusals leave no attachment; DEL removes what ADD made)', async (t) => {
  const s = settings(3, 100);
  const w = await makeWorld(t, 'fzcni');
  const ctr = await w.container('c');
  // Only our plugins: a mutated ipam type must not reach a reference plugin (and its data dir).
  const path = w.bin;
  const first = await snapshot(w, ctr);
  const failed: string[] = [];
  const outcomes: Record<string, number> = {};
  const started = performance.now();
  const indexes = s.only !== undefined ? [s.only] : Array.from({ length: s.cases }, (_, i) => i);
  for (const i of indexes) {
    const c = generate(new Rng(caseSeed(s.seed, i)), w, ctr, i);
    const fail = (why: string) => failed.push(`[fuzz cni-flow] seed ${s.seed} case ${i}: ${why}\n  input: ${show(c)}\n  replay: TSO_FUZZ_SEED=${s.seed} TSO_FUZZ_CASE=${i} node test/run.mjs ${FILE}`);
    const env = w.env(c.env.netns === undefined ? undefined : ({ path: c.env.netns } as Netns), c.env.containerId, { ifname: c.env.ifname, path, ...(c.env.args ? { args: c.env.args } : {}) });
    const add = await w.cni('tsbridge', 'ADD', c.conf, env);
    let label: string;
    if (add.code === 0) {
      label = 'added';
      if (!Array.isArray(add.json?.ips) || !Array.isArray(add.json?.interfaces)) fail(`ADD result ${add.stdout}`);
    } else {
      const code = add.json?.code;
      label = `refused ${code}`;
      if (!REFUSALS.has(code) || typeof add.json?.msg !== 'string') fail(`ADD refused with ${add.stdout.trim()} ${add.stderr.trim()}`);
      const d = diff(first, await snapshot(w, ctr));
      if (d) fail(`a refused ADD changed state:\n${d}`);
    }
    const del = await w.cni('tsbridge', 'DEL', c.conf, env);
    if (add.code === 0 && del.code !== 0) fail(`DEL after a successful ADD failed: ${del.stdout}`);
    const left = diff(first, await snapshot(w, ctr));
    if (left) {
      fail(`after DEL the state differs from the start:\n${left}`);
      break;
    }
    outcomes[label] = (outcomes[label] ?? 0) + 1;
    if (failed.length >= (s.maxFailures ?? 3)) break;
  }
  t.log(`[fuzz cni-flow] ${indexes.length} cases, seed ${s.seed}, ${((performance.now() - started) / 1000).toFixed(1)} s, ${failed.length} failing; outcomes ${JSON.stringify(outcomes)}`);
  if (failed.length) t.fail(failed.join('\n\n'));
  else t.pass();
});
