// The nft implementation of FirewallBackend: one `table inet tsoverlay` whose published ports,
// service VIPs and links are map/set elements, so one change is one small `nft -f -` transaction.
// Also keeps one iptables rule per family that lets our accepted forwards past a FORWARD DROP policy.
import { DesiredBackend, type FirewallBackend } from './backend.js';
import type { Changed } from './desired.js';
import type { NetnsTools } from './exec.js';
import type { ApplyStats } from './iptables.js';
import { NftDesired } from './nft-desired.js';
import { NftKernel, type NftApplied } from './nft-kernel.js';
import { ACCEPT_MARK } from './nft-render.js';
import type { Family } from './rules.js';

const MARK = `0x${ACCEPT_MARK.toString(16)}`;
/** As iptables-save prints it. */
export const RELAY_RULE = `-A FORWARD -m mark --mark ${MARK}/${MARK} -j ACCEPT`;

export class NftRules extends DesiredBackend<NftDesired> implements FirewallBackend {
  readonly kind = 'nft' as const;
  readonly kernel: NftKernel;

  constructor(private readonly tools: NetnsTools) {
    super(new NftDesired());
    this.kernel = new NftKernel(tools);
  }

  /** One transaction for both families; a first sync or a vanished table brings in everything desired. */
  async sync(changed: Changed): Promise<void> {
    const first = !this.kernel.loaded;
    await this.kernel.apply(this.desired, () => {
      const keys = new Set([...changed[4], ...changed[6]]);
      // A process's first sync, or a table found missing (deleted by a firewalld-style reload):
      // everything desired goes in (what already matches costs nothing), not only the change.
      if (first || this.kernel.applied.chains.size === 0) for (const k of this.desired.allKeys()) keys.add(k);
      return keys;
    });
    if (first) await this.relay();
  }

  /** Re-read the table; make it exactly the desired one; check the FORWARD relay rules. All counted under family 4. */
  async reconcile(): Promise<Record<Family, ApplyStats>> {
    const applied = await this.kernel.load();
    const stats = await this.kernel.apply(this.desired, () => new Set([...this.desired.allKeys(), ...this.kernel.keysOf(applied)]));
    stats.patched += await this.relay();
    return { 4: stats, 6: { lines: 0, rewritten: 0, patched: 0, created: 0, deleted: 0 } };
  }

  close(): void {
    this.kernel.close();
  }

  /** The table as the kernel shows it (tests, doctor). */
  dump(): Promise<NftApplied> {
    return this.kernel.dump();
  }

  /**
   * nft runs every base chain registered at a hook: our accept does not override a DROP policy
   * of iptables' filter FORWARD (dockerd sets one). Like the iptables backend's FORWARD jump, one
   * rule is appended there (never inserted ahead of others) accepting what our forward chain
   * marked. Idempotent; returns how many were added. No iptables binary: nothing to relay past.
   */
  async relay(): Promise<number> {
    let added = 0;
    for (const f of [4, 6] as const) {
      const save = await this.tools.tryRun(f === 4 ? 'iptables-save' : 'ip6tables-save', ['-t', 'filter']).catch(() => undefined);
      if (!save || save.code !== 0) continue;
      if (save.stdout.split('\n').includes(RELAY_RULE)) continue;
      await this.tools.run(f === 4 ? 'iptables-restore' : 'ip6tables-restore', ['--noflush'], `*filter\n${RELAY_RULE}\nCOMMIT\n`);
      added++;
    }
    return added;
  }
}

