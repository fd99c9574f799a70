// tsbridge (+ tsipam in-process) as a runtime calls it, inside a test host namespace: real
// veths, pings, rules; every verb, the spec versions, the options and the error codes.
import test from 'ava';
import { allocations, bridgeConf, endpointDetails, endpointRecords, hostVeths, iptablesSave, linkNames, makeWorld, ping } from './world.js';

test('two containers: ADD, ping, result, CHECK, ADD again is 102, DEL twice and without netns, nothing left', async (t) => {
  const w = await makeWorld(t, 'brA');
  const [c1, c2] = [await w.container('c1'), await w.container('c2')];
  const conf = bridgeConf(w, '10.211.0.0/24');
  const a1 = await w.cni('tsbridge', 'ADD', conf, w.env(c1, 'ctr1'));
  t.is(a1.code, 0, a1.stdout + a1.stderr);
  const a2 = await w.cni('tsbridge', 'ADD', conf, w.env(c2, 'ctr2'));
  t.is(a2.code, 0, a2.stdout + a2.stderr);
  const [br, veth, eth0] = a1.json.interfaces;
  t.deepEqual(br, { name: 'tsotbr0' });
  t.regex(veth.name, /^tso[0-9a-f]{12}$/);
  t.deepEqual(eth0, { name: 'eth0', mac: '02:42:0a:d3:00:02', mtu: 1500, sandbox: c1.path });
  t.deepEqual(a1.json.ips, [{ address: '10.211.0.2/24', gateway: '10.211.0.1', interface: 2 }]);
  t.deepEqual(a1.json.routes, [{ dst: '0.0.0.0/0' }]);
  t.deepEqual(a1.json.dns, { nameservers: ['10.211.0.1'] });
  t.true(await ping(c1, '10.211.0.3'), 'c1 reaches c2');
  t.true(await ping(c2, '10.211.0.1'), 'c2 reaches the gateway');
  t.regex(await iptablesSave(w.host), /-A TSO-POSTROUTING -s 10\.211\.0\.0\/24 ! -o tsotbr0 -j MASQUERADE/);

  const check = await w.cni('tsbridge', 'CHECK', { ...conf, prevResult: a1.json }, w.env(c1, 'ctr1'));
  t.is(check.code, 0, check.stdout);
  const again = await w.cni('tsbridge', 'ADD', conf, w.env(c1, 'ctr1'));
  t.is(again.json?.code, 102, again.stdout);
  t.true(await ping(c1, '10.211.0.3'), 'a refused ADD changed nothing');

  await c2.ip('link', 'del', 'eth0');
  const broken = await w.cni('tsbridge', 'CHECK', { ...conf, prevResult: a2.json }, w.env(c2, 'ctr2'));
  t.not(broken.code, 0);
  t.regex(broken.json?.msg ?? '', /eth0 is missing/);

  for (let i = 0; i < 2; i++) t.is((await w.cni('tsbridge', 'DEL', conf, w.env(c1, 'ctr1'))).code, 0, `DEL #${i + 1}`);
  const noNetns = await w.cni('tsbridge', 'DEL', conf, w.env(undefined, 'ctr2'));
  t.is(noNetns.code, 0, noNetns.stdout);
  t.deepEqual(await hostVeths(w.host), []);
  t.deepEqual(await allocations(w.store), []);
  t.deepEqual(await endpointRecords(w.store), []);
  t.false((await linkNames(c1)).includes('eth0'));
});

