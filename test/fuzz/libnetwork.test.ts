// Fuzz: every Docker plugin API method of the libnetwork HTTP server, over a real unix socket,
// with bodies that miss fields, carry wrong types, huge values, unicode and path separators,
// plus broken JSON, odd headers, methods and paths. Properties: every reply is a JSON object
// in the plugin media type; non-200 carries Err (and Error for IPAM); bad input is 4xx and
// never reaches a backend; a 5xx only when the backend failed that way; backends only ever
// see valid typed values; the server keeps serving.
import test from 'ava';
import { Agent, request } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPluginServer } from '../../plugins/libnetwork/server.js';
import type { ErrorKind } from '../../plugins/libnetwork/errors.js';
import { CheckingDriver, CheckingIpam, Inspector } from './fixtures/checking-backends.js';
import { cidr, ip, mac, mutateBytes, mutateJson, mutateText, nastyString, objectId, port, randomHex, type Rng } from './gen.js';
import { fuzz, settings, show, violated } from './runner.js';

const FILE = 'test/fuzz/libnetwork.test.ts';
type Role = 'NetworkDriver' | 'IpamDriver';

/** Status per backend error kind, and the methods whose not-found is success (README). */
const STATUS: Record<ErrorKind, number> = { 'bad-request': 400, 'not-found': 404, conflict: 409, unavailable: 503, internal: 500 };
const NOT_FOUND_OK = new Set(['DeleteNetwork', 'FreeNetwork', 'DeleteEndpoint', 'Leave', 'RevokeExternalConnectivity', 'DiscoverDelete', 'ReleasePool', 'ReleaseAddress']);
const NO_404 = new Set(['ProgramExternalConnectivity', 'RevokeExternalConnectivity']);
/** Methods that never call the backend. */
const NO_BACKEND = new Set(['Plugin.Activate', 'NetworkDriver.GetCapabilities', 'IpamDriver.GetCapabilities']);

const b64mac = (rng: Rng) => (rng.strict || rng.chance(0.8) ? Buffer.from([2, 0x42, rng.int(256), rng.int(256), rng.int(256), rng.int(256)]).toString('base64') : nastyString(rng));
const hexId = (rng: Rng) => (rng.strict || rng.chance(0.85) ? randomHex(rng, 64) : objectId(rng));
const ipamData = (rng: Rng, family: 4 | 6) => ({
  AddressSpace: rng.pick(['TsLocal', 'LocalDefault', '']),
  Pool: cidr(rng, family),
  Gateway: rng.chance(0.8) ? `${ip(rng, rng.strict || rng.chance(0.9) ? family : family === 4 ? 6 : 4)}/${family === 4 ? 24 : 64}` : ip(rng, family),
  AuxAddresses: rng.chance(0.3) ? { [rng.strict || rng.chance(0.8) ? 'host1' : nastyString(rng)]: `${ip(rng, family)}/${family === 4 ? 24 : 64}` } : null,
});
const portmap = (rng: Rng) => {
  const hostPort = port(rng);
  return [{ Proto: rng.vpick([6, 17, 132], [1, 'tcp', 0]), IP: rng.chance(0.5) ? '' : ip(rng), Port: port(rng), HostIP: rng.chance(0.5) ? '' : ip(rng), HostPort: hostPort, HostPortEnd: rng.chance(0.5) || rng.strict ? hostPort : port(rng) }];
};
const endpointOptions = (rng: Rng) => ({
  'com.docker.network.endpoint.exposedports': [{ Proto: rng.vpick([6, 17, 132], [99, '6']), Port: port(rng) }],
  'com.docker.network.portmap': portmap(rng),
  ...(rng.chance(0.4) ? { 'com.docker.network.endpoint.macaddress': b64mac(rng) } : {}),
  ...(rng.chance(0.3) ? { [rng.vpick(['com.example.opt'], [nastyString(rng)])]: nastyString(rng) } : {}),
});
const ref = (rng: Rng) => ({ NetworkID: hexId(rng), EndpointID: hexId(rng) });

