// The IPAM behaviour suite over the embedded SQLite store (a fresh file per test), plus
// several processes of one host allocating from one file at once.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openStore } from '../../store/open.js';
import { Ipam } from '../../ipam/ipam.js';
import { run } from '../harness/exec.js';
import { ipamBehaviour } from './behaviour.js';

const dir = mkdtempSync(join(tmpdir(), 'tsot-ipam-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

ipamBehaviour('sqlite', {
  async world() {
    const url = `sqlite://${join(dir, `w${n++}.db`)}`;
    return { open: () => openStore(url) };
  },
});

test('sqlite: 6 processes of one host and 2 of another allocate from one file without duplicates', async (t) => {
  const url = `sqlite://${join(dir, 'procs.db')}`;
  const store = await openStore(url);
  t.teardown(() => store.close());
  const ipam = new Ipam(store, { hostId: 'h1' });
  const p = await ipam.requestPool({ space: 'local', cidr: '10.88.0.0/24' });
  const worker = fileURLToPath(new URL('./fixtures/alloc-worker.ts', import.meta.url));
  const jobs = Array.from({ length: 8 }, (_, i) => ({ url, poolId: p.poolId, hostId: i < 6 ? 'h1' : 'h2', count: 30, concurrency: 4, tag: `w${i}` }));
  const outs = await Promise.all(jobs.map((j) => run(process.execPath, ['--import=tsx', worker, JSON.stringify(j)], { timeoutMs: 60_000 })));
  const results = outs.map((o) => JSON.parse(o.trim().split('\n').pop()!) as { told: string[]; errors: string[] });
  const told = results.flatMap((r) => r.told);
  const errors = results.flatMap((r) => r.errors);
  // 240 requests for 253 handouts: every one succeeds, each address once.
  t.deepEqual(errors, []);
  t.is(told.length, 240);
  t.is(new Set(told).size, 240);
  const stored = await ipam.listAllocations(p.poolId);
  t.deepEqual(stored.map((s) => s.address).sort(), [...told].sort());
  t.deepEqual([...new Set(stored.map((s) => s.host))].sort(), ['h1', 'h2'], 'both hosts allocated');
});
