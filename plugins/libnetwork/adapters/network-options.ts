// Docker's network and endpoint options (already parsed by options.ts) → the bridge driver's
// typed inputs. A `-o` key neither Docker's bridge spelling nor one of the driver's own keys is
// refused with a message naming it, so a typo never silently falls back to a default.
import { BRIDGE_OPTION_KEYS, type BridgeNetworkInput } from '../../drivers/bridge/config.js';
import type { PortMappingRequest } from '../../drivers/common/firewall-port.js';
import type { CreateNetworkInput, IpamData, PortMapping } from '../backend.js';
import { badOption } from '../errors.js';

/** The driver's own option keys, accepted as `-o KEY=VALUE` next to Docker's spellings. */
const DRIVER_KEYS: ReadonlySet<string> = new Set(BRIDGE_OPTION_KEYS);

function subnetsOf(data: readonly IpamData[]): BridgeNetworkInput['subnets'] {
  return data.map((d) => ({ subnet: d.pool, ...(d.gateway ? { gateway: d.gateway } : {}) }));
}

/** CreateNetwork → the bridge driver's network input. */
export function bridgeNetworkInput(input: CreateNetworkInput, driver: string): BridgeNetworkInput {
  const o = input.options;
  if (o.containerIfacePrefix !== undefined) {
    throw badOption('com.docker.network.container_iface_prefix', o.containerIfacePrefix, `not supported by ${driver} (containers get eth0, eth1, …)`);
  }
  const options: Record<string, string | number | boolean> = {};
  for (const [key, value] of Object.entries(o.driverOpts)) {
    if (!DRIVER_KEYS.has(key)) {
      throw badOption(key, value, `not an option of the ${driver} driver (known: com.docker.network.bridge.name, .enable_icc, .enable_ip_masquerade, .host_binding_ipv4, com.docker.network.driver.mtu, ${[...DRIVER_KEYS].join(', ')})`);
    }
    options[key] = value;
  }
  if (o.mtu !== undefined) options.mtu = o.mtu;
  if (o.bridge.name !== undefined) options.bridge = o.bridge.name;
  if (o.bridge.enableIcc !== undefined) options.icc = o.bridge.enableIcc;
  if (o.bridge.enableIpMasquerade !== undefined) options.masquerade = o.bridge.enableIpMasquerade;
  if (o.bridge.hostBindingIp !== undefined) options.hostBindingIpv4 = o.bridge.hostBindingIp;
  return {
    id: input.networkId,
    subnets: [...subnetsOf(input.ipv4), ...subnetsOf(input.ipv6)],
    internal: o.internal,
    ipv6: o.enableIPv6 || input.ipv6.length > 0,
    options,
  };
}

/** `-p` mappings as the firewall takes them (the engine's container IP is ours anyway). */
export function portRequests(mappings: readonly PortMapping[]): PortMappingRequest[] {
  return mappings.map((m) => ({
    proto: m.proto,
    containerPort: m.containerPort,
    hostIp: m.hostIp ?? '',
    hostPort: m.hostPort,
    hostPortEnd: m.hostPortEnd,
  }));
}
