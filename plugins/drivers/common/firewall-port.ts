// What a driver needs from the firewall (proxy/Firewall): per-network rules (masquerade, FORWARD
// accepts, ICC, internal, isolation between networks), published ports, and the sysctls those
// rules rely on. Drivers never build a rule themselves; this is a type-only view of the facade.
import type { Firewall } from '../../../proxy/firewall.js';

/** The facade operations a driver calls (proxy/firewall.ts `Firewall` satisfies it). */
export type FirewallPort = Pick<Firewall, 'setNetwork' | 'removeNetwork' | 'publish' | 'unpublish' | 'requiredSysctls'>;

/** A network as the firewall takes it. */
export type FirewallNetwork = Parameters<Firewall['setNetwork']>[0];
/** A port to publish, before a host port is chosen ('' hostIp = every address; 0 hostPort = any). */
export type PortMappingRequest = Parameters<Firewall['publish']>[1]['mappings'][number];
/** A published port after allocation. */
export type PortBinding = Awaited<ReturnType<Firewall['publish']>>[number];
