// The plugin runner end to end: a real plugin process (fixtures/echo-plugin.ts) fed
// env + stdin like a runtime does, and runCni in-process for the verb/version matrix.
import test from 'ava';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tryRun } from '../harness/exec.js';
import { CniError } from '../../plugins/cni/errors.js';
import { runCni, type CniRequest, type PluginHandlers } from '../../plugins/cni/skel.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const entry = fileURLToPath(new URL('./fixtures/echo-plugin.ts', import.meta.url));
const attach = { CNI_CONTAINERID: 'c0ffee', CNI_NETNS: '/run/netns/tsot-none', CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni' };

async function plugin(env: Record<string, string>, stdin: unknown) {
  const input = typeof stdin === 'string' ? stdin : JSON.stringify(stdin);
  const r = await tryRun(process.execPath, ['--import=tsx', entry], { env: { PATH: process.env.PATH, ...env }, input, cwd: root, timeoutMs: 20_000 });
  let json: Record<string, unknown> | undefined;
  try {
    json = r.stdout.trim() ? JSON.parse(r.stdout) : undefined;
  } catch {
    json = undefined;
  }
  return { ...r, json };
}

test('VERSION answers from the fast path without loading the plugin module', async (t) => {
  const r = await plugin({ CNI_COMMAND: 'VERSION' }, { cniVersion: '1.0.0' });
  t.is(r.code, 0);
  t.deepEqual(r.json, { cniVersion: '1.0.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
  t.false(r.stderr.includes('heavy module loaded'), r.stderr);
});

test('VERSION does not hang when the caller leaves stdin open', async (t) => {
  const child = spawn(process.execPath, ['--import=tsx', entry], { cwd: root, env: { PATH: process.env.PATH, CNI_COMMAND: 'VERSION' }, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearTimeout(killer);
  child.stdin.destroy();
  t.is(code, 0);
  t.is(JSON.parse(out).cniVersion, '1.1.0');
});

test('ADD 0.4.0 in a chain: prevResult kept and extended, output in 0.4.0 shape, capabilities parsed', async (t) => {
  const prevResult = {
    cniVersion: '0.4.0',
    interfaces: [{ name: 'br0', mac: '02:00:00:00:00:01' }],
    ips: [{ version: '4', address: '10.1.0.5/24', gateway: '10.1.0.1', interface: 0 }],
    dns: { nameservers: ['10.1.0.1'] },
  };
  const r = await plugin(
    { CNI_COMMAND: 'ADD', ...attach, CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=web;MAC=02:12:34:56:78:9a;FOO=1' },
    { cniVersion: '0.4.0', name: 'net1', type: 'echo', someUnknownKey: { x: 1 }, prevResult, runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80 }], ips: ['10.88.0.9/16'] } },
  );
  t.is(r.code, 0, r.stdout + r.stderr);
  t.deepEqual(r.json, {
    cniVersion: '0.4.0',
    interfaces: [{ name: 'br0', mac: '02:00:00:00:00:01' }, { name: 'eth0', mac: '02:12:34:56:78:9a', sandbox: '/run/netns/tsot-none' }],
    ips: [
      { version: '4', address: '10.1.0.5/24', gateway: '10.1.0.1', interface: 0 },
      { version: '4', address: '10.88.0.9/16', gateway: '10.88.0.1', interface: 1 },
    ],
    routes: [{ dst: '0.0.0.0/0' }],
    dns: { nameservers: ['10.1.0.1'] },
  });
  const req = JSON.parse(r.stderr.split('\n').find((l) => l.startsWith('REQ '))!.slice(4));
  t.deepEqual(req.options.portMappings, [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }]);
  t.deepEqual(req.args.k8s, { name: 'web' });
});

test('protocol errors print {cniVersion, code, msg} on stdout with exit 1', async (t) => {
  const cases: Array<[Record<string, string>, unknown, number, RegExp]> = [
    [{ CNI_COMMAND: 'ADD', ...attach }, '{"cniVersion": "1.0.0", ', 6, /not valid JSON/],
    [{ CNI_COMMAND: 'ADD', ...attach }, { cniVersion: '0.2.0', name: 'n', type: 'echo' }, 1, /cniVersion "0\.2\.0"/],
    [{ CNI_COMMAND: 'ADD', ...attach, CNI_IFNAME: 'a-very-long-ifname' }, { cniVersion: '1.0.0', name: 'n', type: 'echo' }, 4, /CNI_IFNAME="a-very-long-ifname"/],
    [{ CNI_COMMAND: 'ADD', ...attach }, { cniVersion: '1.0.0', name: 'bad/name', type: 'echo' }, 7, /network name "bad\/name"/],
    [{ CNI_COMMAND: 'ADD', ...attach, CNI_NETNS: '/proc/self/ns/net' }, { cniVersion: '1.0.0', name: 'n', type: 'echo' }, 4, /CNI_NETNS="\/proc\/self\/ns\/net" is the plugin's own/],
    [{ CNI_COMMAND: 'ADD', ...attach }, { cniVersion: '1.1.0', name: 'n', type: 'echo', fail: { code: 'EEXIST', message: 'cannot add veth1' } }, 110, /^EEXIST: cannot add veth1$/],
  ];
  for (const [env, stdin, code, re] of cases) {
    const r = await plugin(env, stdin);
    t.is(r.code, 1, JSON.stringify(stdin));
    t.is(r.json?.code, code, r.stdout);
    t.regex(String(r.json?.msg), re);
    t.is(typeof r.json?.cniVersion, 'string');
  }
});

test('without CNI_COMMAND the plugin prints what it is on stderr and exits 0', async (t) => {
  const r = await plugin({}, '');
  t.is(r.code, 0);
  t.is(r.stdout, '');
  t.regex(r.stderr, /CNI echo test plugin\nCNI protocol versions supported: 0\.3\.0, 0\.3\.1, 0\.4\.0, 1\.0\.0, 1\.1\.0/);
});

// In-process: the same runner over injected io, for the verb/version matrix.
function recorder(): { handlers: PluginHandlers; calls: CniRequest[] } {
  const calls: CniRequest[] = [];
  const handlers: PluginHandlers = {
    async add(req) {
      calls.push(req);
      return undefined;
    },
    async del(req) {
      calls.push(req);
    },
    async check(req) {
      calls.push(req);
    },
    async status(req) {
      calls.push(req);
      if (req.conf.down) throw new CniError(50, 'plugin not available');
    },
    async gc(req) {
      calls.push(req);
    },
  };
  return { handlers, calls };
}

async function inProcess(handlers: PluginHandlers, env: NodeJS.ProcessEnv, stdin: string | object) {
  let stdout = '';
  let stderr = '';
  const code = await runCni(
    { name: 'rec', about: 'recorder', handlers },
    {
      env,
      readStdin: async () => (typeof stdin === 'string' ? stdin : JSON.stringify(stdin)),
      stdout: { write: (s: string) => (stdout += s) },
      stderr: { write: (s: string) => (stderr += s) },
      isOwnNetns: async () => false,
    },
  );
  return { code, stdout, stderr, json: stdout ? JSON.parse(stdout) : undefined };
}

test('verbs gated by version: CHECK from 0.4.0, STATUS and GC from 1.1.0', async (t) => {
  const { handlers, calls } = recorder();
  const conf = (v: string, extra = {}) => ({ cniVersion: v, name: 'n', type: 'rec', ...extra });
  t.is((await inProcess(handlers, { CNI_COMMAND: 'CHECK', ...attach }, conf('0.3.1'))).json.code, 1);
  t.is((await inProcess(handlers, { CNI_COMMAND: 'CHECK', ...attach }, conf('0.4.0'))).code, 0);
  t.is((await inProcess(handlers, { CNI_COMMAND: 'STATUS' }, conf('1.0.0'))).json.code, 1);
  const ok = await inProcess(handlers, { CNI_COMMAND: 'STATUS' }, conf('1.1.0'));
  t.deepEqual([ok.code, ok.stdout], [0, '']);
  const down = await inProcess(handlers, { CNI_COMMAND: 'STATUS' }, conf('1.1.0', { down: true }));
  t.deepEqual(down.json, { cniVersion: '1.1.0', code: 50, msg: 'plugin not available' });
  const gc = await inProcess(handlers, { CNI_COMMAND: 'GC' }, conf('1.1.0', { 'cni.dev/valid-attachments': [{ containerID: 'c1', ifname: 'eth0' }] }));
  t.is(gc.code, 0);
  t.deepEqual(calls.at(-1)!.validAttachments, [{ containerID: 'c1', ifname: 'eth0' }]);
  t.is((await inProcess(handlers, { CNI_COMMAND: 'GC' }, conf('1.1.0', { 'cni.dev/valid-attachments': [{ containerID: 1 }] }))).json.code, 6);
});

test('ADD passthrough returns prevResult converted to the config version; negotiation uses cniVersions', async (t) => {
  const { handlers } = recorder();
  const prevResult = { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', sandbox: '/x' }], ips: [{ address: 'fd00::2/64', interface: 0 }] };
  const r = await inProcess(handlers, { CNI_COMMAND: 'ADD', ...attach }, { cniVersion: '0.3.1', name: 'n', type: 'rec', prevResult });
  t.deepEqual(r.json, { cniVersion: '0.3.1', interfaces: [{ name: 'eth0', sandbox: '/x' }], ips: [{ version: '6', address: 'fd00::2/64', interface: 0 }] });
  const r2 = await inProcess(handlers, { CNI_COMMAND: 'ADD', ...attach }, { cniVersions: ['0.4.0', '1.0.0', '9.0.0'], name: 'n', type: 'rec' });
  t.deepEqual(r2.json, { cniVersion: '1.0.0' });
});

test('DEL is best-effort: bad runtimeConfig or CNI_ARGS only warn; bad prevResult is still a decode error', async (t) => {
  const { handlers, calls } = recorder();
  const r = await inProcess(
    handlers,
    { CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c1', CNI_IFNAME: 'eth0', CNI_ARGS: 'FOO=1' },
    { cniVersion: '1.0.0', name: 'n', type: 'rec', runtimeConfig: { portMappings: [{ hostPort: 0 }] } },
  );
  t.is(r.code, 0, r.stdout);
  t.regex(r.stderr, /ignoring for DEL: CNI_ARGS has unknown keys/);
  t.is(calls.at(-1)!.command, 'DEL');
  const add = await inProcess(handlers, { CNI_COMMAND: 'ADD', ...attach, CNI_ARGS: 'FOO=1' }, { cniVersion: '1.0.0', name: 'n', type: 'rec' });
  t.is(add.json.code, 4);
  const bad = await inProcess(handlers, { CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c1', CNI_IFNAME: 'eth0' }, { cniVersion: '1.0.0', name: 'n', type: 'rec', prevResult: { ips: 'x' } });
  t.is(bad.json.code, 6);
});

test('stdin larger than the limit is an I/O error (5); early errors carry the config version', async (t) => {
  const { handlers } = recorder();
  const { readBounded } = await import('../../plugins/cni/skel.js');
  const big = (async function* () {
    for (let i = 0; i < 5; i++) yield Buffer.alloc(1024 * 1024, 0x20);
  })();
  const err = await t.throwsAsync(readBounded(big), { instanceOf: CniError });
  t.is(err?.code, 5);
  const r = await inProcess(handlers, { CNI_COMMAND: 'ADD', ...attach }, { cniVersion: '0.4.0', name: 'n', type: 'rec', prevResult: 7 });
  t.deepEqual([r.json.cniVersion, r.json.code], ['0.4.0', 6]);
});
