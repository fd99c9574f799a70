// The responder over an index fed with store-shaped records: scopes, record synthesis,
// NXDOMAIN vs NODATA, error codes, round-robin, caching, internal networks.
import test from 'ava';
import { C, RCODE, T } from '../../dns/constants.js';
import { decodeMessage, type DecodedMessage } from '../../dns/message.js';
import type { Client } from '../../dns/responder.js';
import { EndpointScopes, OpenScopes } from '../../dns/scope.js';
import { DnsServer } from '../../dns/server.js';
import { buildQuery, indexWith, type QueryOptions } from './helpers.js';

const records = {
  networks: [
    { id: 'na', name: 'front', subnets: ['10.1.0.0/24'], gateways: ['10.1.0.1'] },
    { id: 'nb', name: 'back', subnets: ['10.2.0.0/24'], gateways: ['10.2.0.1'] },
    { id: 'ni', name: 'vault', internal: true, subnets: ['10.3.0.0/24'], gateways: ['10.3.0.1'] },
    { id: 'nx', name: 'x', subnets: ['10.9.0.0/24'], gateways: ['10.9.0.1'] },
    { id: 'ny', name: 'y', subnets: ['10.9.0.0/24'], gateways: ['10.9.1.1'] },
  ],
  endpoints: [
    { id: 'e1', networkId: 'na', hostId: 'h1', containerId: 'c1', name: 'web', aliases: ['www'], addresses: ['10.1.0.2/24', 'fd01::2/64'] },
    { id: 'e2', networkId: 'na', hostId: 'h2', name: 'web2', aliases: ['www'], addresses: ['10.1.0.3/24'] },
    { id: 'e3', networkId: 'nb', hostId: 'h1', containerId: 'c3', name: 'db', addresses: ['10.2.0.2/24'] },
    { id: 'e4', networkId: 'na', hostId: 'h1', containerId: 'c3', name: 'db', addresses: ['10.1.0.4/24'] },
    { id: 'e5', networkId: 'ni', hostId: 'h1', name: 'secret', addresses: ['10.3.0.2/24'] },
    { id: 'e6', networkId: 'nx', hostId: 'h1', name: 'ex', addresses: ['10.9.0.2/24'] },
    { id: 'e7', networkId: 'ny', hostId: 'h1', name: 'why', addresses: ['10.9.0.2/24'] },
  ],
  services: [
    { name: 'api', vip: '10.96.0.10', ports: [{ port: 80, protocol: 'tcp', name: 'http', targetPort: 8080 }], backends: ['10.1.0.2', { address: '10.1.0.3', port: 9090 }] },
    { name: 'headless', ports: [{ port: 53, protocol: 'udp' }], backends: ['10.2.0.2'] },
    { name: 'backonly', vip: '10.96.0.11', ports: [], backends: [], networks: ['nb'] },
  ],
};

function setup(t: { teardown: (f: () => void) => void }, mode: 'host' | 'open' = 'host') {
  const index = indexWith(records);
  const scopes = mode === 'host' ? new EndpointScopes(index, { hostId: 'h1' }) : new OpenScopes(index);
  const server = new DnsServer({ index, scopes, listen: [], upstreams: [] });
  t.teardown(() => void server.stop());
  const ask = async (from: string, name: string, type: number, o: QueryOptions & { local?: string; tcp?: boolean } = {}): Promise<DecodedMessage> => {
    const client: Client = { address: from, local: o.local ?? '10.1.0.1', tcp: o.tcp ?? false };
    const out = await server.responder.respond(buildQuery(name, type, o), client);
    if (!out) throw new Error('no reply');
    return decodeMessage(out)!;
  };
  return { index, server, ask };
}

const data = (m: DecodedMessage) => m.answers.map((a) => a.data);

test('a client sees names of its networks, short and qualified, A and AAAA', async (t) => {
  const { ask } = setup(t);
  const a = await ask('10.1.0.2', 'web', T.A);
  t.is(a.rcode, RCODE.NOERROR);
  t.deepEqual(data(a), ['10.1.0.2']);
  t.truthy(a.flags & 0x0400, 'authoritative');
  t.deepEqual(data(await ask('10.1.0.2', 'WEB.front.TSOVERLAY', T.AAAA)), ['fd01::2']);
  t.deepEqual(data(await ask('10.1.0.2', 'web2.front.tsoverlay', T.A)), ['10.1.0.3'], 'an endpoint on another host, same network');
  t.deepEqual((await ask('10.1.0.2', 'www', T.A)).answers.length, 2);
});

