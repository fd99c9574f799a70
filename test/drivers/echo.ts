// TCP echo servers and clients inside namespaces for the driver tests: a server answers each
// connection with "<name> <peer address>", so a test sees whether its traffic was masqueraded.
// Servers are child processes this test started; they are killed by PID in teardown.
import type { ExecutionContext } from 'ava';
import { tryRun } from '../harness/exec.js';
import type { Netns } from '../harness/netns.js';
import { startNodeServer } from '../harness/node-server.js';

const SERVER = `
const net = require('net');
const { name, port } = JSON.parse(process.argv[1]);
net.createServer((s) => { s.on('error', () => {}); s.end(name + ' ' + s.remoteAddress.replace(/^::ffff:/, '') + '\\n'); })
  .listen(port, '::', () => process.stdout.write('ready\\n'));
setTimeout(() => process.exit(0), 110000).unref();
process.stdin.resume(); process.stdin.on('end', () => process.exit(0));
`;

const CLIENT = `
const net = require('net');
const { host, port, timeoutMs } = JSON.parse(process.argv[1]);
let buf = ''; const s = net.connect({ host, port });
const t = setTimeout(() => { s.destroy(); done('ERR:TIMEOUT'); }, timeoutMs);
function done(r) { clearTimeout(t); process.stdout.write(r); }
s.on('data', (d) => (buf += d));
s.on('end', () => done(buf.trim() || 'ERR:EMPTY'));
s.on('error', (e) => done('ERR:' + e.code));
`;

/** Start an echo server in `ns` on `port` (TCP, both families); killed in teardown. */
export async function serve(t: ExecutionContext, ns: Netns, name: string, port: number): Promise<void> {
  const child = await startNodeServer(ns, `echo ${name}`, SERVER, { name, port });
  t.teardown(() => {
    if (child.exitCode === null && child.pid) process.kill(child.pid, 'SIGKILL');
  });
}

/** One TCP connection from `ns`; the server's line or ERR:<code>. */
export async function reach(ns: Netns, host: string, port: number, timeoutMs = 1200): Promise<string> {
  const arg = JSON.stringify({ host, port, timeoutMs });
  const r = await tryRun('nsenter', [`--net=${ns.path}`, '--', process.execPath, '-e', CLIENT, arg], { timeoutMs: timeoutMs + 10_000 });
  if (r.code !== 0) throw new Error(`client failed: ${r.stderr}`);
  return r.stdout;
}
