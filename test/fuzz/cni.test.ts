// Fuzz: the CNI protocol layer with bad env and stdin, in-process (runCni over injected io, and
// the daemon's hand-off route serveHandOff). Properties: exit 0/1 only; every refusal is one
// `{cniVersion, code, msg}` line with a spec code (never 999); handlers only ever see
// validated values; a handler's own error comes out with toCniError's code.
import test from 'ava';
import { Readable } from 'node:stream';
import { CNI_NAME, interfaceNameProblem } from '../../plugins/cni/env.js';
import { toCniError } from '../../plugins/cni/errors.js';
import { serveHandOff } from '../../plugins/cni/handoff-server.js';
import { cidrFamily, ipFamily, isUnicastMac } from '../../plugins/cni/ip.js';
import { readBounded, runCni, type CniRequest, type PluginHandlers, type PluginSpec } from '../../plugins/cni/skel.js';
import { SUPPORTED_VERSIONS } from '../../plugins/cni/version.js';
import { validateIfName } from '../../netlink/index.js';
import { cidr, ifname, ip, mac, mutateBytes, mutateJson, mutateText, nastyString, objectId, port, randomChars, type Rng } from './gen.js';
import { fuzz, settings, show, violated } from './runner.js';

const FILE = 'test/fuzz/cni.test.ts';
/** Codes the protocol layer itself may answer bad input with (SPEC §5 and DESIGN.md). */
const PROTOCOL_CODES = new Set([1, 2, 4, 5, 6, 7]);
const VERSIONS = [...SUPPORTED_VERSIONS, '0.2.0', '0.1.0', '2.0.0', '1.1', '', '1.0.0 ', 'v1.0.0'];
const COMMANDS = ['ADD', 'DEL', 'CHECK', 'VERSION', 'STATUS', 'GC', 'add', 'ADD ', '', 'DELETE', 'VERSION\0'];

// ---- generation ---------------------------------------------------------------------------------

function cniArgs(rng: Rng): string {
  const pairs: string[] = [];
  for (let n = rng.int(4); n > 0; n--) {
    pairs.push(
      rng.oneOf(
        () => `IP=${ip(rng)}`,
        () => `IP=${cidr(rng)},${ip(rng)}`,
        () => `MAC=${mac(rng)}`,
        () => `IgnoreUnknown=${rng.pick(['1', 'true', '0', 'yes', ''])}`,
        () => `K8S_POD_NAME=${rng.chance(0.8) ? 'web-0' : nastyString(rng)}`,
        () => `${randomChars(rng, 4)}=${randomChars(rng, 4)}`,
        () => rng.pick(['=', 'A', 'A==B', ';;', 'A=B=C', nastyString(rng)]),
      ),
    );
  }
  return pairs.join(';');
}

function baseEnv(rng: Rng): Record<string, string> {
  const env: Record<string, string> = {
    CNI_COMMAND: rng.chance(0.85) ? rng.pick(['ADD', 'DEL', 'CHECK', 'STATUS', 'GC', 'VERSION']) : rng.pick(COMMANDS),
    CNI_CONTAINERID: objectId(rng),
    CNI_NETNS: rng.chance(0.8) ? `/var/run/netns/${randomChars(rng, 6)}` : rng.pick(['', 'relative/ns', '/proc/self/ns/net', '/', nastyString(rng)]),
    CNI_IFNAME: ifname(rng),
    CNI_PATH: rng.pick(['/opt/cni/bin', '/usr/lib/cni:/opt/cni/bin', '', '::', nastyString(rng)]),
  };
  if (rng.chance(0.5)) env.CNI_ARGS = cniArgs(rng);
  if (rng.chance(0.05)) env.CNI_NETNS_OVERRIDE = rng.pick(['1', 'true', 'TRUE', 'x']);
  return env;
}

function mutateEnv(rng: Rng, env: Record<string, string>): Record<string, string> {
  const out = { ...env };
  for (let n = rng.int(3); n > 0; n--) {
    const key = rng.pick(Object.keys(out).length ? Object.keys(out) : ['CNI_COMMAND']);
    if (rng.chance(0.3)) delete out[key];
    else out[key] = rng.chance(0.5) ? nastyString(rng) : mutateText(rng, out[key] ?? '');
  }
  return out;
}

