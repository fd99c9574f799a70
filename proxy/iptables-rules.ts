// The iptables implementation of FirewallBackend: DesiredState renders TSO-* chains, one
// IptablesBackend per family applies the changed chains with iptables-restore --noflush.
import type { FirewallBackend } from './backend.js';
import type { LinkState, NetworkState, PortBinding, ServiceState } from './build.js';
import { DesiredState, type Changed } from './desired.js';
import type { NetnsTools } from './exec.js';
import { IptablesBackend, type ApplyStats } from './iptables.js';
import type { Family } from './rules.js';

const FAMILIES: readonly Family[] = [4, 6];

export class IptablesRules implements FirewallBackend {
  readonly kind = 'iptables' as const;
  readonly desired = new DesiredState();
  private readonly backends: Record<Family, IptablesBackend>;

  constructor(tools: NetnsTools) {
    this.backends = { 4: new IptablesBackend({ family: 4, tools }), 6: new IptablesBackend({ family: 6, tools }) };
  }

  setNetworks(networks: readonly NetworkState[]): Changed {
    return this.desired.setNetworks(networks);
  }

  setBindings(endpointId: string, before: readonly PortBinding[], after: readonly PortBinding[]): Changed {
    return this.desired.setBindings(endpointId, before, after);
  }

  setLink(id: string, state: LinkState | undefined): Changed {
    return this.desired.setLink(id, state);
  }

  setService(name: string, state: ServiceState | undefined): Changed {
    return this.desired.setService(name, state);
  }

  async sync(changed: Changed): Promise<void> {
    for (const f of FAMILIES) {
      if (changed[f].size) await this.backends[f].apply(this.desired.changes(f, changed[f]), this.desired.jumps(f));
    }
  }

  async reconcile(): Promise<Record<Family, ApplyStats>> {
    return {
      4: await this.backends[4].reconcile(this.desired.all(4), this.desired.jumps(4)),
      6: await this.backends[6].reconcile(this.desired.all(6), this.desired.jumps(6)),
    };
  }

  /** Nothing to stop: every transaction is its own iptables-restore. */
  close(): void {}

  /** The per-family iptables backend (tests, bench, doctor). */
  backend(family: Family): IptablesBackend {
    return this.backends[family];
  }
}
