// The firewall backend recorded in the meeting directory (plugins/cni/host-state.ts): replaced
// atomically, unreadable or foreign content means nothing recorded, no temporary file left.
import test from 'ava';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIREWALL_BACKEND_FILE, readFirewallBackend, readHostId, recordFirewallBackend } from '../../plugins/cni/host-state.js';
import type { BackendKind } from '../../proxy/backend.js';

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'tsot-fwrec-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('recorded backend: absent, written, replaced, nothing else left in the directory', (t) => {
  const dir = tempDir(t);
  t.is(readFirewallBackend(dir), undefined);
  recordFirewallBackend(dir, 'nft');
  t.is(readFirewallBackend(dir), 'nft');
  recordFirewallBackend(dir, 'iptables');
  t.is(readFirewallBackend(dir), 'iptables');
  t.deepEqual(readdirSync(dir), [FIREWALL_BACKEND_FILE], 'no temporary file left');
  t.is(readHostId(dir), undefined, 'the host id is a separate file');
});

test('recorded backend: foreign or damaged content reads as nothing recorded; a bad name is refused', (t) => {
  const dir = tempDir(t);
  for (const text of ['', 'pf\n', 'NFT', 'nft iptables', '\0']) {
    writeFileSync(join(dir, FIREWALL_BACKEND_FILE), text);
    t.is(readFirewallBackend(dir), undefined, JSON.stringify(text));
  }
  writeFileSync(join(dir, FIREWALL_BACKEND_FILE), ' nft \n');
  t.is(readFirewallBackend(dir), 'nft', 'surrounding whitespace is fine');
  t.throws(() => recordFirewallBackend(dir, '../x' as BackendKind), { instanceOf: TypeError });
  t.is(readFirewallBackend(dir), 'nft', 'a refused name changes nothing');
});

test('recorded backend: after each of many replacements the file holds a whole name', (t) => {
  const dir = tempDir(t);
  recordFirewallBackend(dir, 'iptables');
  const seen = new Set<string | undefined>();
  for (let i = 0; i < 300; i++) {
    recordFirewallBackend(dir, i % 2 ? 'nft' : 'iptables');
    seen.add(readFirewallBackend(dir));
  }
  t.deepEqual([...seen].sort(), ['iptables', 'nft']);
});