/** A plausible body per method (what dockerd 20.10 sends), before mutation. */
const BODIES: Record<string, { role: Role | 'Plugin'; body?: (rng: Rng) => Record<string, unknown> }> = {
  'Plugin.Activate': { role: 'Plugin' },
  'NetworkDriver.GetCapabilities': { role: 'NetworkDriver' },
  'NetworkDriver.CreateNetwork': {
    role: 'NetworkDriver',
    body: (rng) => ({
      NetworkID: hexId(rng),
      Options: {
        'com.docker.network.enable_ipv6': rng.vpick<unknown>([false, 'false'], ['x', 1]),
        'com.docker.network.internal': rng.pick([false, true]),
        'com.docker.network.generic': {
          'com.docker.network.driver.mtu': rng.vpick(['1400', 1400, '68', '65535', ' 1500 '], ['67', '65536', '1e3', '', -1]),
          'com.docker.network.bridge.name': rng.vpick(['br-fuzz', 'tsbr-1', 'a'.repeat(15), 'br$x', 'br;0'], ['a'.repeat(16), 'br/0', 'br 0', 'ünï', '', 'br:0']),
          'com.docker.network.bridge.enable_icc': rng.vpick(['true', 'false', 'T'], ['nope', 2]),
          'com.docker.network.bridge.host_binding_ipv4': ip(rng),
          'com.docker.network.container_iface_prefix': rng.vpick(['eth', 'net'], ['abcdefghijklm', 'e/']),
          [rng.pick(['tsoverlay.vni', 'unknown'])]: rng.pick(['4096', 5, null, nastyString(rng)]),
        },
      },
      IPv4Data: [ipamData(rng, 4)],
      IPv6Data: rng.chance(0.3) ? [ipamData(rng, 6)] : null,
    }),
  },
  'NetworkDriver.DeleteNetwork': { role: 'NetworkDriver', body: (rng) => ({ NetworkID: hexId(rng) }) },
  'NetworkDriver.AllocateNetwork': { role: 'NetworkDriver', body: (rng) => ({ NetworkID: hexId(rng), Options: { a: 'b' }, IPv4Data: [ipamData(rng, 4)] }) },
  'NetworkDriver.FreeNetwork': { role: 'NetworkDriver', body: (rng) => ({ NetworkID: hexId(rng) }) },
  'NetworkDriver.CreateEndpoint': {
    role: 'NetworkDriver',
    body: (rng) => ({
      ...ref(rng),
      Interface: { Address: `${ip(rng, rng.strict || rng.chance(0.9) ? 4 : 6)}/24`, AddressIPv6: rng.chance(0.3) ? `${ip(rng, rng.strict || rng.chance(0.9) ? 6 : 4)}/64` : '', MacAddress: rng.chance(0.5) ? mac(rng) : '' },
      Options: endpointOptions(rng),
    }),
  },
  'NetworkDriver.EndpointOperInfo': { role: 'NetworkDriver', body: ref },
  'NetworkDriver.DeleteEndpoint': { role: 'NetworkDriver', body: ref },
  'NetworkDriver.Join': {
    role: 'NetworkDriver',
    body: (rng) => ({ ...ref(rng), SandboxKey: rng.vpick(['/var/run/docker/netns/0123abcd', '/proc/1/ns/net', '/a b/é'], ['relative', '/a\0b', '']), Options: endpointOptions(rng) }),
  },
  'NetworkDriver.Leave': { role: 'NetworkDriver', body: ref },
  'NetworkDriver.ProgramExternalConnectivity': { role: 'NetworkDriver', body: (rng) => ({ ...ref(rng), Options: endpointOptions(rng) }) },
  'NetworkDriver.RevokeExternalConnectivity': { role: 'NetworkDriver', body: ref },
  'NetworkDriver.DiscoverNew': { role: 'NetworkDriver', body: (rng) => ({ DiscoveryType: rng.vpick([1, 2], [1.5, '1']), DiscoveryData: { Address: ip(rng), self: rng.chance(0.5) } }) },
  'NetworkDriver.DiscoverDelete': { role: 'NetworkDriver', body: (rng) => ({ DiscoveryType: 1, DiscoveryData: { Address: ip(rng), self: false } }) },
  'IpamDriver.GetCapabilities': { role: 'IpamDriver' },
  'IpamDriver.GetDefaultAddressSpaces': { role: 'IpamDriver' },
  'IpamDriver.RequestPool': {
    role: 'IpamDriver',
    body: (rng) => {
      const fam = rng.chance(0.7) ? 4 : 6;
      const pool = rng.chance(0.7) ? cidr(rng, fam) : '';
      const sub = pool && rng.chance(0.3) ? (rng.strict ? pool : cidr(rng, fam)) : '';
      return { AddressSpace: rng.vpick(['TsLocal', 'TsGlobal'], ['a/b', '']), Pool: pool, SubPool: sub, Options: { 'com.docker.network.ipam.serial': rng.vpick(['true', 'false'], ['no']) }, V6: fam === 6 };
    },
  },
  'IpamDriver.ReleasePool': { role: 'IpamDriver', body: (rng) => ({ PoolID: rng.strict || rng.chance(0.8) ? `TsLocal/${cidr(rng)}` : nastyString(rng) }) },
  'IpamDriver.RequestAddress': {
    role: 'IpamDriver',
    body: (rng) => ({
      PoolID: `TsLocal/${cidr(rng)}`,
      Address: rng.chance(0.5) ? ip(rng) : '',
      Options: rng.chance(0.5) ? { RequestAddressType: rng.vpick(['com.docker.network.gateway'], ['other']) } : { 'com.docker.network.endpoint.macaddress': rng.chance(0.5) ? mac(rng) : b64mac(rng) },
    }),
  },
  'IpamDriver.ReleaseAddress': { role: 'IpamDriver', body: (rng) => ({ PoolID: `TsLocal/${cidr(rng)}`, Address: ip(rng) }) },
};
const METHODS = Object.keys(BODIES);

