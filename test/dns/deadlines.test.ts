// The forwarder's shared deadline queue: one timer for every waiting query, expiry in order,
// finished waits (stale tokens) ignored, everything expired at shutdown.
import test from 'ava';
import { DeadlineQueue } from '../../dns/deadlines.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('waiters expire after the delay, in order; a waiter that moved on ignores its old token', async (t) => {
  const q = new DeadlineQueue(40);
  const seen: string[] = [];
  const added = new Map<string, number>();
  const late: string[] = [];
  const waiter = (name: string, live: () => number) => ({
    expire: (token: number) => {
      if (token !== live()) return;
      seen.push(`${name}:${token}`);
      if (performance.now() - added.get(`${name}:${token}`)! < 39) late.push(name);
    },
  });
  const add = (name: string, live: () => number, token: number) => {
    added.set(`${name}:${token}`, performance.now());
    q.add(waiter(name, live), token);
  };
  let bToken = 1;
  add('a', () => 1, 1);
  add('b', () => bToken, 1);
  await sleep(15);
  add('c', () => 1, 1);
  bToken = 2; // b finished its first wait and started another
  add('b', () => bToken, 2);
  const t0 = performance.now();
  while (seen.length < 3 && performance.now() - t0 < 5000) await sleep(5);
  t.deepEqual(seen, ['a:1', 'c:1', 'b:2']);
  t.deepEqual(late, [], 'none expired before its delay');
});

test('many waiters share one timer; expireAll ends every pending wait at once', async (t) => {
  const q = new DeadlineQueue(10_000);
  let n = 0;
  for (let i = 0; i < 5000; i++) q.add({ expire: () => n++ }, 0);
  q.expireAll();
  t.is(n, 5000);
  // A waiter added during expiry (a failover) gets its own deadline.
  const q2 = new DeadlineQueue(20);
  const got: number[] = [];
  q2.add({ expire: (k) => (got.push(k), k < 3 && q2.add({ expire: (j) => got.push(j) }, k + 1)) }, 1);
  const t0 = performance.now();
  while (got.length < 2 && performance.now() - t0 < 2000) await sleep(5);
  t.deepEqual(got, [1, 2]);
  t.true(performance.now() - t0 >= 35, 'the second wait is a full delay after the first');
});
