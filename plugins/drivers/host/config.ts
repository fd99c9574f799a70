// Validation of the host driver's inputs: a network (an id and a name, no subnets: the host's own
// stack) and an endpoint (container, names, host addresses, exposed ports). Bad values are
// refused naming key and value; unknown option keys are logged and ignored.
import * as cidr from '../../../ipam/cidr.js';
import { invalidConfig } from '../common/errors.js';
import { silentLogger, type DriverLogger } from '../common/log.js';
import type { ExposedPortRecord } from '../common/records.js';
import { checkId, checkName, exposedPorts, knownOptions, nameList, parseBool } from '../common/validate.js';

/** Driver options of a host network. */
export const HOST_OPTION_KEYS = ['reservePorts'] as const;

export interface HostNetworkInput {
  id: string;
  name?: string;
  /** `reservePorts` (default true): reserve endpoints' exposed ports as host ports. */
  options?: Readonly<Record<string, unknown>>;
}

export interface HostNetworkConfig {
  id: string;
  name?: string;
  reservePorts: boolean;
  options: Record<string, string | number | boolean>;
}

export interface HostEndpointInput {
  id: string;
  containerId?: string;
  names?: string[];
  aliases?: string[];
  /** The host addresses DNS should answer for this endpoint (bare or with prefix); default: the host's global addresses. */
  addresses?: string[];
  /** Ports the container listens on (directly on the host's stack). */
  exposed?: ExposedPortRecord[];
}

export interface HostEndpointConfig {
  id: string;
  containerId?: string;
  names: string[];
  aliases: string[];
  /** Canonical bare addresses, or undefined to read them from the host. */
  addresses?: string[];
  exposed: ExposedPortRecord[];
}

/** Validate a host network's input. */
export function parseHostNetwork(input: HostNetworkInput, log: DriverLogger = silentLogger): HostNetworkConfig {
  if (typeof input !== 'object' || input === null) throw invalidConfig('network', input, 'expected an object');
  const id = checkId('id', input.id);
  const name = checkName('name', input.name);
  const options = knownOptions(input.options, HOST_OPTION_KEYS, (option, value) =>
    log.warn({ network: id, option, value }, 'ignoring unknown host driver option'),
  );
  return {
    id,
    ...(name !== undefined ? { name } : {}),
    reservePorts: options.reservePorts === undefined ? true : parseBool('reservePorts', options.reservePorts),
    options,
  };
}

/** Validate a host endpoint's input. */
export function parseHostEndpoint(input: HostEndpointInput): HostEndpointConfig {
  if (typeof input !== 'object' || input === null) throw invalidConfig('endpoint', input, 'expected an object');
  const out: HostEndpointConfig = {
    id: checkId('endpoint id', input.id),
    names: nameList('names', input.names),
    aliases: nameList('aliases', input.aliases),
    exposed: exposedPorts('exposed', input.exposed),
  };
  if (input.containerId !== undefined) out.containerId = checkId('containerId', input.containerId);
  if (input.addresses !== undefined) {
    if (!Array.isArray(input.addresses)) throw invalidConfig('addresses', input.addresses, 'expected a list of IP addresses');
    out.addresses = input.addresses.map((a, i) => {
      const bare = typeof a === 'string' && a.includes('/') ? a.slice(0, a.indexOf('/')) : a;
      try {
        return cidr.formatAddr(cidr.parseAddress(bare));
      } catch {
        throw invalidConfig(`addresses[${i}]`, a, 'not an IP address');
      }
    });
  }
  const seen = new Set<string>();
  for (const [i, p] of out.exposed.entries()) {
    const k = `${p.proto}/${p.port}`;
    if (seen.has(k)) throw invalidConfig(`exposed[${i}]`, p, 'listed twice');
    seen.add(k);
  }
  return out;
}
