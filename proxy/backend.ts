// The firewall backend interface the facade (firewall.ts) drives, and the choice between its
// two implementations (iptables-restore over TSO-* chains, or one nft table with maps), made
// once at start-up. A backend holds the rendered desired state and the kernel's applied state.
import type { LinkState, NetworkState, PortBinding, ServiceState } from './build.js';
import type { Changed } from './desired.js';
import type { NetnsTools } from './exec.js';
import type { ApplyStats } from './iptables.js';
import type { Family } from './rules.js';

export type { Changed } from './desired.js';
export type { ApplyStats } from './iptables.js';

/** The backends a daemon can be started with (`firewallBackend`). */
export const BACKEND_KINDS = ['iptables', 'nft'] as const;
export type BackendKind = (typeof BACKEND_KINDS)[number];

/**
 * Desired-state mutators render first and change nothing when rendering throws; each returns
 * the opaque keys it changed, which `sync` applies in one kernel transaction (per family for
 * iptables, one for both families with nft). The facade unions keys across a bulk() and
 * re-syncs the union after an undo, so keys must stay meaningful until synced.
 */
export interface FirewallBackend {
  readonly kind: BackendKind;
  setNetworks(networks: readonly NetworkState[]): Changed;
  setBindings(endpointId: string, before: readonly PortBinding[], after: readonly PortBinding[]): Changed;
  setLink(id: string, state: LinkState | undefined): Changed;
  setService(name: string, state: ServiceState | undefined): Changed;
  /** Make the kernel hold the desired content of the changed keys (only theirs). */
  sync(changed: Changed): Promise<void>;
  /** Re-read the kernel and make it hold exactly the desired state (stale removed, missing restored). */
  reconcile(): Promise<Record<Family, ApplyStats>>;
  /** Stop helper processes (nft's session); the rules stay. Later calls start them again. */
  close(): void;
}

/** The desired-state model a backend renders into (DesiredState for iptables, NftDesired for nft). */
export type DesiredModel = Pick<FirewallBackend, 'setNetworks' | 'setBindings' | 'setLink' | 'setService'>;

/** What both backends share: the four mutators go to their desired-state model unchanged. */
export abstract class DesiredBackend<D extends DesiredModel> {
  constructor(readonly desired: D) {}

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
}

/** Validate a configured backend name. */
export function backendKind(value: unknown): BackendKind {
  if (typeof value === 'string' && (BACKEND_KINDS as readonly string[]).includes(value)) return value as BackendKind;
  throw new TypeError(`firewall backend ${JSON.stringify(value)} is not one of ${BACKEND_KINDS.join(', ')}`);
}

/** Sum of per-family stats (what a caller that does not care about families wants). */
export function totalStats(s: Record<Family, ApplyStats>): ApplyStats {
  const out: ApplyStats = { lines: 0, rewritten: 0, patched: 0, created: 0, deleted: 0 };
  for (const f of [4, 6] as const) for (const k of Object.keys(out) as (keyof ApplyStats)[]) out[k] += s[f][k];
  return out;
}

export type BackendFactory = (tools: NetnsTools) => FirewallBackend;
