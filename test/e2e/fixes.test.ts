// Regressions for the product fixes the e2e tests needed (the behaviour itself is asserted end to
// end in multihost.test.ts): the tsoverlay CNI config's `networkId` (podman joining a Docker
// tsoverlay network), and RecordStore.updateNetwork (how the daemon records a Docker network's name).
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseTsoverlayConf, overlayNetworkId } from '../../plugins/cni/tsoverlay-handlers.js';
import type { CniRequest } from '../../plugins/cni/skel.js';
import { RecordStore } from '../../plugins/drivers/common/record-store.js';
import type { NetworkRecord } from '../../plugins/drivers/common/records.js';
import { keys } from '../../store/keys.js';
import { openStore } from '../../store/open.js';

const conf = (extra: Record<string, unknown>) => ({ cniVersion: '1.0.0', name: 'blue', type: 'tsoverlay', ipam: { type: 'tsipam' }, ...extra }) as unknown as CniRequest['conf'];

test('tsoverlay conf: one overlay network per CNI name unless networkId names an existing one', (t) => {
  t.like(parseTsoverlayConf(conf({})), { networkId: overlayNetworkId('blue'), existing: false });
  const id = 'a'.repeat(64);
  t.like(parseTsoverlayConf(conf({ networkId: id })), { networkId: id, existing: true, network: 'blue' });
  for (const bad of ['', '../x', 'a b', 7, '-x', 'x'.repeat(256)]) {
    const err = t.throws(() => parseTsoverlayConf(conf({ networkId: bad })));
    t.is((err as { code?: unknown }).code, 7, `networkId ${JSON.stringify(bad)}`);
    t.regex(err!.message, /networkId/);
  }
});

test('RecordStore.updateNetwork: writes a changed record by CAS, nothing when unchanged, undefined when missing', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tsot-e2e-fix-'));
  const store = await openStore(`sqlite://${join(dir, 'store.db')}`);
  t.teardown(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const records = new RecordStore(store);
  t.is(await records.updateNetwork('nope', (cur) => ({ ...cur, name: 'x' })), undefined);
  const rec: NetworkRecord = {
    id: 'n1',
    driver: 'overlay',
    scope: 'global',
    subnets: ['10.0.0.0/24'],
    gateways: ['10.0.0.1'],
    internal: false,
    icc: true,
    masquerade: true,
    ipv6: false,
    options: {},
    createdAt: new Date(0).toISOString(),
  };
  await records.createNetwork(rec);
  const before = (await store.get(keys.network('n1')))!.modRevision;
  t.like(await records.updateNetwork('n1', (cur) => cur), { id: 'n1' });
  t.is((await store.get(keys.network('n1')))!.modRevision, before, 'an unchanged record is not written');
  t.like(await records.updateNetwork('n1', (cur) => ({ ...cur, name: 'blue' })), { name: 'blue' });
  t.like(await records.getNetwork('n1'), { id: 'n1', name: 'blue', subnets: ['10.0.0.0/24'] });
});