function prevResult(rng: Rng, version: string): unknown {
  return {
    cniVersion: rng.chance(0.8) ? version : rng.pick(VERSIONS),
    interfaces: [{ name: 'tsbr0', mac: mac(rng) }, { name: ifname(rng), mac: mac(rng), sandbox: '/var/run/netns/x' }],
    ips: [{ ...(version < '1.0.0' ? { version: '4' } : {}), address: `${ip(rng, 4)}/24`, gateway: ip(rng, 4), interface: rng.pick([0, 1, 2, -1]) }],
    routes: [{ dst: rng.pick(['0.0.0.0/0', cidr(rng)]) }],
    dns: { nameservers: [ip(rng)] },
  };
}

function baseConf(rng: Rng): Record<string, unknown> {
  const version = rng.chance(0.85) ? rng.pick(SUPPORTED_VERSIONS) : rng.pick(VERSIONS);
  const conf: Record<string, unknown> = {
    cniVersion: version,
    name: rng.chance(0.8) ? rng.pick(['net1', 'podman', 'k8s-pod-network', 'a.b_c-d']) : objectId(rng),
    type: rng.pick(['tsbridge', 'tsipam', '../tsbridge', 'a/b']),
    bridge: ifname(rng),
    ipam: { type: 'tsipam', subnet: cidr(rng), ranges: [[{ subnet: cidr(rng), gateway: ip(rng) }]] },
  };
  if (rng.chance(0.3)) conf.cniVersions = [rng.pick(VERSIONS), rng.pick(VERSIONS)];
  if (rng.chance(0.6)) {
    conf.runtimeConfig = {
      portMappings: [{ hostPort: port(rng), containerPort: port(rng), protocol: rng.pick(['tcp', 'udp', 'sctp', 'TCP', 'icmp', '']), hostIP: rng.chance(0.7) ? ip(rng) : '' }],
      ips: [rng.chance(0.5) ? ip(rng) : cidr(rng)],
      mac: mac(rng),
      aliases: rng.chance(0.5) ? ['web', rng.chance(0.7) ? 'db.local' : nastyString(rng)] : { [String(conf.name)]: ['web'] },
      dns: { servers: [ip(rng)], searches: ['example.test'], options: ['ndots:2'] },
      ipRanges: [[{ subnet: cidr(rng), rangeStart: ip(rng), gateway: ip(rng) }]],
      bandwidth: { ingressRate: rng.pick([1000, -1, 2 ** 60, 0.5]), egressBurst: 100 },
    };
  }
  if (rng.chance(0.3)) conf.args = { cni: { ips: [ip(rng)], mac: mac(rng) } };
  if (rng.chance(0.35)) conf.prevResult = prevResult(rng, version);
  if (rng.chance(0.2)) conf['cni.dev/valid-attachments'] = [{ containerID: objectId(rng), ifname: ifname(rng) }];
  return conf;
}

/** What a handler does with a request it gets. */
type HandlerMode = { kind: 'result' } | { kind: 'pass' } | { kind: 'throw'; error: unknown };

interface CniCase {
  env: Record<string, string>;
  stdin: Buffer;
  mode: HandlerMode;
}

function thrown(rng: Rng): unknown {
  const codes = ['invalid-config', 'pool-exhausted', 'address-taken', 'interface-exists', 'store-unavailable', 'EEXIST', 'EPERM', 'SQLITE_BUSY', 'weird', '', 'E', 'EINVAL'];
  return rng.oneOf<unknown>(
    () => Object.assign(new Error(nastyString(rng) || 'boom'), { code: rng.pick(codes), kind: rng.pick(['bad-request', 'conflict', 'unavailable', 'internal', 'x', undefined]), retryable: rng.chance(0.3) }),
    () => Object.assign(new Error('with details'), { code: 'EINVAL', details: rng.chance(0.5) ? { field: 'bridge', value: 'x' } : { stderr: 'RTNETLINK answers: Invalid argument' } }),
    () => Object.assign(new Error('explicit'), { cniCode: rng.pick([7, 11, 100, 0, -1, 1.5, '7']) }),
    () => rng.pick([null, undefined, 'a string', 42, {}, { message: 5 }]),
  );
}