test('isolation: names of other networks are not visible; a multi-network container sees both', async (t) => {
  const { ask } = setup(t);
  t.is((await ask('10.1.0.2', 'db.back.tsoverlay', T.A)).rcode, RCODE.NXDOMAIN);
  t.deepEqual(data(await ask('10.1.0.2', 'db', T.A)), ['10.1.0.4'], 'only db\'s address on the shared network');
  // Container c3 is on na and nb: it sees both networks' names.
  t.deepEqual(data(await ask('10.2.0.2', 'web', T.A, { local: '10.2.0.1' })), ['10.1.0.2']);
  t.deepEqual(data(await ask('10.2.0.2', 'db.back.tsoverlay', T.A, { local: '10.2.0.1' })), ['10.2.0.2']);
  t.is((await ask('10.1.0.2', '2.0.2.10.in-addr.arpa', T.PTR)).rcode, RCODE.SERVFAIL, 'PTR of another network goes upstream (none here)');
  t.deepEqual(data(await ask('10.2.0.2', '2.0.2.10.in-addr.arpa', T.PTR, { local: '10.2.0.1' })), ['db.back.tsoverlay']);
});

test('overlapping subnets: the gateway the query reached picks the network', async (t) => {
  const { ask } = setup(t);
  t.deepEqual(data(await ask('10.9.0.2', 'ex', T.A, { local: '10.9.0.1' })), ['10.9.0.2']);
  t.is((await ask('10.9.0.2', 'why.y.tsoverlay', T.A, { local: '10.9.0.1' })).rcode, RCODE.NXDOMAIN);
  t.deepEqual(data(await ask('10.9.0.2', 'why', T.A, { local: '10.9.1.1' })), ['10.9.0.2']);
});

test('not our client: REFUSED without recursion; other hosts\' endpoints are not this host\'s clients', async (t) => {
  const { ask } = setup(t);
  const r = await ask('192.0.2.7', 'web', T.A);
  t.is(r.rcode, RCODE.REFUSED);
  t.falsy(r.flags & 0x0080, 'RA clear');
  t.is(r.answers.length, 0);
  t.is((await ask('10.1.0.3', 'web', T.A)).rcode, RCODE.REFUSED, 'e2 lives on h2');
});

test('internal networks: own names answer, nothing is forwarded (CVE-2024-29018)', async (t) => {
  const { ask } = setup(t);
  const own = await ask('10.3.0.2', 'secret', T.A, { local: '10.3.0.1' });
  t.deepEqual(data(own), ['10.3.0.2']);
  t.falsy(own.flags & 0x0080, 'no recursion offered');
  t.is((await ask('10.3.0.2', 'example.com', T.A, { local: '10.3.0.1' })).rcode, RCODE.REFUSED);
  t.is((await ask('10.3.0.2', 'web', T.A, { local: '10.3.0.1' })).rcode, RCODE.REFUSED, 'web is on another network');
});

test('NXDOMAIN vs NODATA, with the SOA; apex and empty non-terminals exist', async (t) => {
  const { ask } = setup(t);
  const nodata = await ask('10.1.0.2', 'web2.front.tsoverlay', T.AAAA);
  t.is(nodata.rcode, RCODE.NOERROR);
  t.is(nodata.answers.length, 0);
  t.is(nodata.authority[0]!.type, T.SOA);
  t.is((await ask('10.1.0.2', 'web2', T.MX)).rcode, RCODE.NOERROR);
  const nx = await ask('10.1.0.2', 'nobody.front.tsoverlay', T.A);
  t.is(nx.rcode, RCODE.NXDOMAIN);
  t.is(nx.authority[0]!.type, T.SOA);
  t.is((await ask('10.1.0.2', 'front.tsoverlay', T.A)).rcode, RCODE.NOERROR, 'network label is an empty non-terminal');
  t.is((await ask('10.1.0.2', '_tcp.api.tsoverlay', T.SRV)).rcode, RCODE.NOERROR);
  t.is((await ask('10.1.0.2', 'tsoverlay', T.SOA)).answers[0]!.type, T.SOA);
  t.is((await ask('10.1.0.2', 'web.nonet.tsoverlay', T.A)).rcode, RCODE.NXDOMAIN);
});

