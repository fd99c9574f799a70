// An example interrupted midway leaves nothing behind: Ctrl-C (SIGINT) and SIGTERM clean up
// before exiting; after SIGKILL, the next run's sweep removes what the dead run left.
import test from 'ava';
import { sweepStale } from '../../examples/lib/scenario.js';
import { leftovers, startExample } from './run-example.js';

const settle = async (pid: number) => {
  for (let i = 0; i < 50 && leftovers(pid).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
  return leftovers(pid);
};

test.serial('SIGINT in the middle of an example: it cleans up and exits 130', async (t) => {
  const run = startExample('service-vip');
  t.teardown(() => void run.child.kill('SIGKILL'));
  await run.waitFor(/^web1: 10\.88\.0\.\d+$/);
  t.true(leftovers(run.child.pid!).some((l) => l.startsWith('netns ')), 'namespaces exist while it runs');
  run.child.kill('SIGINT');
  const r = await run.done;
  t.is(r.code, 130, r.stderr);
  t.regex(r.stderr, /SIGINT: cleaning up/);
  t.deepEqual(await settle(run.child.pid!), []);
});

test.serial('SIGKILL leaves namespaces and processes; the next run sweeps them', async (t) => {
  const run = startExample('service-vip');
  t.teardown(() => void run.child.kill('SIGKILL'));
  await run.waitFor(/^daemon ready/);
  run.child.kill('SIGKILL');
  await run.done;
  const left = leftovers(run.child.pid!);
  t.true(left.some((l) => l.startsWith('netns ')) && left.some((l) => l.startsWith('process ')), left.join('\n'));
  const swept = sweepStale();
  t.true(swept.length >= 2, swept.join(', '));
  t.deepEqual(await settle(run.child.pid!), []);
});
