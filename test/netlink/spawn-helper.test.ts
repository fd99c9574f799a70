// SpawnHelper: the daemon's tools spawned from a small child, with spawnCollect's contract
// (stdin, output, exit code, timeout kill, spawn failure), and a Kernel using it in a namespace.
import test from 'ava';
import { Kernel } from '../../netlink/index.js';
import { SpawnHelper } from '../../netlink/spawn-helper.js';
import { NetnsSet } from '../harness/netns.js';

test('collect: stdin in, stdout/stderr/code out, concurrently; a timeout kills; a missing binary rejects', async (t) => {
  const h = new SpawnHelper();
  t.teardown(() => h.close());
  const outs = await Promise.all(Array.from({ length: 20 }, (_, i) => h.collect(['/bin/sh', '-c', 'cat; echo "e$0" >&2; exit 3', `${i}`], `in${i}`, 5_000)));
  outs.forEach((o, i) => t.deepEqual(o, { code: 3, stdout: `in${i}`, stderr: `e${i}\n`, timedOut: false }));
  const env = await h.collect(['/bin/sh', '-c', 'echo $LC_ALL'], undefined, 5_000);
  t.is(env.stdout, 'C\n');
  const t0 = Date.now();
  const slow = await h.collect(['/bin/sleep', '10'], undefined, 300);
  t.true(slow.timedOut);
  t.true(Date.now() - t0 < 5_000);
  await t.throwsAsync(h.collect(['/nonexistent/tool'], undefined, 1_000), { message: /ENOENT/ });
  // After close, calls still work (spawned directly).
  h.close();
  t.is((await h.collect(['/bin/echo', 'direct'], undefined, 5_000)).stdout, 'direct\n');
});

test('a Kernel spawning through the helper works in a namespace (and reports kernel errors the same way)', async (t) => {
  const nets = new NetnsSet('sph');
  t.teardown(() => nets.cleanup());
  const ns = await nets.add('a');
  const h = new SpawnHelper();
  t.teardown(() => h.close());
  const k = new Kernel({ spawn: h.collect }).ns(ns.path);
  await k.batch((b) => b.linkAdd({ kind: 'veth', name: 'sph0', peer: { name: 'sph1' } }));
  t.truthy(await k.link('sph0'));
  const err = await t.throwsAsync(k.batch((b) => b.linkAdd({ kind: 'veth', name: 'sph0', peer: { name: 'sph2' } })));
  t.is((err as { code?: string }).code, 'EEXIST');
});