interface HttpCase {
  plugin: 'tsbridge' | 'tsipam';
  method: string;
  path: string;
  httpMethod: string;
  headers: Record<string, string>;
  body: Buffer;
  /** Make the backend fail its call with this kind. */
  failWith?: ErrorKind;
}

function bodyBytes(rng: Rng, base: Record<string, unknown> | undefined): Buffer {
  if (!base) return rng.chance(0.9) ? Buffer.alloc(0) : Buffer.from(JSON.stringify(mutateJson(rng, {}, 2)) ?? '');
  const text = JSON.stringify(base) + '\n';
  if (rng.strict) return rng.chance(0.5) ? Buffer.from(text) : Buffer.from(`${JSON.stringify(mutateJson(rng, base, 1)) ?? 'null'}\n`);
  const r = rng.next();
  if (r < 0.25) return Buffer.from(text);
  if (r < 0.8) return Buffer.from(`${JSON.stringify(mutateJson(rng, base, 4)) ?? 'null'}\n`);
  if (r < 0.9) return Buffer.from(mutateText(rng, text));
  if (r < 0.99) return mutateBytes(rng, Buffer.from(text));
  return Buffer.from(JSON.stringify({ ...base, Pad: 'x'.repeat(rng.pick([500_000, 1_100_000])) }));
}

function generate(rng: Rng): HttpCase {
  rng.strict = rng.chance(0.4);
  const method = rng.pick(METHODS);
  const spec = BODIES[method]!;
  const plugin = spec.role === 'IpamDriver' ? 'tsipam' : spec.role === 'NetworkDriver' ? 'tsbridge' : rng.pick(['tsbridge', 'tsipam'] as const);
  let path = `/${method}`;
  if (rng.chance(0.03)) path = rng.pick([`/${method}x`, '/', `/${method}/../Plugin.Activate`, '/NetworkDriver.', `/${method}?a=1`, `/%2e%2e/${method}`, `/${nastyString(rng).replace(/[^\x21-\x7e]/g, '')}`]);
  const headers: Record<string, string> = {};
  if (rng.chance(0.05)) headers['Content-Type'] = rng.pick(['application/json', 'application/json; charset=latin1', 'application/json; charset=utf-16', 'text/plain', 'x/y; charset=bogus']);
  if (rng.chance(0.02)) headers['Content-Encoding'] = rng.pick(['gzip', 'deflate', 'br', 'identity', 'bogus']);
  const failWith = rng.chance(0.1) ? rng.pick<ErrorKind>(['bad-request', 'not-found', 'conflict', 'unavailable', 'internal']) : undefined;
  return { plugin, method, path, httpMethod: rng.chance(0.02) ? rng.pick(['GET', 'PUT', 'DELETE']) : 'POST', headers, body: bodyBytes(rng, spec.body?.(rng)), ...(failWith ? { failWith } : {}) };
}

interface Reply {
  status: number;
  type: string;
  raw: string;
}

function send(agent: Agent, socket: string, c: HttpCase): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      { socketPath: socket, agent, path: c.path, method: c.httpMethod, headers: { Host: 'plugin', Accept: 'application/vnd.docker.plugins.v1.2+json', ...c.headers, 'Content-Length': c.body.length }, timeout: 10_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), raw: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('plugin call timed out')));
    req.on('error', reject);
    req.end(c.body);
  });
}