/** A valid invocation (the baseline the mutations start from). */
function cleanCase(rng: Rng): { env: Record<string, string>; conf: Record<string, unknown> } {
  const env: Record<string, string> = {
    CNI_COMMAND: rng.pick(['ADD', 'ADD', 'DEL', 'CHECK', 'STATUS', 'GC']),
    CNI_CONTAINERID: `c${rng.int(1e9).toString(16)}`,
    CNI_NETNS: '/var/run/netns/tsot-fuzz',
    CNI_IFNAME: rng.pick(['eth0', 'net1', 'eth1']),
    CNI_PATH: '/opt/cni/bin',
  };
  if (rng.chance(0.3)) env.CNI_ARGS = `IgnoreUnknown=1;K8S_POD_NAME=web-0;IP=10.9.0.${rng.range(2, 250)}`;
  const version = rng.pick(['1.1.0', '1.1.0', '1.0.0', '0.4.0']);
  const conf: Record<string, unknown> = { cniVersion: version, name: 'net1', type: 'tsbridge', ipam: { type: 'tsipam', subnet: '10.9.0.0/24' } };
  if (rng.chance(0.5)) {
    conf.runtimeConfig = {
      portMappings: [{ hostPort: rng.range(1, 65535), containerPort: rng.range(1, 65535), protocol: rng.pick(['tcp', 'udp', 'sctp']) }],
      ips: ['10.9.0.7/24'],
      mac: '02:42:0a:09:00:07',
      aliases: ['web', 'db.local'],
    };
  }
  if (rng.chance(0.3)) conf.prevResult = { cniVersion: version, interfaces: [{ name: 'tsbr0' }], ips: [{ address: '10.9.0.7/24', gateway: '10.9.0.1' }] };
  return { env, conf };
}

function generate(rng: Rng): CniCase {
  let env: Record<string, string>;
  let conf: Record<string, unknown>;
  let stdin: Buffer;
  if (rng.chance(0.35)) {
    ({ env, conf } = cleanCase(rng));
    const doc = rng.chance(0.5) ? conf : mutateJson(rng, conf, 1);
    stdin = Buffer.from(JSON.stringify(doc) ?? 'null');
    if (rng.chance(0.2)) env = mutateEnv(rng, env);
  } else {
    env = rng.chance(0.6) ? baseEnv(rng) : mutateEnv(rng, baseEnv(rng));
    conf = baseConf(rng);
    const r = rng.next();
    if (r < 0.3) stdin = Buffer.from(JSON.stringify(conf));
    else if (r < 0.7) stdin = Buffer.from(JSON.stringify(mutateJson(rng, conf, 4)) ?? 'null');
    else if (r < 0.85) stdin = Buffer.from(mutateText(rng, JSON.stringify(conf)));
    else if (r < 0.96) stdin = mutateBytes(rng, Buffer.from(JSON.stringify(conf)));
    else if (r < 0.998) stdin = Buffer.from(rng.pick(['', ' ', 'null', '[]', '"x"', '1', '{', '{}', '{"name":"x"}', '\u0000', '\ufeff{}']));
    else stdin = Buffer.alloc(4 * 1024 * 1024 + 1, 0x20); // over the stdin limit
  }
  const mode: HandlerMode = rng.chance(0.75) ? { kind: rng.chance(0.7) ? 'result' : 'pass' } : { kind: 'throw', error: thrown(rng) };
  return { env, stdin, mode };
}

// ---- the handlers' view: everything they get must already be valid ---------------------------

const ALIAS = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}$/;