test('spec versions: result shapes of 0.3.1, 0.4.0 and 1.1.0; CHECK needs 0.4.0; STATUS and GC (1.1.0)', async (t) => {
  const w = await makeWorld(t, 'brV');
  const c = await w.container('c');
  for (const v of ['0.3.1', '0.4.0', '1.1.0']) {
    const conf = { ...bridgeConf(w, '10.212.0.0/24'), cniVersion: v };
    const add = await w.cni('tsbridge', 'ADD', conf, w.env(c, `v${v}`));
    t.is(add.code, 0, `${v}: ${add.stdout}`);
    t.is(add.json.cniVersion, v);
    const ip = add.json.ips[0];
    t.deepEqual(Object.keys(ip).sort(), v === '1.1.0' ? ['address', 'gateway', 'interface'] : ['address', 'gateway', 'interface', 'version'], v);
    t.regex(ip.address, /^10\.212\.0\.\d+\/24$/);
    if (v !== '1.1.0') t.is(ip.version, '4');
    t.is(add.json.interfaces[2].mtu, v === '1.1.0' ? 1500 : undefined, `${v}: mtu only in 1.1.0`);
    const check = await w.cni('tsbridge', 'CHECK', { ...conf, prevResult: add.json }, w.env(c, `v${v}`));
    t.is(check.json?.code ?? 0, v === '0.3.1' ? 1 : 0, `${v} CHECK: ${check.stdout}`);
    if (v === '1.1.0') {
      t.is((await w.cni('tsbridge', 'STATUS', conf)).code, 0);
      const gc = await w.cni('tsbridge', 'GC', { ...conf, 'cni.dev/valid-attachments': [] });
      t.is(gc.code, 0, gc.stdout);
      t.deepEqual(await hostVeths(w.host), [], 'GC removed the unlisted attachment');
    } else {
      t.is((await w.cni('tsbridge', 'DEL', conf, w.env(c, `v${v}`))).code, 0);
    }
    t.deepEqual(await allocations(w.store), [], `${v}: nothing allocated afterwards`);
  }
  const down = await w.cni('tsbridge', 'STATUS', { ...bridgeConf(w, '10.212.0.0/24', { store: `sqlite://${w.dir}/store.db/x/y.db` }), cniVersion: '1.1.0' });
  t.is(down.json?.code, 50, down.stdout);
});

test('bad inputs: codes 1, 2, 4, 7, 11, 100, 102 with nothing left behind', async (t) => {
  const w = await makeWorld(t, 'brE');
  const c = await w.container('c');
  const base = bridgeConf(w, '10.213.0.0/30');
  const cases: Array<[string, unknown, number, RegExp]> = [
    ['bridge name', { ...base, bridge: 'a/b' }, 7, /bridge "a\/b"/],
    ['promiscMode', { ...base, promiscMode: true }, 2, /promiscMode true/],
    ['mtu', { ...base, mtu: 20 }, 7, /mtu 20/],
    ['no ipam', { ...base, ipam: undefined }, 7, /ipam\.type/],
    ['version', { ...base, cniVersion: '9.9.9' }, 1, /9\.9\.9/],
    ['bad CIDR', bridgeConf(w, '10.213.0.0/40'), 7, /subnet "10\.213\.0\.0\/40"/],
  ];
  for (const [what, conf, code, msg] of cases) {
    const r = await w.cni('tsbridge', 'ADD', conf, w.env(c, 'bad'));
    t.is(r.json?.code, code, `${what}: ${r.stdout}`);
    t.regex(r.json?.msg ?? '', msg, what);
  }
  const noNetns = await w.cni('tsbridge', 'ADD', base, w.env(undefined, 'bad'));
  t.is(noNetns.json?.code, 4);
  t.regex(noNetns.json.msg, /CNI_NETNS/);
  const relative = await w.cni('tsbridge', 'ADD', base, w.env(c, 'bad', { netns: 'netns-1' }));
  t.is(relative.json?.code, 4);

  // A /30 has one address besides the gateway: the second container is refused, its veth undone.
  const c2 = await w.container('c2');
  t.is((await w.cni('tsbridge', 'ADD', base, w.env(c, 'first'))).code, 0);
  const full = await w.cni('tsbridge', 'ADD', base, w.env(c2, 'second'));
  t.is(full.json?.code, 100, full.stdout);
  // An interface of that name already in the namespace (made by someone else): 102, allocation undone.
  const c3 = await w.container('c3');
  await c3.ip('link', 'add', 'eth0', 'type', 'bridge');
  const taken = await w.cni('tsbridge', 'ADD', bridgeConf(w, '10.213.0.0/30', {}, { ranges: [[{ subnet: '10.213.0.0/30' }], [{ subnet: 'fd00:213::/64' }]] }), w.env(c3, 'third'));
  t.true(taken.json?.code === 102 || taken.json?.code === 100, taken.stdout);
  const changed = await w.cni('tsbridge', 'ADD', { ...base, mtu: 1400 }, w.env(c2, 'second'));
  t.is(changed.json?.code, 7, changed.stdout);
  t.regex(changed.json.msg, /mtu 1400.*exists/);
  const down = await w.cni('tsbridge', 'ADD', { ...base, store: `sqlite://${w.dir}/store.db/x/y.db` }, w.env(c2, 'second'));
  t.is(down.json?.code, 11, down.stdout);
  t.deepEqual(await allocations(w.store), ['10.213.0.2 cni:tsot-br:first:eth0']);
  t.is((await hostVeths(w.host)).length, 1, 'only the first container has a veth');
});

