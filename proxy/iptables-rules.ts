// The iptables implementation of FirewallBackend: DesiredState renders TSO-* chains, one
// IptablesBackend per family applies the changed chains with iptables-restore --noflush.
import { DesiredBackend, type FirewallBackend } from './backend.js';
import { DesiredState, type Changed } from './desired.js';
import type { NetnsTools } from './exec.js';
import { IptablesBackend, type ApplyStats } from './iptables.js';
import type { Family } from './rules.js';

const FAMILIES: readonly Family[] = [4, 6];

export class IptablesRules extends DesiredBackend<DesiredState> implements FirewallBackend {
  readonly kind = 'iptables' as const;
  private readonly backends: Record<Family, IptablesBackend>;
  /** Families this process has synced or reconciled at least once. */
  private readonly synced = new Set<Family>();

  constructor(tools: NetnsTools) {
    super(new DesiredState());
    this.backends = { 4: new IptablesBackend({ family: 4, tools }), 6: new IptablesBackend({ family: 6, tools }) };
  }

  /**
   * A process's first sync of a family brings in every desired chain (what already matches costs
   * nothing), not only the change: the jumps need our base chains, which a kernel without our
   * rules (a reboot, a switch from the nft backend) lacks.
   */
  async sync(changed: Changed): Promise<void> {
    for (const f of FAMILIES) {
      if (!changed[f].size) continue;
      const changes = this.desired.changes(f, changed[f]);
      if (!this.synced.has(f)) for (const [k, c] of this.desired.all(f)) changes.set(k, c);
      await this.backends[f].apply(changes, this.desired.jumps(f));
      this.synced.add(f);
    }
  }

  async reconcile(): Promise<Record<Family, ApplyStats>> {
    const out = {} as Record<Family, ApplyStats>;
    for (const f of FAMILIES) {
      out[f] = await this.backends[f].reconcile(this.desired.all(f), this.desired.jumps(f));
      this.synced.add(f);
    }
    return out;
  }

  /** Nothing to stop: every transaction is its own iptables-restore. */
  close(): void {}

  /** The per-family iptables backend (tests, bench, doctor). */
  backend(family: Family): IptablesBackend {
    return this.backends[family];
  }
}
