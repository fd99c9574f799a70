// Golden tests of the nft backend's rendered text (pure: nothing is spawned), the read-back
// parser, and the refusal of unvalidated values. UPDATE_GOLDEN=1 rewrites the files.
import test from 'ava';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { backendKind } from '../../proxy/backend.js';
import { ProxyError } from '../../proxy/errors.js';
import { NetnsTools } from '../../proxy/exec.js';
import { NftDesired } from '../../proxy/nft-desired.js';
import { keyText, NftKernel, parseNftJson } from '../../proxy/nft-kernel.js';
import { renderNftRule } from '../../proxy/nft-render.js';
import { checkService } from '../../proxy/specs.js';
import { resolveConfig } from '../../daemon/config.js';
import { fillSample } from './sample.js';

const GOLDEN = new URL('./golden/', import.meta.url);

function golden(t: { is: (a: string, b: string, m?: string) => void }, name: string, text: string): void {
  const file = new URL(name, GOLDEN);
  if (process.env.UPDATE_GOLDEN === '1' || !existsSync(file)) {
    mkdirSync(GOLDEN, { recursive: true });
    writeFileSync(file, text);
  }
  t.is(text, readFileSync(file, 'utf8'), `golden ${name}`);
}

/** A kernel planner that believes the table is empty (no spawn happens in plan()). */
function planner(): NftKernel {
  return new NftKernel(new NetnsTools());
}

/** Plan everything, then pretend it was applied. */
function applied(d: NftDesired): { k: NftKernel; full: string } {
  const k = planner();
  const p = k.plan(d, d.allKeys());
  p.commit(k.applied);
  return { k, full: p.text };
}

test('full table text matches the golden file', (t) => {
  const { full } = applied(fillSample(new NftDesired()));
  golden(t, 'nft-full.txt', full);
  t.true(full.startsWith('add table inet tsoverlay\n'));
  t.true(full.includes('add chain inet tsoverlay nat-prerouting { type nat hook prerouting priority dstnat + 10; policy accept; }'), 'after iptables\' own nat chains');
  t.true(full.includes('add chain inet tsoverlay filter-forward { type filter hook forward priority filter - 10; policy accept; }'), 'before iptables\' FORWARD, so the mark is set in time');
  t.regex(full, /add rule inet tsoverlay nat-prerouting meta nfproto ipv4 fib daddr type local jump published comment "[0-9a-f]{12}"/, 'DNAT only for local destinations');
  t.regex(full, /add rule inet tsoverlay nat-output ip6 daddr != ::1 fib daddr type local jump published/);
  t.true(full.includes('add element inet tsoverlay pub4any { tcp . 8080 : 172.30.0.2 . 80 }'));
  t.true(full.includes('add element inet tsoverlay pub4 { 127.0.0.1 . udp . 5353 : 172.30.0.2 . 53, 10.0.0.1 . sctp . 49200 : 172.30.0.2 . 9 }'));
  t.true(full.includes('add element inet tsoverlay pub6any { tcp . 8080 : fd30::2 . 80 }'));
  t.true(full.includes('add element inet tsoverlay link4d { 172.30.0.3 . 172.30.0.2 . "tsbr-web" . tcp . 5432 }'));
  t.true(full.includes('add element inet tsoverlay link4s { 172.30.0.2 . 172.30.0.3 . "tsbr-web" . tcp . 5432 }'));
  t.regex(full, /numgen random mod 3 vmap \{ 0 : goto sep-[0-9a-f]{16}, 1 : goto sep-[0-9a-f]{16}, 2 : goto sep-[0-9a-f]{16} \}/, 'even spread');
  t.regex(full, /update @aff-[0-9a-f]{16} \{ ip saddr \} dnat ip to 172\.30\.0\.4:8080/, 'affinity');
  t.true(full.includes('ip saddr 172.30.0.0/24 oifname "tsbr-web" ct status dnat masquerade'), 'hairpin');
  t.true(full.includes('ip daddr 127.0.0.0/8 iifname != "lo" drop'), 'CVE-2020-8558');
  t.true(full.includes('meta nfproto ipv4 iifname "tsbr-web" oifname "tsbr-web" drop'), 'ICC off');
  t.false(full.includes('ip saddr 172.31.0.0/24 oifname != "tsbr-back" masquerade'), 'internal networks are not masqueraded');
});