/** What a 200 reply of each method must look like. */
function checkSuccess(method: string, body: Record<string, any>): void {
  const cidrRe = /^[0-9a-f.:]+\/\d{1,3}$/;
  switch (method) {
    case 'NetworkDriver.CreateEndpoint':
      for (const v of Object.values(body.Interface ?? {})) if (typeof v !== 'string') violated('Interface value');
      break;
    case 'NetworkDriver.Join':
      if (body.Gateway !== undefined && body.Gateway.includes('/')) violated('Join gateway is a CIDR');
      break;
    case 'NetworkDriver.EndpointOperInfo':
      if (typeof body.Value !== 'object' || body.Value === null) violated('EndpointOperInfo without Value');
      break;
    case 'IpamDriver.RequestPool':
      if (typeof body.PoolID !== 'string' || !cidrRe.test(body.Pool) || typeof body.Data !== 'object') violated('RequestPool reply');
      break;
    case 'IpamDriver.RequestAddress':
      if (!cidrRe.test(body.Address) || typeof body.Data !== 'object') violated('RequestAddress reply');
      break;
  }
}

function expectedForBackendFailure(method: string, kind: ErrorKind): number {
  const name = method.split('.')[1]!;
  if (kind === 'not-found' && (NOT_FOUND_OK.has(name) || name === 'EndpointOperInfo')) return 200;
  if (kind === 'not-found' && NO_404.has(name)) return 500;
  return STATUS[kind];
}

function checkReply(c: HttpCase, r: Reply, ins: Inspector, injected: boolean): string {
  let body: unknown;
  try {
    body = JSON.parse(r.raw);
  } catch {
    violated(`reply is not JSON (${r.status}): ${show(r.raw)}`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) violated(`reply is not an object: ${show(r.raw)}`);
  if (!r.type.startsWith('application/vnd.docker.plugins.v1')) violated(`content type ${r.type}`);
  const o = body as Record<string, any>;
  const ipam = c.path.startsWith('/IpamDriver.');
  if (ins.violations.length) violated(`backend got invalid values: ${ins.violations.join('; ')}`);
  if (r.status === 200) {
    if (typeof o.Err === 'string' && o.Err !== '') violated('200 with Err');
    checkSuccess(c.method, o);
    return `200${injected ? ' (backend failed)' : ''}`;
  }
  if (typeof o.Err !== 'string' || o.Err === '') violated(`${r.status} without Err: ${show(o)}`);
  if (ipam && o.Error !== o.Err) violated(`IPAM ${r.status} without Error: ${show(o)}`);
  if (injected) {
    const want = expectedForBackendFailure(c.method, c.failWith!);
    if (r.status !== want) violated(`backend ${c.failWith} failure answered ${r.status}, want ${want}`);
    return `${r.status} (backend ${c.failWith})`;
  }
  // Bad input: refused before any backend call, never as a server error.
  if (ins.calls > 0) violated(`refused with ${r.status} after the backend was called: ${o.Err}`);
  if (r.status >= 500) violated(`bad input answered ${r.status}: ${o.Err}`);
  return `${r.status}`;
}

test('fuzz: every plugin API method over a unix socket', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tsot-fuzz-plug-'));
  const ins = new Inspector();
  const server = await startPluginServer({ pluginDir: dir, drivers: { tsbridge: new CheckingDriver(ins) }, ipam: { name: 'tsipam', backend: new CheckingIpam(ins) } });
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(async () => {
    agent.destroy();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });
  const sock = (name: string) => join(dir, `${name}.sock`);
  await fuzz(t, settings(1500), {
    name: 'libnetwork',
    file: FILE,
    generate,
    describe: (c) => show({ ...c, body: c.body.length > 2000 ? `${c.body.length} bytes` : c.body.toString('utf8') }),
    async check(c) {
      ins.calls = 0;
      ins.violations.length = 0;
      ins.failWith = c.failWith;
      const r = await send(agent, sock(c.plugin), c);
      const methodKnown = c.path === `/${c.method}` && c.httpMethod === 'POST';
      const injected = c.failWith !== undefined && ins.failWith === undefined; // the backend consumed it
      ins.failWith = undefined;
      const label = checkReply(c, r, ins, injected);
      if (methodKnown && r.status === 200 && !NO_BACKEND.has(c.method) && ins.calls !== 1) violated(`200 with ${ins.calls} backend calls`);
      return `${c.method.split('.')[1]} ${label}`;
    },
  });
  // Still serving after everything.
  const alive = await send(agent, sock('tsbridge'), { plugin: 'tsbridge', method: 'Plugin.Activate', path: '/Plugin.Activate', httpMethod: 'POST', headers: {}, body: Buffer.alloc(0) });
  t.is(alive.status, 200);
});
