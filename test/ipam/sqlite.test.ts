// The IPAM behaviour suite over the embedded SQLite store (a fresh file per test), plus
// several processes of one host allocating from one file at once.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../store/open.js';
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
