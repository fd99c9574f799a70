// tsbridge's config: the reference `bridge` plugin's keys where they mean the same
// (`bridge`, `isGateway`, `isDefaultGateway`, `ipMasq`, `mtu`, `hairpinMode`,
// `promiscMode`, `ipam`) with its defaults, plus `store` and `daemonSocket`. Pure.
import { validateIfName } from '../../netlink/index.js';
import { confString, DEFAULT_DAEMON_SOCKET, DEFAULT_STORE_URL } from './context.js';
import { invalidConfig, unsupportedField } from './errors.js';
import { ipamType } from './ipam-runner.js';
import type { NetConf } from './types.js';

/** The validated plugin object of a tsbridge config. */
export interface TsbridgeConf {
  /** The CNI network name. */
  network: string;
  /** The bridge's name; undefined = the driver's `tsbr-<hash>` name. */
  bridge?: string;
  /** The gateway address goes on the bridge (implied by isDefaultGateway). */
  isGateway: boolean;
  /** A default route via the gateway in the container. */
  isDefaultGateway: boolean;
  ipMasq: boolean;
  /** Undefined = the driver's default (1500). */
  mtu?: number;
  hairpinMode: boolean;
  store: string;
  daemonSocket: string;
  ipamType: string;
}

type Obj = Record<string, unknown>;

function bool(conf: Obj, key: string, dflt = false): boolean {
  const v = conf[key];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'boolean') throw invalidConfig(key, v, 'not a boolean');
  return v;
}

/** Reference keys we do not implement: refused (code 2) when they ask for something. */
function refuseUnsupported(conf: Obj): void {
  if (conf.promiscMode === true) throw unsupportedField('promiscMode', true, 'tsbridge cannot put the bridge in promiscuous mode');
  if (conf.vlan !== undefined && conf.vlan !== 0) throw unsupportedField('vlan', conf.vlan, 'VLAN filtering is not supported');
  if (Array.isArray(conf.vlanTrunk) && conf.vlanTrunk.length > 0) throw unsupportedField('vlanTrunk', conf.vlanTrunk, 'VLAN filtering is not supported');
  if (conf.macspoofchk === true) throw unsupportedField('macspoofchk', true, 'MAC spoof checking is not supported');
  if (conf.disableContainerInterface === true) throw unsupportedField('disableContainerInterface', true);
}

/** Validate a tsbridge config (CniError 7 naming key and value, 2 for unsupported values). */
export function parseTsbridgeConf(conf: NetConf): TsbridgeConf {
  const o = conf as unknown as Obj;
  refuseUnsupported(o);
  if (o.promiscMode !== undefined && typeof o.promiscMode !== 'boolean') throw invalidConfig('promiscMode', o.promiscMode, 'not a boolean');
  const isDefaultGateway = bool(o, 'isDefaultGateway');
  const out: TsbridgeConf = {
    network: conf.name,
    isGateway: bool(o, 'isGateway') || isDefaultGateway,
    isDefaultGateway,
    ipMasq: bool(o, 'ipMasq'),
    hairpinMode: bool(o, 'hairpinMode'),
    store: confString(o, 'store') ?? DEFAULT_STORE_URL,
    daemonSocket: confString(o, 'daemonSocket') ?? DEFAULT_DAEMON_SOCKET,
    ipamType: ipamType({ conf }),
  };
  if (o.bridge !== undefined && o.bridge !== '') {
    try {
      out.bridge = validateIfName(o.bridge as string, 'bridge');
    } catch {
      throw invalidConfig('bridge', o.bridge, 'not a valid interface name (1-15 letters, digits, "_", "." or "-")');
    }
  }
  if (o.mtu !== undefined && o.mtu !== 0) {
    if (typeof o.mtu !== 'number' || !Number.isInteger(o.mtu) || o.mtu < 68 || o.mtu > 65535) throw invalidConfig('mtu', o.mtu, 'not an MTU between 68 and 65535');
    out.mtu = o.mtu;
  }
  return out;
}

/** The driver's network id for a CNI network on a host (bridge networks are per host). */
export function bridgeNetworkId(network: string, hostId: string): string {
  return `cni:${hostId}:${network}`;
}

/** The driver's endpoint id for an attachment (a container ID has no ':'). */
export function bridgeEndpointId(containerId: string, ifname: string): string {
  return `${containerId}:${ifname}`;
}
