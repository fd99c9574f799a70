// The four executables' common protocol behaviour (VERSION from every entry, STATUS and GC on
// 1.1.0) and the verbs and refusals of tsportmap and tshost; plus the example conflists parse.
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseTsbridgeConf } from '../../plugins/cni/bridge-conf.js';
import { parseTsipamConf } from '../../plugins/cni/ipam-conf.js';
import type { NetConf } from '../../plugins/cni/types.js';
import { ROOT } from './harness.js';
import { bridgeConf, makeWorld } from './world.js';

const VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];

test('VERSION from every entry, for every version asked', async (t) => {
  const w = await makeWorld(t, 'ver');
  for (const p of ['tsbridge', 'tshost', 'tsipam', 'tsportmap']) {
    for (const v of ['0.3.1', '1.1.0']) {
      const r = await w.cni(p, 'VERSION', { cniVersion: v });
      t.deepEqual(r.json, { cniVersion: v, supportedVersions: VERSIONS }, `${p} ${v}: ${r.stderr}`);
    }
  }
});

test('tsportmap and tshost: verbs, STATUS/GC, refusals with their codes', async (t) => {
  const w = await makeWorld(t, 'plg');
  const c = await w.container('c');
  const common = { store: w.store, daemonSocket: join(w.dir, 'none.sock') };
  const add = await w.cni('tsbridge', 'ADD', bridgeConf(w, '10.227.0.0/24'), w.env(c, 'pm1'));
  t.is(add.code, 0, add.stdout);
  const pm = { cniVersion: '1.1.0', name: 'tsot-br', type: 'tsportmap', capabilities: { portMappings: true }, ...common };
  const refusals: Array<[string, object, number, RegExp]> = [
    ['no prevResult', { ...pm, runtimeConfig: { portMappings: [{ hostPort: 8090, containerPort: 80 }] } }, 7, /prevResult/],
    ['conditionsV4', { ...pm, conditionsV4: ['-s', '1.2.3.4'], prevResult: add.json, runtimeConfig: { portMappings: [{ hostPort: 8090, containerPort: 80 }] } }, 2, /conditionsV4/],
    ['hostPort 0', { ...pm, prevResult: add.json, runtimeConfig: { portMappings: [{ hostPort: 0, containerPort: 80 }] } }, 7, /hostPort 0/],
    ['protocol', { ...pm, prevResult: add.json, runtimeConfig: { portMappings: [{ hostPort: 8090, containerPort: 80, protocol: 'icmp' }] } }, 2, /icmp/],
    ['hostIP not local', { ...pm, prevResult: add.json, runtimeConfig: { portMappings: [{ hostPort: 8090, containerPort: 80, hostIP: '192.0.2.7' }] } }, 7, /192\.0\.2\.7/],
  ];
  for (const [what, conf, code, msg] of refusals) {
    const r = await w.cni('tsportmap', 'ADD', conf, w.env(c, 'pm1'));
    t.is(r.json?.code, code, `${what}: ${r.stdout}`);
    t.regex(r.json?.msg ?? '', msg, what);
  }
  const none = await w.cni('tsportmap', 'ADD', { ...pm, prevResult: add.json }, w.env(c, 'pm1'));
  t.deepEqual(none.json?.ips, add.json.ips.map((ip: object) => ({ ...ip })), 'no mappings: prevResult passes through');
  const rc = { portMappings: [{ hostPort: 8090, containerPort: 80, hostIP: '10.227.0.1' }] };
  const ok = await w.cni('tsportmap', 'ADD', { ...pm, prevResult: add.json, runtimeConfig: rc }, w.env(c, 'pm1'));
  t.is(ok.code, 0, ok.stdout);
  t.is((await w.cni('tsportmap', 'CHECK', { ...pm, prevResult: ok.json, runtimeConfig: rc }, w.env(c, 'pm1'))).code, 0);
  const otherPorts = await w.cni('tsportmap', 'CHECK', { ...pm, prevResult: ok.json, runtimeConfig: { portMappings: [{ hostPort: 8091, containerPort: 80 }] } }, w.env(c, 'pm1'));
  t.not(otherPorts.code, 0, 'CHECK compares the mappings');
  t.is((await w.cni('tsportmap', 'STATUS', pm)).code, 0);
  t.is((await w.cni('tsportmap', 'STATUS', { ...pm, store: `sqlite://${w.dir}/store.db/x.db` })).json?.code, 50);
  t.is((await w.cni('tsportmap', 'GC', { ...pm, 'cni.dev/valid-attachments': [] })).code, 0);
  t.notRegex(await w.host.exec('iptables-save', []), /8090/, 'GC withdrew the unlisted mapping');

  const host = { cniVersion: '1.1.0', name: 'tsot-host', type: 'tshost', capabilities: { portMappings: true }, ...common };
  const hrc = { portMappings: [{ hostPort: 7070, containerPort: 7070, protocol: 'udp' }] };
  const h = await w.cni('tshost', 'ADD', { ...host, runtimeConfig: hrc }, w.env(c, 'h1'));
  t.deepEqual(h.json, { cniVersion: '1.1.0' });
  t.is((await w.cni('tshost', 'CHECK', { ...host, prevResult: h.json, runtimeConfig: hrc }, w.env(c, 'h1'))).code, 0);
  t.is((await w.cni('tshost', 'CHECK', { ...host, prevResult: h.json }, w.env(c, 'gone'))).json?.code, 3);
  const udpTaken = await w.cni('tshost', 'ADD', { ...host, runtimeConfig: hrc }, w.env(c, 'h2'));
  t.is(udpTaken.json?.code, 101, udpTaken.stdout);
  t.is((await w.cni('tshost', 'STATUS', host)).code, 0);
  t.is((await w.cni('tshost', 'GC', { ...host, 'cni.dev/valid-attachments': [] })).code, 0);
  t.is((await w.cni('tshost', 'ADD', { ...host, runtimeConfig: hrc }, w.env(c, 'h2'))).code, 0, 'GC released the port');
  for (const id of ['h2', 'h2']) t.is((await w.cni('tshost', 'DEL', host, w.env(undefined, id))).code, 0);
  t.is((await w.cni('tsbridge', 'DEL', bridgeConf(w, '10.227.0.0/24'), w.env(c, 'pm1'))).code, 0);
});

test('the example conflists are valid configs for our plugins', (t) => {
  const dir = join(ROOT, 'examples', 'cni');
  const files = readdirSync(dir).filter((f) => f.endsWith('.conflist'));
  t.true(files.length >= 4);
  for (const f of files) {
    const list = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { name: string; cniVersion: string; plugins: NetConf[] };
    t.true(VERSIONS.includes(list.cniVersion), f);
    for (const p of list.plugins) {
      const conf = { ...p, name: list.name, cniVersion: list.cniVersion } as NetConf;
      if (p.type === 'tsbridge') t.notThrows(() => parseTsbridgeConf(conf), f);
      if (p.ipam?.type === 'tsipam') t.notThrows(() => parseTsipamConf(conf), `${f} ipam`);
    }
  }
});