test('services: VIP, SRV with every backend (name or number), headless, PTR, network-restricted', async (t) => {
  const { ask } = setup(t);
  t.deepEqual(data(await ask('10.1.0.2', 'api', T.A)), ['10.96.0.10']);
  t.deepEqual(data(await ask('10.1.0.2', 'api.tsoverlay', T.A)), ['10.96.0.10']);
  for (const name of ['_http._tcp.api.tsoverlay', '_80._tcp.api']) {
    const srv = await ask('10.1.0.2', name, T.SRV);
    const targets = srv.answers.map((a) => a.data as { port: number; target: string }).sort((x, y) => x.port - y.port);
    t.deepEqual(targets.map((x) => [x.port, x.target]), [
      [8080, '10-1-0-2.api.tsoverlay'],
      [9090, '10-1-0-3.api.tsoverlay'],
    ]);
    t.is(srv.additional.filter((r) => r.type === T.A).length, 2);
  }
  t.deepEqual(data(await ask('10.1.0.2', '10-1-0-3.api.tsoverlay', T.A)), ['10.1.0.3']);
  t.is((await ask('10.1.0.2', '_http._udp.api.tsoverlay', T.SRV)).rcode, RCODE.NXDOMAIN);
  t.deepEqual(data(await ask('10.1.0.2', 'headless', T.A)), ['10.2.0.2']);
  t.deepEqual(data(await ask('10.1.0.2', '10.0.96.10.in-addr.arpa', T.PTR)), ['api.tsoverlay']);
  t.is((await ask('10.1.0.2', 'backonly.tsoverlay', T.A)).rcode, RCODE.NXDOMAIN);
  t.deepEqual(data(await ask('10.2.0.2', 'backonly.tsoverlay', T.A, { local: '10.2.0.1' })), ['10.96.0.11']);
});

test('round-robin: several addresses come in rotating order, also from the cache', async (t) => {
  const { ask } = setup(t);
  const orders = new Set<string>();
  for (let i = 0; i < 6; i++) orders.add(data(await ask('10.1.0.2', 'www', T.A)).join(','));
  t.deepEqual([...orders].sort(), ['10.1.0.2,10.1.0.3', '10.1.0.3,10.1.0.2']);
});

test('the answer cache follows index changes; the client\'s case and ID come back', async (t) => {
  const { ask, index } = setup(t);
  t.deepEqual(data(await ask('10.1.0.2', 'web2', T.A)), ['10.1.0.3']);
  index.apply('endpoint', 'na\0e2', JSON.stringify({ ...records.endpoints[1], addresses: ['10.1.0.33/24'] }));
  t.deepEqual(data(await ask('10.1.0.2', 'web2', T.A)), ['10.1.0.33']);
  index.apply('endpoint', 'na\0e2', undefined);
  t.is((await ask('10.1.0.2', 'web2.front.tsoverlay', T.A)).rcode, RCODE.NXDOMAIN);
  const m = await ask('10.1.0.2', 'WeB', T.A, { id: 4242 });
  t.is(m.id, 4242);
  const again = await ask('10.1.0.2', 'WeB', T.A, { id: 999 });
  t.is(again.id, 999, 'cached reply gets the new ID');
});

test('error codes: FORMERR, NOTIMP, REFUSED for other classes, BADVERS; EDNS echoed', async (t) => {
  const { ask } = setup(t);
  t.is((await ask('10.1.0.2', 'web', 0)).rcode, RCODE.FORMERR);
  t.is((await ask('10.1.0.2', 'web', T.OPT)).rcode, RCODE.FORMERR);
  t.is((await ask('10.1.0.2', 'web', T.AXFR)).rcode, RCODE.NOTIMP);
  t.is((await ask('10.1.0.2', 'web', T.AXFR, { tcp: true })).rcode, RCODE.NOTIMP);
  t.is((await ask('10.1.0.2', 'version.bind', T.TXT, { cls: C.CH })).rcode, RCODE.REFUSED);
  t.deepEqual(data(await ask('10.1.0.2', 'web', T.A, { cls: C.ANY })), ['10.1.0.2']);
  const bv = await ask('10.1.0.2', 'web', T.A, { edns: 1232, ednsVersion: 2 });
  t.is(bv.rcode, RCODE.BADVERS);
  const e = await ask('10.1.0.2', 'web', T.A, { edns: 4096 });
  const opt = e.additional.find((r) => r.type === T.OPT)!;
  t.is(opt.cls, 1232, 'our payload size');
});

