// A DNS timing probe, run inside a container's network namespace (nsenter --net=/proc/PID/ns/net):
// asks SERVER:PORT for NAME (type A) every INTERVAL ms and prints one JSON line for the first
// reply that matches MODE ("present": NOERROR with an A record [equal to EXPECT when given];
// "absent": NXDOMAIN), with the wall-clock time it arrived, then exits 0 (2 on timeout).
// Plain JS so it starts fast; prints "ready" once its socket is bound.
// Usage: node dns-probe.mjs SERVER PORT NAME MODE TIMEOUT_MS [INTERVAL_MS] [EXPECT]
import { createSocket } from 'node:dgram';

const [server, portText, name, mode, timeoutText, intervalText = '5', expect = ''] = process.argv.slice(2);
if (!server || !name || (mode !== 'present' && mode !== 'absent')) {
  process.stderr.write('usage: dns-probe.mjs SERVER PORT NAME present|absent TIMEOUT_MS [INTERVAL_MS] [EXPECT]\n');
  process.exit(64);
}

/** An A/IN query with recursion desired. */
function query(id) {
  const labels = name.replace(/\.$/, '').split('.');
  const parts = [Buffer.from([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0])];
  for (const l of labels) parts.push(Buffer.from([l.length]), Buffer.from(l, 'ascii'));
  parts.push(Buffer.from([0, 0, 1, 0, 1]));
  return Buffer.concat(parts);
}

/** Offset just past the (possibly compressed) name at `off`. */
function skipName(buf, off) {
  while (off < buf.length) {
    const len = buf[off];
    if (len === 0) return off + 1;
    if ((len & 0xc0) === 0xc0) return off + 2;
    off += len + 1;
  }
  return off;
}

/** rcode and the A addresses of a reply. */
function parse(buf) {
  const rcode = buf[3] & 0x0f;
  const qd = buf.readUInt16BE(4);
  const an = buf.readUInt16BE(6);
  let off = 12;
  for (let i = 0; i < qd; i++) off = skipName(buf, off) + 4;
  const addrs = [];
  for (let i = 0; i < an && off < buf.length; i++) {
    off = skipName(buf, off);
    const type = buf.readUInt16BE(off);
    const rdlen = buf.readUInt16BE(off + 8);
    if (type === 1 && rdlen === 4) addrs.push([...buf.subarray(off + 10, off + 14)].join('.'));
    off += 10 + rdlen;
  }
  return { rcode, addrs };
}

const sock = createSocket('udp4');
const started = Date.now();
let id = Math.floor(Math.random() * 0xffff);
let last = null;
let timer;
sock.on('message', (msg) => {
  const r = parse(msg);
  last = r;
  const ok = mode === 'present' ? r.rcode === 0 && r.addrs.length > 0 && (!expect || r.addrs.includes(expect)) : r.rcode === 3;
  if (!ok) return;
  process.stdout.write(`${JSON.stringify({ t: Date.now(), ...r })}\n`);
  clearInterval(timer);
  sock.close();
});
sock.on('error', () => undefined);
sock.bind(0, () => {
  process.stdout.write('ready\n');
  const send = () => {
    if (Date.now() - started > Number(timeoutText)) {
      process.stdout.write(`${JSON.stringify({ timeout: true, last })}\n`);
      clearInterval(timer);
      sock.close();
      process.exitCode = 2;
      return;
    }
    id = (id + 1) & 0xffff;
    sock.send(query(id), Number(portText), server, () => undefined);
  };
  send();
  timer = setInterval(send, Number(intervalText));
});
