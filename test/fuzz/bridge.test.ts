// Fuzz: the bridge driver's createNetwork with bad and odd inputs (ids with unicode and path
// separators, overlapping subnets, gateways outside, IPv6 with tiny MTUs, bridge names that
// are taken, too long or another link's, bad booleans) on a real kernel in a test namespace
// with the real firewall. Properties: each input is created or refused with a documented code;
// a refusal leaves the kernel (links, addresses, iptables) and the store exactly as before;
// afterwards the namespace holds exactly the accepted networks, and deleting them all gives back
// the first snapshot.
import test from 'ava';
import { Firewall } from '../../proxy/firewall.js';
import { PREFIX } from '../../store/keys.js';
import { DEFAULT_LINK_GROUPS } from '../../plugins/drivers/bridge/bridge.js';
import { RecordStore } from '../../plugins/drivers/common/record-store.js';
import type { NetworkRecord } from '../../plugins/drivers/common/records.js';
import { bridgeEnv, type Env } from '../drivers/fixture.js';
import { caseSeed, mutateJson, nastyString, objectId, randomHex, Rng } from './gen.js';
import { settings, show } from './runner.js';

const FILE = 'test/fuzz/bridge.test.ts';
/** Refusals the driver documents for createNetwork (README "Options" and "Network-level checks"). */
const REFUSALS = new Set(['invalid-config', 'network-exists', 'bridge-in-use']);

interface Snapshot {
  links: string[];
  addrs: string[];
  rules: string[];
  store: string[];
}

async function snapshot(env: Env): Promise<Snapshot> {
  // A user's own bridge adopted by a network gets its MTU and up state back on delete (and on a
  // refused create), so it is compared like every other link.
  const links = (await env.h.links()).map((l) => `${l.name} ${l.kind ?? '-'} mtu=${l.mtu} ${l.up ? 'up' : 'down'} master=${l.master ?? '-'} group=${l.group}`);
  const addrs = (await env.h.addresses()).map((a) => `${a.dev} ${a.cidr}`);
  const rules: string[] = [];
  for (const tool of ['iptables-save', 'ip6tables-save']) {
    const out = await env.host.exec(tool, []);
    rules.push(...out.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => l.replace(/\[\d+:\d+\]/, '')));
  }
  const { kvs } = await env.store.range(PREFIX);
  return { links: links.sort(), addrs: addrs.sort(), rules, store: kvs.map((kv) => `${kv.key} ${kv.value}`).sort() };
}

function diff(a: Snapshot, b: Snapshot): string | undefined {
  const out: string[] = [];
  for (const k of ['links', 'addrs', 'rules', 'store'] as const) {
    const gone = a[k].filter((x) => !b[k].includes(x));
    const added = b[k].filter((x) => !a[k].includes(x));
    if (gone.length || added.length) out.push(`${k}: -${show(gone)} +${show(added)}`);
  }
  return out.length ? out.join('\n') : undefined;
}

const BRIDGES = ['fzb0', 'fzb1', 'fzb2'];
/** Made before the run: a user's own bridge (used, not owned) and a link of another kind. */
const USER_BRIDGE = 'fzuser0';
const OTHER_LINK = 'fzveth0';

/** A network input: plausible, with near misses in every field; `i` keeps subnets apart. */
function generate(rng: Rng, i: number): Record<string, unknown> {
  rng.strict = rng.chance(0.35);
  const v6 = rng.chance(0.25);
  const third = i % 250;
  const subnet = v6 ? `fd${randomHex(rng, 2)}:${i.toString(16)}::/64` : `10.${200 + rng.int(50)}.${third}.0/24`;
  const base = subnet.replace(/0\/24$|\/64$/, '');
  const gateway = rng.vpick([`${base}1`, `${base}1/${v6 ? 64 : 24}`, ''], ['10.0.0.1', '::1', `${base}0`, 'x', '10.0.0.1/8'], 0.2);
  const subnets: unknown[] = [{ subnet, ...(gateway ? { gateway } : {}) }];
  if (rng.chance(0.15)) subnets.push(rng.vpick([{ subnet: `fd77:${i.toString(16)}::/64` }], [{ subnet }, { subnet: '10.0.0.0/33' }, 'x', { subnet: '0.0.0.0/0' }]));
  const options: Record<string, unknown> = {};
  if (rng.chance(0.5)) options.bridge = rng.vpick([...BRIDGES, `fz${randomHex(rng, 6)}`, USER_BRIDGE], ['lo', OTHER_LINK, 'a'.repeat(16), 'br/0', 'br 0', 'é', '', '-br', 'br$x', '..']);
  if (rng.chance(0.4)) options.mtu = rng.vpick([1500, '1400', 9000, 1280, v6 ? 1280 : 68], [67, 65536, '1e3', -1, 'abc', 1.5]);
  // IPv6 below the kernel's IPv6 minimum MTU (the kernel then has no IPv6 on the link).
  if (v6 && rng.chance(0.15)) options.mtu = rng.pick([1279, 1200, 576, '68']);
  for (const k of ['icc', 'masquerade', 'hairpin']) if (rng.chance(0.2)) options[k] = rng.vpick<unknown>([true, 'false', 't', '0'], ['yes', 2, null]);
  if (rng.chance(0.15)) options.hostBindingIpv4 = rng.vpick(['127.0.0.1', '10.9.9.9'], ['::1', 'x', '']);
  if (rng.chance(0.1)) options[rng.pick(['unknownKey', 'com.docker.x'])] = 'v';
  const input: Record<string, unknown> = {
    id: rng.chance(0.7) ? randomHex(rng, 64) : rng.strict ? `net-${i}` : rng.oneOf(() => objectId(rng), () => `${nastyString(rng).slice(0, 200)}${i}`),
    subnets,
    ...(rng.chance(0.3) ? { name: rng.vpick([`n${i}`], [nastyString(rng)]) } : {}),
    ...(rng.chance(0.15) ? { internal: rng.vpick([true, false, 'true'], ['maybe']) } : {}),
    ...(rng.chance(0.1) ? { ipv6: rng.vpick([v6], [!v6, 'x']) } : {}),
    ...(Object.keys(options).length ? { options } : {}),
  };
  return rng.strict || rng.chance(0.5) ? input : (mutateJson(rng, input, 2) as Record<string, unknown>);
}

