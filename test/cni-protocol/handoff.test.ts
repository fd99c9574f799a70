// Handing CNI invocations to a daemon over a real unix socket, and falling back to the
// local handlers when no daemon listens.
import test from 'ava';
import { createServer, type Server, type IncomingMessage, type ServerResponse } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveHandOff } from '../../plugins/cni/handoff-server.js';
import { HANDOFF_PATH } from '../../plugins/cni/handoff.js';
import { runCni, type PluginHandlers, type PluginSpec } from '../../plugins/cni/skel.js';
import { IpamError } from '../../ipam/errors.js';

const attach = { CNI_CONTAINERID: 'c1', CNI_NETNS: '/run/netns/tsot-none', CNI_IFNAME: 'eth0' };

function handlersNamed(tag: string, calls: string[]): PluginHandlers {
  return {
    async add(req) {
      calls.push(`${tag}:ADD`);
      if (req.conf.fail) throw new IpamError('pool-exhausted', 'no free address in 10.9.0.0/30');
      return { interfaces: [{ name: `${tag}0` }], ips: [{ address: '10.9.0.2/30', interface: 0 }] };
    },
    async del() {
      calls.push(`${tag}:DEL`);
    },
    async check() {
      calls.push(`${tag}:CHECK`);
    },
  };
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

async function listen(t: { teardown(fn: () => Promise<void> | void): void }, socket: string, handler: Handler): Promise<Server> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  t.teardown(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return server;
}

function daemonHandler(spec: PluginSpec): Handler {
  return (req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (d: string) => (body += d));
    req.on('end', async () => {
      if (req.url !== HANDOFF_PATH) {
        res.writeHead(404).end('{}');
        return;
      }
      const reply = await serveHandOff(JSON.parse(body), (name) => (name === spec.name ? spec : undefined));
      res.writeHead(reply.status, { 'content-type': 'application/json' }).end(JSON.stringify(reply.body));
    });
  };
}

async function setup(t: { teardown(fn: () => Promise<void> | void): void }) {
  const dir = await mkdtemp(join(tmpdir(), 'tsot-cni-handoff-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const socket = join(dir, 'tsoverlay.sock');
  const calls: string[] = [];
  let loads = 0;
  const client: PluginSpec = {
    name: 'tsrec',
    about: 'recorder',
    handlers: async () => {
      loads++;
      return handlersNamed('local', calls);
    },
    daemonSocket: (req) => (typeof req.conf.daemonSocket === 'string' ? req.conf.daemonSocket : socket),
    handOffTimeoutMs: 1000,
  };
  const daemon: PluginSpec = { name: 'tsrec', about: 'daemon side', handlers: handlersNamed('daemon', calls) };
  return { socket, calls, client, daemon, loads: () => loads };
}

async function invoke(spec: PluginSpec, env: Record<string, string>, conf: object) {
  let stdout = '';
  const code = await runCni(spec, {
    env,
    readStdin: async () => JSON.stringify(conf),
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: () => true },
    isOwnNetns: async () => false,
  });
  return { code, stdout, json: stdout ? JSON.parse(stdout) : undefined };
}

test('with a daemon listening, ADD/DEL run there and the local handlers are never loaded', async (t) => {
  const s = await setup(t);
  await listen(t, s.socket, daemonHandler(s.daemon));
  const add = await invoke(s.client, { CNI_COMMAND: 'ADD', ...attach }, { cniVersion: '0.4.0', name: 'n1', type: 'tsrec' });
  t.is(add.code, 0, add.stdout);
  t.deepEqual(add.json, { cniVersion: '0.4.0', interfaces: [{ name: 'daemon0' }], ips: [{ version: '4', address: '10.9.0.2/30', interface: 0 }] });
  const del = await invoke(s.client, { CNI_COMMAND: 'DEL', ...attach }, { cniVersion: '0.4.0', name: 'n1', type: 'tsrec' });
  t.deepEqual([del.code, del.stdout], [0, '']);
  t.deepEqual(s.calls, ['daemon:ADD', 'daemon:DEL']);
  t.is(s.loads(), 0);
});

test("the daemon's error reaches the runtime with its CNI code", async (t) => {
  const s = await setup(t);
  await listen(t, s.socket, daemonHandler(s.daemon));
  const r = await invoke(s.client, { CNI_COMMAND: 'ADD', ...attach }, { cniVersion: '1.0.0', name: 'n1', type: 'tsrec', fail: true });
  t.is(r.code, 1);
  t.deepEqual(r.json, { cniVersion: '1.0.0', code: 100, msg: 'no free address in 10.9.0.0/30' });
});

test('no daemon (no socket) or a daemon without the route: the handlers run locally', async (t) => {
  const s = await setup(t);
  const r = await invoke(s.client, { CNI_COMMAND: 'ADD', ...attach }, { cniVersion: '1.1.0', name: 'n1', type: 'tsrec' });
  t.is(r.code, 0, r.stdout);
  t.is(r.json.interfaces[0].name, 'local0');
  await listen(t, s.socket, (_req, res) => res.writeHead(404).end('{}'));
  const r2 = await invoke(s.client, { CNI_COMMAND: 'DEL', ...attach }, { cniVersion: '1.1.0', name: 'n1', type: 'tsrec' });
  t.is(r2.code, 0);
  t.deepEqual(s.calls, ['local:ADD', 'local:DEL']);
});

test('a daemon that accepts but never answers is a try-again-later (11), not a local retry', async (t) => {
  const s = await setup(t);
  await listen(t, s.socket, () => {});
  const r = await invoke(s.client, { CNI_COMMAND: 'ADD', ...attach }, { cniVersion: '1.0.0', name: 'n1', type: 'tsrec' });
  t.is(r.json.code, 11);
  t.deepEqual(s.calls, []);
});

test('serveHandOff validates what it is given like the executable does', async (t) => {
  const s = await setup(t);
  const specFor = (n: string) => (n === 'tsrec' ? s.daemon : undefined);
  const bad = await serveHandOff({ plugin: 'tsrec' }, specFor);
  t.deepEqual([bad.status, (bad.body as { error: { code: number } }).error.code], [400, 6]);
  const unknown = await serveHandOff({ plugin: 'nope', env: {}, stdin: '{}' }, specFor);
  t.is((unknown.body as { error: { code: number } }).error.code, 7);
  const env = await serveHandOff({ plugin: 'tsrec', env: { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_NETNS: '/x', CNI_IFNAME: 'bad/if' }, stdin: '{}' }, specFor);
  t.regex((env.body as { error: { msg: string } }).error.msg, /CNI_IFNAME="bad\/if"/);
  const conflict = await serveHandOff({ plugin: 'tsrec', env: { CNI_COMMAND: 'ADD', ...attach, PATH: '/x' }, stdin: JSON.stringify({ cniVersion: '1.0.0', name: 'n', fail: true }) }, specFor);
  t.is(conflict.status, 409);
});