function checkRequest(req: CniRequest): void {
  const bad = (why: string) => violated(`handler got ${why}: ${show({ command: req.command, env: req.env, options: req.options, args: req.args })}`);
  if (!['ADD', 'DEL', 'CHECK', 'STATUS', 'GC'].includes(req.command)) bad('command');
  if (!SUPPORTED_VERSIONS.includes(req.cniVersion)) bad(`cniVersion ${req.cniVersion}`);
  if (typeof req.conf.name !== 'string' || !CNI_NAME.test(req.conf.name)) bad('a bad network name');
  const attach = req.command === 'ADD' || req.command === 'DEL' || req.command === 'CHECK';
  if (attach) {
    if (!CNI_NAME.test(req.env.containerId)) bad('a bad container id');
    if (interfaceNameProblem(req.env.ifname) !== undefined) bad('a bad ifname');
    if (req.env.netns !== '' && !req.env.netns.startsWith('/')) bad('a relative netns');
    if (req.command !== 'DEL' && req.env.netns === '') bad('no netns');
  }
  const o = req.options;
  for (const m of o.portMappings) {
    for (const p of [m.hostPort, m.containerPort]) if (!Number.isInteger(p) || p < 1 || p > 65535) bad(`port ${p}`);
    if (!['tcp', 'udp', 'sctp'].includes(m.protocol)) bad(`protocol ${m.protocol}`);
    if (m.hostIP !== undefined && ipFamily(m.hostIP) === undefined) bad(`hostIP ${m.hostIP}`);
  }
  for (const a of [...o.ips, ...req.args.ips]) if (ipFamily(a) === undefined && cidrFamily(a) === undefined) bad(`ip ${a}`);
  for (const m of [o.mac, req.args.mac]) if (m !== undefined && !isUnicastMac(m)) bad(`mac ${m}`);
  for (const a of o.aliases) if (!ALIAS.test(a)) bad(`alias ${a}`);
  for (const set of o.ipRanges) for (const r of set) if (cidrFamily(r.subnet) === undefined) bad(`range ${r.subnet}`);
  for (const v of Object.values(o.bandwidth ?? {})) if (!Number.isSafeInteger(v) || v < 0) bad(`bandwidth ${v}`);
  for (const s of o.dns?.servers ?? []) if (ipFamily(s) === undefined) bad(`dns server ${s}`);
  for (const a of req.validAttachments) if (typeof a.containerID !== 'string' || typeof a.ifname !== 'string') bad('attachment');
  JSON.stringify(req); // a hand-off must be able to carry it
}

interface Seen {
  requests: CniRequest[];
}

function handlers(mode: HandlerMode, seen: Seen): PluginHandlers {
  const enter = async (req: CniRequest) => {
    seen.requests.push(req);
    checkRequest(req);
    if (mode.kind === 'throw') throw mode.error;
  };
  return {
    async add(req) {
      await enter(req);
      if (mode.kind === 'pass') return undefined;
      return { interfaces: [{ name: req.env.ifname, mac: '02:00:00:00:00:01', sandbox: req.env.netns }], ips: [{ address: '10.9.0.2/24', gateway: '10.9.0.1', interface: 0 }] };
    },
    del: enter,
    check: enter,
    status: enter,
    gc: enter,
  };
}

const SPEC = (h: PluginHandlers): PluginSpec => ({ name: 'tsfuzz', about: 'fuzz target', knownArgs: ['EXTRA'], handlers: h });

// ---- the properties of one invocation ------------------------------------------------------

