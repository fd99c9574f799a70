// Golden tests of the rendered rules (pure: nothing is spawned). UPDATE_GOLDEN=1 rewrites the files.
import test from 'ava';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { DesiredState } from '../../proxy/desired.js';
import { ProxyError } from '../../proxy/errors.js';
import { IptablesBackend, parseSave } from '../../proxy/iptables.js';
import { probabilityText, renderRule } from '../../proxy/render.js';
import type { Family } from '../../proxy/rules.js';
import { checkNetwork, checkService } from '../../proxy/specs.js';
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

/** A representative state (test/proxy/sample.ts, shared with the nft golden tests). */
export function sampleState(): DesiredState {
  return fillSample(new DesiredState());
}

function fullText(d: DesiredState, f: Family): string {
  return new IptablesBackend({ family: f }).script(d.all(f), d.jumps(f)).text;
}

test('full sync text, IPv4 and IPv6, matches the golden files', (t) => {
  const d = sampleState();
  golden(t, 'full-v4.txt', fullText(d, 4));
  golden(t, 'full-v6.txt', fullText(d, 6));
});

test('the book shapes: masquerade, DNAT for local destinations only, link pairs', (t) => {
  const v4 = fullText(sampleState(), 4);
  t.true(v4.includes('-A TSO-POSTROUTING -s 172.30.0.0/24 ! -o tsbr-web -j MASQUERADE'));
  t.false(v4.includes('-s 172.31.0.0/24 ! -o tsbr-back -j MASQUERADE'), 'internal networks are not masqueraded');
  t.true(v4.includes('-A PREROUTING -m addrtype --dst-type LOCAL -j TSO-DNAT'));
  t.true(v4.includes('-A TSO-DNAT-TCP-1F -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.30.0.2:80'));
  t.true(v4.includes('-A TSO-LINKS -s 172.30.0.3/32 -d 172.30.0.2/32 -i tsbr-web -o tsbr-web -p tcp -m tcp --dport 5432 -j ACCEPT'));
  t.true(v4.includes('-A TSO-LINKS -s 172.30.0.2/32 -d 172.30.0.3/32 -i tsbr-web -o tsbr-web -p tcp -m tcp --sport 5432 -j ACCEPT'));
  t.true(v4.includes('-A TSO-FORWARD -i tsbr-web -o tsbr-web -j DROP'), 'ICC off');
  t.true(v4.includes('-A TSO-FORWARD -i tsbr-back ! -o tsbr-back -j DROP'), 'internal: no route out');
  // Jumps are appended (-A), never inserted ahead of other chains (CVE-2019-9946).
  t.false(/^-I /m.test(v4));
});

test('statistic probabilities print as iptables-save prints them', (t) => {
  t.is(probabilityText(1 / 3), '0.33333333349');
  t.is(probabilityText(0.5), '0.50000000000');
  t.is(probabilityText(0.1), '0.10000000009');
  t.throws(() => probabilityText(1), { instanceOf: ProxyError });
});

test('an unordered chain changes by -D/-A lines; an ordered one is rewritten; a deleted chain goes last', (t) => {
  const d = sampleState();
  const b = new IptablesBackend({ family: 4 });
  // Pretend everything is applied: the backend's view = what script() would create.
  (b as unknown as { applied: Map<string, unknown> }).applied = d.all(4);
  (b as unknown as { appliedJumps: unknown }).appliedJumps = d.jumps(4);
  (b as unknown as { owned: Map<string, string[]> }).owned = new Map([...d.all(4)].map(([k, c]) => [k, [...c.rules]]));
  const c1 = d.setBindings('ep9', [], [{ proto: 'tcp', hostIp: '0.0.0.0', hostPort: 8081, containerIp: '172.30.0.9', containerPort: 80 }]);
  golden(t, 'diff-add-port.txt', b.script(d.changes(4, c1[4]), d.jumps(4)).text);
  const c2 = d.setService('api', checkService({ name: 'api', vip: '10.96.0.10', ports: [{ proto: 'tcp', port: 80, targetPort: 8080 }], backends: ['172.30.0.2', '172.30.0.3'] }));
  const s2 = b.script(d.changes(4, c2[4]), d.jumps(4)).text;
  golden(t, 'diff-service-backend-gone.txt', s2);
  t.is(s2.match(/^:/gm)?.length, 1, 'one backend less rewrites the one SVC chain, nothing else');
  const c3 = d.setService('api', undefined);
  const s3 = b.script(d.changes(4, c3[4]), d.jumps(4)).text;
  t.regex(s3, /-D TSO-SERVICES -d 10\.96\.0\.10\/32 -p tcp -m tcp --dport 80 -j TSO-SVC-[0-9A-F]{16}\n/);
  t.true(s3.indexOf('-D TSO-SERVICES') < s3.indexOf('-X TSO-SVC-'));
});

