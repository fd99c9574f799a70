// Renders validated link specs/changes into iproute2 `ip link …` argument lists (pure, no I/O).
// Every value is validated here, so nothing unchecked reaches a command line or a batch line.
import { invalid } from './errors.js';
import type { BridgePortChange, LinkChange, LinkCommon, LinkSpec, VethPeer, VxlanSpec } from './types.js';
import {
  validateGroup,
  validateIfName,
  validateInt,
  validateIp,
  validateMac,
  validateNetnsPath,
} from './validate.js';

const MACVLAN_MODES = new Set(['bridge', 'private', 'vepa', 'passthru']);

/** Attributes shared by a new link and a veth peer: address, mtu, group, netns. */
function commonAttrs(s: { mtu?: number; mac?: string; group?: number; netns?: string }, what: string): string[] {
  const a: string[] = [];
  if (s.mac !== undefined) a.push('address', validateMac(s.mac, `${what} mac`));
  if (s.mtu !== undefined) a.push('mtu', String(validateInt(s.mtu, 68, 65535, `${what} mtu`)));
  if (s.group !== undefined) a.push('group', String(validateGroup(s.group, `${what} group`)));
  if (s.netns !== undefined) a.push('netns', validateNetnsPath(s.netns, `${what} netns`));
  return a;
}

function onOff(v: boolean): string {
  return v ? 'on' : 'off';
}

function vethPeerArgs(p: VethPeer): string[] {
  if (!p || typeof p !== 'object') throw invalid('veth peer', p, 'required');
  return ['peer', 'name', validateIfName(p.name, 'veth peer name'), ...commonAttrs(p, 'veth peer')];
}

function vxlanArgs(s: VxlanSpec): string[] {
  const a = ['id', String(validateInt(s.vni, 0, 0xffffff, 'vxlan vni'))];
  if (s.local !== undefined) {
    validateIp(s.local, 'vxlan local');
    a.push('local', s.local);
  }
  a.push('dstport', String(validateInt(s.port ?? 4789, 1, 65535, 'vxlan port')));
  a.push(s.learning ? 'learning' : 'nolearning');
  if (s.dev !== undefined) a.push('dev', validateIfName(s.dev, 'vxlan underlay dev'));
  if (s.ttl !== undefined) a.push('ttl', String(validateInt(s.ttl, 1, 255, 'vxlan ttl')));
  if (s.proxy) a.push('proxy');
  return a;
}

/** The part after `type`: kind plus kind-specific arguments. */
function typeArgs(spec: LinkSpec): string[] {
  switch (spec.kind) {
    case 'bridge': {
      const a = ['bridge'];
      if (spec.stp !== undefined) a.push('stp_state', spec.stp ? '1' : '0');
      if (spec.vlanFiltering !== undefined) a.push('vlan_filtering', spec.vlanFiltering ? '1' : '0');
      // iproute2 takes the ageing time in centiseconds.
      if (spec.ageingTime !== undefined) a.push('ageing_time', String(validateInt(spec.ageingTime, 0, 1e6, 'bridge ageing time') * 100));
      return a;
    }
    case 'veth':
      return ['veth', ...vethPeerArgs(spec.peer)];
    case 'vxlan':
      return ['vxlan', ...vxlanArgs(spec)];
    case 'macvlan': {
      const mode = spec.mode ?? 'bridge';
      if (!MACVLAN_MODES.has(mode)) throw invalid('macvlan mode', mode, 'expected bridge|private|vepa|passthru');
      return ['macvlan', 'mode', mode];
    }
    default:
      throw invalid('link kind', (spec as { kind?: unknown }).kind, 'expected bridge|veth|vxlan|macvlan');
  }
}

/** `link add …` arguments for a new link (without the leading `ip`). */
export function linkAddArgs(spec: LinkSpec): string[] {
  if (!spec || typeof spec !== 'object') throw invalid('link spec', spec, 'required');
  const common: LinkCommon = spec;
  const a = ['link', 'add'];
  if (spec.kind === 'macvlan') a.push('link', validateIfName(spec.parent, 'macvlan parent'));
  a.push('name', validateIfName(common.name, `${spec.kind} name`), ...commonAttrs(common, spec.kind));
  if (common.master !== undefined) {
    // The master is looked up in the handle's namespace; in another one it would name a different link.
    if (common.netns !== undefined) throw invalid('master', common.master, 'cannot be combined with netns at creation');
    a.push('master', validateIfName(common.master, 'master'));
  }
  if (common.masterIndex !== undefined) {
    if (common.master !== undefined) throw invalid('masterIndex', common.masterIndex, 'give master or masterIndex, not both');
    // iproute2 reads "if<N>" as ifindex N when no link has that name; no link name can contain
    // '/', so "if<N>/" always means the index, whatever links the namespace running ip holds.
    a.push('master', `if${validateInt(common.masterIndex, 1, 0x7fffffff, 'masterIndex')}/`);
  }
  if (common.up) a.push('up');
  a.push('type', ...typeArgs(spec));
  return a;
}

/**
 * `link set` argument lists for a change, in the order the kernel needs: down first, then
 * attributes (rename, mtu, mac, master, group) with up, then the move to another namespace.
 */
export function linkSetArgs(name: string, ch: LinkChange): string[][] {
  validateIfName(name);
  if (!ch || typeof ch !== 'object') throw invalid('link change', ch, 'required');
  const cur = ch.name !== undefined ? validateIfName(ch.name, 'new name') : name;
  const attrs: string[] = [];
  if (ch.name !== undefined) attrs.push('name', cur);
  if (ch.mac !== undefined) attrs.push('address', validateMac(ch.mac));
  if (ch.mtu !== undefined) attrs.push('mtu', String(validateInt(ch.mtu, 68, 65535, 'mtu')));
  if (ch.group !== undefined) attrs.push('group', String(validateInt(ch.group, 0, 0xffffffff, 'link group')));
  if (ch.master === null) attrs.push('nomaster');
  else if (ch.master !== undefined) attrs.push('master', validateIfName(ch.master, 'master'));
  if (ch.netns !== undefined && (ch.up === true || ch.master)) {
    throw invalid('link change', ch, 'up/master cannot be combined with a move to another namespace');
  }
  const lines: string[][] = [];
  if (ch.up === false) lines.push(['link', 'set', 'dev', name, 'down']);
  if (attrs.length > 0 || ch.up === true) {
    lines.push(['link', 'set', 'dev', name, ...attrs, ...(ch.up === true ? ['up'] : [])]);
  }
  if (ch.netns !== undefined) lines.push(['link', 'set', 'dev', cur, 'netns', validateNetnsPath(ch.netns)]);
  if (lines.length === 0) throw invalid('link change', ch, 'nothing to change');
  return lines;
}

/** `link set dev X type bridge_slave …` for bridge-port flags. */
export function bridgePortArgs(name: string, ch: BridgePortChange): string[] {
  validateIfName(name);
  const a: string[] = [];
  if (ch.hairpin !== undefined) a.push('hairpin', onOff(ch.hairpin));
  if (ch.learning !== undefined) a.push('learning', onOff(ch.learning));
  if (ch.flood !== undefined) a.push('flood', onOff(ch.flood));
  if (ch.neighSuppress !== undefined) a.push('neigh_suppress', onOff(ch.neighSuppress));
  if (ch.isolated !== undefined) a.push('isolated', onOff(ch.isolated));
  if (a.length === 0) throw invalid('bridge port change', ch, 'nothing to change');
  return ['link', 'set', 'dev', name, 'type', 'bridge_slave', ...a];
}