/** What an accepted network must have made: its bridge, MTU, gateways, and its record. */
async function checkAccepted(env: Env, rec: NetworkRecord): Promise<void> {
  const br = await env.h.link(rec.bridge!);
  if (!br || br.kind !== 'bridge') throw new Error(`no bridge ${rec.bridge}`);
  if (br.mtu !== rec.mtu) throw new Error(`bridge mtu ${br.mtu}, record ${rec.mtu}`);
  const addrs = (await env.h.addresses({ dev: rec.bridge! })).map((a) => a.address);
  for (const g of rec.gateways) if (!addrs.includes(g)) throw new Error(`gateway ${g} not on ${rec.bridge} (${addrs.join(' ')})`);
}

test('fuzz: bridge createNetwork on a real kernel (created or refused, nothing partial)', async (t) => {
  const s = settings(20, 400);
  const env = await bridgeEnv(t, 'fzbr');
  await env.host.exec('iptables', ['-P', 'FORWARD', 'DROP']);
  // Down and with its own MTU: a network that adopts it brings it up and sets its MTU, and gives both back.
  await env.host.ip('link', 'add', USER_BRIDGE, 'mtu', '1450', 'type', 'bridge');
  await env.host.ip('link', 'add', OTHER_LINK, 'type', 'veth', 'peer', 'name', 'fzveth1');
  const fw = new Firewall({ netnsPath: env.host.path });
  await fw.init();
  const driver = env.newDriver({ firewall: fw });
  const first = await snapshot(env);
  const accepted = new Map<string, NetworkRecord>();
  const outcomes: Record<string, number> = {};
  const failed: string[] = [];
  const started = performance.now();
  const indexes = s.only !== undefined ? [s.only] : Array.from({ length: s.cases }, (_, i) => i);
  let before = first;
  for (const i of indexes) {
    const input = generate(new Rng(caseSeed(s.seed, i)), i);
    const fail = (why: string) => failed.push(`[fuzz bridge] seed ${s.seed} case ${i}: ${why}\n  input: ${show(input)}\n  replay: TSO_FUZZ_SEED=${s.seed} TSO_FUZZ_CASE=${i} node test/run.mjs ${FILE}`);
    let label: string;
    try {
      const rec = await driver.createNetwork(input as never);
      await checkAccepted(env, rec);
      accepted.set(rec.id, rec);
      label = 'created';
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      label = `refused ${String(code)}`;
      if (typeof code !== 'string' || !REFUSALS.has(code)) fail(`refused with ${String(code)}: ${(err as Error).stack}`);
    }
    outcomes[label] = (outcomes[label] ?? 0) + 1;
    const after = await snapshot(env);
    if (label !== 'created') {
      const d = diff(before, after);
      if (d) fail(`a refusal changed the host:\n${d}`);
    }
    before = after;
    if (failed.length >= (s.maxFailures ?? 3)) break;
  }
  // The namespace holds exactly the accepted networks: their bridges and records, no others.
  const ours = (await env.h.links({ group: DEFAULT_LINK_GROUPS.bridge })).map((l) => l.name).sort();
  const want = [...new Set([...accepted.values()].map((r) => r.bridge!))].filter((b) => b !== USER_BRIDGE).sort();
  if (show(ours) !== show(want)) failed.push(`bridges ${show(ours)} but accepted networks have ${show(want)}`);
  const stored = (await new RecordStore(env.store, () => {}).listNetworks()).map((n) => n.id).sort();
  if (show(stored) !== show([...accepted.keys()].sort())) failed.push(`store holds ${show(stored)}, accepted ${show([...accepted.keys()].sort())}`);
  for (const id of accepted.keys()) await driver.deleteNetwork(id);
  const end = diff(first, await snapshot(env));
  if (end) failed.push(`after deleting every accepted network the host differs from the start:\n${end}`);
  t.log(`[fuzz bridge] ${indexes.length} cases, seed ${s.seed}, ${((performance.now() - started) / 1000).toFixed(1)} s, ${failed.length} failing; outcomes ${JSON.stringify(outcomes)}`);
  if (failed.length) t.fail(failed.join('\n\n'));
  else t.pass();
});
