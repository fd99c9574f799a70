// The daemon started with --firewall-backend nft in a test namespace: its firewall lives in one
// nft table (and the FORWARD relay rule), none of it in iptables' TSO-* chains; the default
// daemon is checked elsewhere (test/daemon). The root namespace's rulesets are untouched.
import test from 'ava';
import { startDaemon } from '../harness/daemon.js';
import { NetnsSet } from '../harness/netns.js';
import { NFT_BIN, saveAll } from './topo.js';

test('tsoverlay daemon --firewall-backend nft programs one nft table, chosen at start-up', async (t) => {
  const rootBefore = await saveAll();
  const nets = new NetnsSet('dnft');
  t.teardown(() => nets.cleanup());
  const host = await nets.add('h');
  const d = await startDaemon({ netnsPath: host.path, hostId: 'host-nft', extraArgs: ['--firewall-backend', 'nft'] });
  t.teardown(() => d.cleanup());
  await d.waitForLog('daemon ready');
  const table = await host.exec(NFT_BIN, ['list', 'table', 'inet', 'tsoverlay']);
  for (const chain of ['nat-prerouting', 'published', 'filter-forward', 'raw-prerouting']) t.regex(table, new RegExp(`\\tchain ${chain} \\{`), chain);
  const ipt = await host.exec('iptables-save', []);
  t.false(ipt.includes(':TSO-'), 'no iptables chain of ours');
  t.true(ipt.includes('-A FORWARD -m mark --mark 0x2000/0x2000 -j ACCEPT'), 'the relay of our forward accepts');
  t.is(await saveAll(), rootBefore, 'the root namespace firewall is unchanged');
});