function checkOutput(c: CniCase, code: number, out: string, err: string, seen: Seen): string {
  if (code !== 0 && code !== 1) violated(`exit code ${code}`);
  const lines = out.split('\n').filter((l) => l !== '');
  if (!c.env.CNI_COMMAND) {
    if (code !== 0 || lines.length !== 0) violated('no CNI_COMMAND must print the about line only');
    return 'about';
  }
  if (code === 1) {
    if (lines.length !== 1) violated(`error output is not one line: ${show(out)}`);
    const e = JSON.parse(lines[0]!) as { cniVersion?: unknown; code?: unknown; msg?: unknown };
    if (typeof e.cniVersion !== 'string' || !SUPPORTED_VERSIONS.includes(e.cniVersion)) violated(`error cniVersion ${show(e.cniVersion)}`);
    if (typeof e.msg !== 'string' || e.msg === '') violated('error without msg');
    if (typeof e.code !== 'number') violated('error without code');
    if (seen.requests.length > 0 && c.mode.kind === 'throw') {
      const want = toCniError(c.mode.error);
      if (e.code !== want.code || e.msg !== want.msg) violated(`handler error came out as ${e.code} ${show(e.msg)}, want ${want.code} ${show(want.msg)}`);
      return `handler error ${e.code}`;
    }
    if (seen.requests.length > 0) violated(`handler ran but the call failed: ${lines[0]}`);
    if (!PROTOCOL_CODES.has(e.code)) violated(`bad input answered with code ${e.code}: ${e.msg}\nstderr: ${err}`);
    if (/\n\s+at /.test(err)) violated(`stack trace on stderr for bad input: ${err}`);
    return `code ${e.code}`;
  }
  if (c.env.CNI_COMMAND === 'VERSION') {
    const v = JSON.parse(lines[0] ?? 'null') as { supportedVersions?: unknown };
    if (!Array.isArray(v?.supportedVersions)) violated(`VERSION answer ${show(out)}`);
    return 'version';
  }
  if (seen.requests.length !== 1) violated(`success after ${seen.requests.length} handler calls`);
  const req = seen.requests[0]!;
  if (req.command === 'ADD') {
    const r = JSON.parse(lines[0] ?? 'null') as { cniVersion?: unknown };
    if (lines.length !== 1 || r?.cniVersion !== req.cniVersion) violated(`ADD output ${show(out)}`);
  } else if (lines.length !== 0) violated(`${req.command} printed ${show(out)}`);
  // A name that passed the CNI rules but not netlink's stricter ones is refused before any
  // command line, as invalid config (7).
  if (req.command === 'ADD') {
    try {
      validateIfName(req.env.ifname, 'CNI_IFNAME');
    } catch (e) {
      if (toCniError(e).code !== 7) violated(`netlink refusal of ifname ${show(req.env.ifname)} maps to ${toCniError(e).code}`);
      return 'ok (ifname only CNI-valid)';
    }
  }
  return `ok ${req.command}`;
}

test('fuzz: CNI env + stdin through runCni', async (t) => {
  await fuzz(t, settings(2500), {
    name: 'cni-runCni',
    file: FILE,
    generate,
    describe: (c) => show({ env: c.env, stdin: c.stdin.length > 600 ? `${c.stdin.length} bytes` : c.stdin.toString('utf8'), mode: c.mode.kind === 'throw' ? { throw: show(c.mode.error) } : c.mode }),
    async check(c) {
      const seen: Seen = { requests: [] };
      let out = '';
      let err = '';
      const code = await runCni(SPEC(handlers(c.mode, seen)), {
        env: c.env,
        readStdin: () => readBounded(Readable.from([c.stdin])),
        stdout: { write: (s: string) => (out += s) },
        stderr: { write: (s: string) => (err += s) },
        isOwnNetns: async (p) => p === '/proc/self/ns/net',
      });
      return checkOutput(c, code, out, err, seen);
    },
  });
});

test('fuzz: the daemon hand-off route (POST /v1/cni bodies)', async (t) => {
  await fuzz(t, settings(2000), {
    name: 'cni-handoff',
    file: FILE,
    generate(rng) {
      const c = generate(rng);
      const body = { plugin: rng.chance(0.9) ? 'tsfuzz' : nastyString(rng), env: c.env, stdin: c.stdin.subarray(0, 100_000).toString('utf8') };
      return { body: rng.chance(0.7) ? body : mutateJson(rng, body, 3), mode: c.mode };
    },
    async check({ body, mode }) {
      const seen: Seen = { requests: [] };
      const h = handlers(mode, seen);
      const { status, body: reply } = await serveHandOff(body, (name) => (name === 'tsfuzz' ? SPEC(h) : undefined));
      if (![200, 400, 409, 500, 503].includes(status)) violated(`status ${status}`);
      if (status === 200) {
        if (seen.requests.length !== 1) violated('200 without exactly one handler call');
        return '200';
      }
      if (!('error' in reply) || typeof reply.error.code !== 'number' || typeof reply.error.msg !== 'string' || reply.error.msg === '') violated(`reply ${show(reply)}`);
      const e = (reply as { error: { code: number; msg: string } }).error;
      if (seen.requests.length > 0) {
        if (mode.kind !== 'throw' || e.code !== toCniError(mode.error).code) violated(`handler ran, reply ${show(reply)}`);
        return `handler error ${e.code}`;
      }
      if (!PROTOCOL_CODES.has(e.code)) violated(`bad body answered with code ${e.code}: ${e.msg}`);
      return `${status} code ${e.code}`;
    },
  });
});