test('ANY on our names returns every address; unknown types give NODATA', async (t) => {
  const { ask } = setup(t);
  t.deepEqual(data(await ask('10.1.0.2', 'web', T.ANY)).sort(), ['10.1.0.2', 'fd01::2']);
  const r = await ask('10.1.0.2', 'web', 65280);
  t.is(r.rcode, RCODE.NOERROR);
  t.is(r.answers.length, 0);
});

test('standalone scopes: everyone sees every network; recursion only for loopback and our networks', async (t) => {
  const { ask } = setup(t, 'open');
  t.deepEqual(data(await ask('192.0.2.7', 'db.back.tsoverlay', T.A)), ['10.2.0.2']);
  t.is((await ask('192.0.2.7', 'example.com', T.A)).rcode, RCODE.REFUSED);
  t.is((await ask('127.0.0.1', 'example.com', T.A)).rcode, RCODE.SERVFAIL, 'allowed, but no upstream here');
  t.is((await ask('10.2.0.77', 'example.com', T.A)).rcode, RCODE.SERVFAIL, 'in a non-internal subnet');
  t.is((await ask('10.3.0.2', 'example.com', T.A)).rcode, RCODE.REFUSED, 'endpoint on an internal network');
});

test('the drivers\' endpoint records: names[] first is the PTR target; Docker endpoints grouped by sandbox netns', async (t) => {
  const index = indexWith({
    networks: [
      { id: 'd1', name: 'dn1', driver: 'tsbridge', scope: 'local', subnets: ['10.50.0.0/24'], gateways: ['10.50.0.1'], internal: false, options: {} },
      { id: 'd2', name: 'dn2', driver: 'tsbridge', scope: 'local', subnets: ['10.51.0.0/24'], gateways: ['10.51.0.1'], internal: false, options: {} },
    ],
    endpoints: [
      { id: 'x1', networkId: 'd1', hostId: 'h1', driver: 'tsbridge', names: ['app', 'app-host'], aliases: ['svc'], addresses: ['10.50.0.2/24'], ports: [], exposed: [], sandbox: { mode: 'engine', netnsPath: '/var/run/docker/netns/abc', joinedAt: '' }, createdAt: '' },
      { id: 'x2', networkId: 'd2', hostId: 'h1', driver: 'tsbridge', names: ['app'], aliases: [], addresses: ['10.51.0.2/24'], ports: [], exposed: [], sandbox: { mode: 'engine', netnsPath: '/var/run/docker/netns/abc', joinedAt: '' }, createdAt: '' },
      { id: 'x3', networkId: 'd2', hostId: 'h1', driver: 'tsbridge', names: ['other'], aliases: [], addresses: ['10.51.0.3/24'], ports: [], exposed: [], createdAt: '' },
    ],
  });
  const server = new DnsServer({ index, scopes: new EndpointScopes(index, { hostId: 'h1' }), listen: [], upstreams: [] });
  t.teardown(() => server.stop());
  const ask = async (name: string, type: number) =>
    decodeMessage((await server.responder.respond(buildQuery(name, type), { address: '10.50.0.2', local: '10.50.0.1', tcp: false }))!)!;
  t.deepEqual((await ask('2.0.50.10.in-addr.arpa', T.PTR)).answers.map((a) => a.data), ['app.dn1.tsoverlay']);
  t.deepEqual((await ask('app-host', T.A)).answers.map((a) => a.data), ['10.50.0.2']);
  t.deepEqual((await ask('svc.dn1.tsoverlay', T.A)).answers.map((a) => a.data), ['10.50.0.2']);
  t.deepEqual((await ask('other', T.A)).answers.map((a) => a.data), ['10.51.0.3'], 'the container is also on d2 (same netns)');
});