test('options: isGateway off, isDefaultGateway, mtu, hairpinMode, ipMasq off, MAC and IP from CNI_ARGS', async (t) => {
  const w = await makeWorld(t, 'brO');
  const [a, b] = [await w.container('a'), await w.container('b')];
  const plain = bridgeConf(w, '10.214.0.0/24', { name: 'tsot-l2', bridge: 'tsotl2', isGateway: false, ipMasq: false }, { routes: [] });
  const ra = await w.cni('tsbridge', 'ADD', plain, w.env(a, 'ca'));
  t.is(ra.code, 0, ra.stdout);
  t.is(ra.json.dns, undefined);
  t.is((await w.host.ip('-j', 'addr', 'show', 'dev', 'tsotl2')).includes('10.214.0.1'), false, 'no gateway address on the bridge');
  t.false((await a.ip('route')).includes('default'));
  t.notRegex(await iptablesSave(w.host), /10\.214\.0\.0\/24 ! -o tsotl2 -j MASQUERADE/);

  const gw = bridgeConf(w, '10.215.0.0/24', { name: 'tsot-gw', bridge: 'tsotgw', isDefaultGateway: true, mtu: 1400, hairpinMode: true, ipMasq: false }, { routes: [] });
  const withAliases = { ...gw, capabilities: { aliases: true }, runtimeConfig: { aliases: { 'tsot-gw': ['web', 'db'] } } };
  const rb = await w.cni('tsbridge', 'ADD', withAliases, w.env(b, 'cb', { args: 'IgnoreUnknown=1;K8S_POD_NAME=bee;MAC=02:aa:bb:cc:dd:ee;IP=10.215.0.50' }));
  t.is(rb.code, 0, rb.stdout);
  t.like(rb.json, { ips: [{ address: '10.215.0.50/24', gateway: '10.215.0.1' }], routes: [{ dst: '0.0.0.0/0', gw: '10.215.0.1' }] });
  const eth0 = JSON.parse(await b.ip('-j', 'link', 'show', 'eth0'))[0];
  t.is(eth0.address, '02:aa:bb:cc:dd:ee');
  t.is(eth0.mtu, 1400);
  t.regex(await b.ip('route'), /default via 10\.215\.0\.1/);
  const port = JSON.parse(await w.host.ip('-j', '-d', 'link', 'show', rb.json.interfaces[1].name))[0];
  t.is(port.mtu, 1400);
  t.is(port.linkinfo?.info_slave_data?.hairpin, true);
  t.true(await ping(b, '10.215.0.1'));
  const rec = (await endpointDetails(w.store)).find((e) => e.id === 'cb:eth0');
  t.deepEqual([rec?.names, rec?.aliases], [['bee'], ['web', 'db']], 'names and aliases recorded for DNS');
  for (const [conf, ns, id] of [[plain, a, 'ca'], [gw, b, 'cb']] as const) t.is((await w.cni('tsbridge', 'DEL', conf, w.env(ns, id))).code, 0);
  t.deepEqual(await allocations(w.store), []);
});