test('one mapping change is one element statement at any size; one backend less rewrites one chain', (t) => {
  const d = fillSample(new NftDesired());
  for (let i = 0; i < 2000; i++) d.setBindings(`bulk${i}`, [], [{ proto: 'tcp', hostIp: '0.0.0.0', hostPort: 20000 + i, containerIp: '172.30.0.9', containerPort: 80 }]);
  const { k } = applied(d);
  const b = { proto: 'tcp' as const, hostIp: '0.0.0.0', hostPort: 8081, containerIp: '172.30.0.9', containerPort: 80 };
  const add = k.plan(d, [...d.setBindings('ep9', [], [b])[4]]);
  golden(t, 'nft-diff-add-port.txt', add.text);
  add.commit(k.applied);
  const del = k.plan(d, [...d.setBindings('ep9', [b], [])[4]]);
  t.is(del.text, 'add table inet tsoverlay\ndelete element inet tsoverlay pub4any { tcp . 8081 }\n');
  del.commit(k.applied);
  const moved = k.plan(d, [...d.setBindings('bulk0', [{ ...b, hostPort: 20000 }], [{ ...b, hostPort: 20000, containerIp: '172.30.0.8' }])[4]]);
  t.is(moved.text, 'add table inet tsoverlay\ndelete element inet tsoverlay pub4any { tcp . 20000 }\nadd element inet tsoverlay pub4any { tcp . 20000 : 172.30.0.8 . 80 }\n', 'a changed target is delete + add in one transaction');
  moved.commit(k.applied);
  const svc = k.plan(d, [...d.setService('api', checkService({ name: 'api', vip: '10.96.0.10', ports: [{ proto: 'tcp', port: 80, targetPort: 8080 }], backends: ['172.30.0.2', '172.30.0.3'], affinitySeconds: 600 }))[4]]);
  golden(t, 'nft-diff-service-backend-gone.txt', svc.text);
  t.is(svc.text.match(/^flush chain inet tsoverlay svc-/gm)?.length, 1, 'the svc chain is the one rewritten');
  t.is(svc.text.match(/^delete chain/gm)?.length, 1, 'the gone backend\'s sep chain');
  t.is(svc.text.match(/^delete set/gm)?.length, 1, 'and its affinity set');
  t.true(svc.text.indexOf('flush chain') < svc.text.indexOf('delete chain'), 'references go before the chain');
  svc.commit(k.applied);
  t.is(k.plan(d, d.allKeys()).text, '', 'nothing left to do');
  const gone = k.plan(d, [...d.setService('api', undefined)[4]]).text;
  t.true(gone.indexOf('delete element inet tsoverlay svc4') < gone.indexOf('delete chain'), 'the VIP element goes before its chain');
});

test('nft -j output parses into chains (rule tags), sets and elements', (t) => {
  const json = JSON.stringify({
    nftables: [
      { metainfo: { version: '1.0.6' } },
      { table: { family: 'inet', name: 'tsoverlay' } },
      { map: { name: 'pub4any', type: ['inet_proto', 'inet_service'], map: 'ipv4_addr . inet_service', elem: [[{ concat: ['tcp', 8080] }, { concat: ['172.30.0.2', 80] }]] } },
      { map: { name: 'svc4', elem: [[{ concat: ['10.96.0.10', 'tcp', 80] }, { goto: { target: 'svc-0123456789abcdef' } }]] } },
      { set: { name: 'link4d', elem: [{ concat: ['172.30.0.3', '172.30.0.2', 'tsbr-web', 'tcp', 5432] }] } },
      { set: { name: 'aff-0123456789abcdef', elem: [{ elem: { val: '10.0.0.9', timeout: 600, expires: 590 } }] } },
      { chain: { name: 'published' } },
      { rule: { chain: 'published', comment: 'aaaaaaaaaaaa', expr: [] } },
      { rule: { chain: 'published', expr: [] } },
    ],
  });
  const a = parseNftJson(json);
  t.deepEqual(a.chains.get('published'), ['aaaaaaaaaaaa', ''], 'a foreign rule shows as an untagged entry');
  t.is(a.elems.get('pub4any')?.get('tcp . 8080'), '172.30.0.2 . 80');
  t.is(a.elems.get('svc4')?.get('10.96.0.10 . tcp . 80'), 'goto svc-0123456789abcdef');
  t.is(a.elems.get('link4d')?.get('172.30.0.3 . 172.30.0.2 . tsbr-web . tcp . 5432'), '');
  t.is(a.sets.get('pub4any'), 'map');
  t.false(a.elems.has('aff-0123456789abcdef'), 'affinity sets are filled by the packet path, not compared');
});