test('iptables-save text parses into our chains and jumps only', (t) => {
  const text = fullText(sampleState(), 4).replace('*filter\n', '*filter\n:DOCKER - [0:0]\n-A FORWARD -j DOCKER\n-A DOCKER -j ACCEPT\n');
  const saved = parseSave(text);
  t.true(saved.chains.has('nat/TSO-DNAT'));
  t.false([...saved.chains.keys()].some((k) => k.includes('DOCKER')));
  t.false(saved.jumps.some((j) => j.rule.includes('DOCKER')));
  t.is(saved.jumps.length, sampleState().jumps(4).length);
});

test('values that were not validated never reach the text', (t) => {
  const bad = [
    { dst: '1.2.3.4/32 -j ACCEPT', target: { kind: 'DROP' } },
    { in: { name: 'br0 -j ACCEPT' }, target: { kind: 'DROP' } },
    { proto: 'tcp', dport: 70000, target: { kind: 'DROP' } },
    { target: { kind: 'jump', chain: 'DOCKER' } },
    { target: { kind: 'DNAT', ip: '10.0.0.1:80', port: 1 } },
    { proto: 'icmp', target: { kind: 'DROP' } },
    { src: '10.0.0.1/24', target: { kind: 'DROP' } },
    { dst: 'fd00::1/128', target: { kind: 'DROP' } },
  ];
  for (const r of bad) t.throws(() => renderRule(r as never, 4), { instanceOf: ProxyError }, JSON.stringify(r));
});

test('network and service specs are validated', (t) => {
  t.throws(() => checkNetwork({ id: 'n', bridge: 'br0;rm', subnets: ['10.0.0.0/24'] }), { code: 'invalid-name' });
  t.throws(() => checkNetwork({ id: 'n', bridge: 'br0', subnets: ['10.0.0.0/33'] }), { code: 'invalid-address' });
  t.throws(() => checkNetwork({ id: '../n', bridge: 'br0', subnets: ['10.0.0.0/24'] }), { code: 'invalid-name' });
  t.is(checkNetwork({ id: 'n', bridge: 'br0', subnets: ['10.0.0.7/24'] }).subnets[0]!.cidr, '10.0.0.0/24');
  t.throws(() => checkService({ name: 's', vip: '10.96.0.1', ports: [{ proto: 'tcp', port: 0 }], backends: [] }), { code: 'invalid-port' });
  t.throws(() => checkService({ name: 's', vip: '10.96.0.1', ports: [{ proto: 'tcp', port: 80 }], backends: ['fd00::1'] }), { code: 'invalid-address' });
  t.throws(() => checkService({ name: 's', vip: '10.96.0.1', ports: [{ proto: 'gre' as never, port: 80 }], backends: [] }), { code: 'invalid-protocol' });
});

test('incremental changes never take out rules another writer put in a shared chain', (t) => {
  const b = new IptablesBackend({ family: 4 });
  const chain = (rules: string[]) => ({ table: 'nat' as const, name: 'TSO-DNAT-TCP-1F', ordered: false, rules });
  const A = '-p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.30.0.2:80';
  const B = '-p tcp -m tcp --dport 8081 -j DNAT --to-destination 172.30.0.3:80';
  const C = '-p tcp -m tcp --dport 8082 -j DNAT --to-destination 172.30.0.4:80';
  (b as unknown as { applied: Map<string, unknown> }).applied = new Map([['nat/TSO-DNAT-TCP-1F', chain([A, B])]]);
  (b as unknown as { owned: Map<string, string[]> }).owned = new Map([['nat/TSO-DNAT-TCP-1F', [B]]]);
  const swap = b.script(new Map([['nat/TSO-DNAT-TCP-1F', chain([C])]])).text;
  t.is(swap, `*nat\n-D TSO-DNAT-TCP-1F ${B}\n-A TSO-DNAT-TCP-1F ${C}\nCOMMIT\n`, 'A (not ours) stays');
  const gone = b.script(new Map([['nat/TSO-DNAT-TCP-1F', undefined]])).text;
  t.is(gone, `*nat\n-D TSO-DNAT-TCP-1F ${B}\nCOMMIT\n`, 'the chain stays for A');
});
