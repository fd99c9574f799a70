// The nft backend's long-lived `nft -i` session, in a namespace of its own: a line is one
// all-or-nothing transaction, nft's refusal comes back as the error, the session survives it,
// and close() ends the process. The root namespace's ruleset is untouched.
import test from 'ava';
import { NetnsTools } from '../../proxy/exec.js';
import { NftSession } from '../../proxy/nft-session.js';
import { NetnsSet } from '../harness/netns.js';
import { NFT_BIN } from './topo.js';

test('a line is one transaction; an error names nft\'s message and leaves nothing applied; close ends the process', async (t) => {
  const set = new NetnsSet('nses');
  t.teardown(() => set.cleanup());
  const ns = await set.add('h');
  const tools = new NetnsTools(ns.path);
  const session = new NftSession(tools.argv('stdbuf', ['-oL', '-eL', tools.path('nft'), '-i']), 5_000);
  t.teardown(() => session.close());
  await session.run(['add table inet tsoverlay', 'add map inet tsoverlay m { type inet_proto . inet_service : ipv4_addr . inet_service; }']);
  await session.run(['add element inet tsoverlay m { tcp . 80 : 10.0.0.1 . 8080 }']);
  const err = await t.throwsAsync(session.run(['add element inet tsoverlay m { tcp . 81 : 10.0.0.1 . 8081 }', 'delete element inet tsoverlay m { tcp . 9 }']), { code: 'nft-failed' });
  t.regex(err?.message ?? '', /No such file or directory/);
  const list = () => ns.exec(NFT_BIN, ['list', 'map', 'inet', 'tsoverlay', 'm']);
  t.false((await list()).includes('tcp . 81'), 'the failed line applied nothing');
  await session.run(['delete element inet tsoverlay m { tcp . 80 }', 'add element inet tsoverlay m { tcp . 82 : 10.0.0.2 . 80 }']);
  const after = await list();
  t.true(after.includes('tcp . 82') && !after.includes('tcp . 80 '), after);
  await t.throwsAsync(session.run(['add element inet tsoverlay m { tcp . 1 : 10.0.0.1 . 1 }\nflush ruleset']), { code: 'internal' });
  const pid = session.pid!;
  t.true(pid > 0);
  const alive = () => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  session.close();
  for (let i = 0; i < 40 && alive(); i++) await new Promise((r) => setTimeout(r, 50));
  t.false(alive(), 'no session process is left');
});
