// The generators are reproducible: the same seed gives the same inputs (a failure's seed and case
// number replay it), cases are independent of each other, and mutation never touches its input.
import test from 'ava';
import { caseSeed, clone, mutateBytes, mutateJson, mutateText, nastyString, Rng } from './gen.js';
import { settings } from './runner.js';

function sample(seed: number): unknown[] {
  const rng = new Rng(seed);
  const base = { a: [1, 'x', { b: null }], c: 'text' };
  return Array.from({ length: 50 }, () => [nastyString(rng), mutateJson(rng, base), mutateText(rng, 'hello'), mutateBytes(rng, Buffer.from('abc')).toString('hex')]);
}

test('same seed, same inputs; another seed, other inputs', (t) => {
  t.deepEqual(sample(7), sample(7));
  t.notDeepEqual(sample(7), sample(8));
});

test('case seeds are distinct and do not depend on the cases before', (t) => {
  const seeds = new Set(Array.from({ length: 10000 }, (_, i) => caseSeed(20250611, i)));
  t.is(seeds.size, 10000);
  t.is(caseSeed(1, 500), caseSeed(1, 500));
});

test('mutateJson leaves its input alone', (t) => {
  const base = { a: [1, 'x', { b: null }], c: 'text', d: { e: [true] } };
  const copy = clone(base);
  const rng = new Rng(3);
  for (let i = 0; i < 2000; i++) mutateJson(rng, base, 4);
  t.deepEqual(base, copy);
});

test('settings: TSO_FUZZ_CASES, the cap, TSO_FUZZ_SEED and TSO_FUZZ_CASE', (t) => {
  t.like(settings(10, Infinity, {}), { cases: 10 });
  t.like(settings(10, 300, { TSO_FUZZ_CASES: '100000' }), { cases: 300 });
  t.like(settings(10, Infinity, { TSO_FUZZ_SEED: '42', TSO_FUZZ_CASE: '7' }), { seed: 42, only: 7 });
});