test('values that were not validated never reach the nft text', (t) => {
  const bad = [
    { dst: '1.2.3.4/32 accept', target: { kind: 'DROP' } },
    { in: { name: 'br0" accept' }, target: { kind: 'DROP' } },
    { proto: 'tcp', dport: 70000, target: { kind: 'DROP' } },
    { target: { kind: 'jump', chain: 'DOCKER' } },
    { target: { kind: 'DNAT', ip: '10.0.0.1', port: 1 } },
    { proto: 'tcp', target: { kind: 'DNAT', ip: '10.0.0.1:80', port: 1 } },
    { proto: 'tcp', probability: 0.5, target: { kind: 'DROP' } },
    { ctstate: ['NEW', 'DNAT'], target: { kind: 'DROP' } },
  ];
  for (const r of bad) t.throws(() => renderNftRule(r as never, 4, 'filter'), { instanceOf: ProxyError }, JSON.stringify(r));
  // Elements read back from the kernel are re-validated before a delete names them.
  t.is(keyText('link4d', '10.0.0.1 . 10.0.0.2 . br0 . tcp . 80'), '10.0.0.1 . 10.0.0.2 . "br0" . tcp . 80');
  t.is(keyText('link4d', '10.0.0.1 . 10.0.0.2 . br0" } ; flush ruleset ; { . tcp . 80'), undefined);
  t.is(keyText('pub4any', 'tcp . 99999'), undefined);
});

test('the backend is chosen by name, once: firewallBackend in the daemon config', (t) => {
  t.is(backendKind('nft'), 'nft');
  t.throws(() => backendKind('ipvs'));
  t.is(resolveConfig([]).firewallBackend, 'iptables', 'the default stays iptables');
  t.is(resolveConfig([{ source: 'flags', values: { firewallBackend: 'nft' } }]).firewallBackend, 'nft');
  t.throws(() => resolveConfig([{ source: 'config file', values: { firewallBackend: 'nftables' } }]), { message: /firewallBackend: expected iptables or nft/ });
});

test('shared elements are reference-counted; a removed service takes its chains and affinity sets along; IPv6 services', (t) => {
  const d = new NftDesired();
  const link = { networkId: 'web', bridge: 'tsbr-web', fromIp: '172.30.0.3', toIp: '172.30.0.2', ports: [{ proto: 'tcp' as const, port: 5432 }] };
  const id = '172.30.0.3 . 172.30.0.2 . tsbr-web . tcp . 5432';
  d.setLink('a', link);
  d.setLink('b', link);
  d.setLink('a', undefined);
  t.truthy(d.elem('link4d', id), 'still wanted by link b');
  d.setLink('b', undefined);
  t.is(d.elem('link4d', id), undefined);
  const dyn = () => [...d.allKeys()].filter((k) => /^(s\taff-|c\tsep-|c\tsvc-)/.test(k));
  d.setService('api', checkService({ name: 'api', vip: '10.96.0.10', ports: [{ proto: 'tcp', port: 80 }], backends: ['172.30.0.2', '172.30.0.3'], affinitySeconds: 60 }));
  t.is(dyn().length, 5, 'one svc chain, two sep chains, two affinity sets');
  d.setService('api', undefined);
  t.deepEqual(dyn(), []);
  d.setService('v6', checkService({ name: 'v6', vip: 'fd96::10', ports: [{ proto: 'udp', port: 53 }], backends: ['fd30::2', 'fd30::3'] }));
  const chain = dyn()[0]!.split('\t')[1]!;
  t.deepEqual(d.chain(chain)!.rules, ['meta l4proto udp dnat ip6 to numgen random mod 2 map { 0 : fd30::2 . 53, 1 : fd30::3 . 53 }']);
  t.is(d.elem('svc6', 'fd96::10 . udp . 53')?.value, `goto ${chain}`);
});
