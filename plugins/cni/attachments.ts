// The CNI attachment record (keys.cniAttachment(network, containerId, ifname)): what the
// tsportmap and tshost plugins made for one attachment, so DEL, CHECK, GC and a firewall
// rebuilt from the store (standalone plugins, the daemon's reconcile) find it again.
// Each plugin owns one section; updates are compare-and-swap on the key.
import { keys } from '../../store/keys.js';
import type { Store } from '../../store/types.js';
import type { PortBinding } from '../../proxy/firewall.js';
import type { PortRequest } from '../../proxy/ports.js';

/** A network as the firewall sees it, for ports published on a bridge tsbridge did not make. */
export interface ForeignNetwork {
  id: string;
  bridge: string;
  subnets: string[];
}

/** tsportmap's section: the firewall endpoint, its network and the bindings it holds. */
export interface PortmapSection {
  /** The firewall's network id (a tsbridge network's, or a ForeignNetwork's). */
  networkId: string;
  /** Set when the bridge is not one of tsbridge's (the reference `bridge`, …). */
  foreign?: ForeignNetwork;
  /** The firewall endpoint id holding the ports. */
  endpointId: string;
  containerIp: string;
  containerIpv6?: string;
  /** The mappings asked for, canonical: written before publishing, so a crash mid-way can be undone. */
  requested: PortRequest[];
  /** What the firewall holds (empty until published). */
  bindings: PortBinding[];
}

/** tshost's section: the host addresses the attachment is known by. */
export interface HostSection {
  addresses: string[];
  aliases: string[];
  names: string[];
}

/** One CNI attachment (network + container + ifname) on one host. */
export interface CniAttachmentRecord {
  network: string;
  containerId: string;
  ifname: string;
  hostId: string;
  netns?: string;
  portmap?: PortmapSection;
  host?: HostSection;
  createdAt: string;
}

type Section = 'portmap' | 'host';

function decode(value: string): CniAttachmentRecord | undefined {
  try {
    const r = JSON.parse(value) as CniAttachmentRecord;
    return typeof r === 'object' && r !== null && typeof r.network === 'string' && typeof r.hostId === 'string' ? r : undefined;
  } catch {
    return undefined;
  }
}

/** The attachment record, or undefined. An unreadable value counts as absent. */
export async function getAttachment(store: Store, network: string, containerId: string, ifname: string): Promise<CniAttachmentRecord | undefined> {
  const kv = await store.get(keys.cniAttachment(network, containerId, ifname));
  return kv ? decode(kv.value) : undefined;
}

/** Every attachment record (optionally of one network), unreadable ones skipped. */
export async function listAttachments(store: Store, network?: string): Promise<CniAttachmentRecord[]> {
  const r = await store.range(network === undefined ? keys.cniAttachments() : keys.cniNetworkAttachments(network));
  return r.kvs.map((kv) => decode(kv.value)).filter((a): a is CniAttachmentRecord => a !== undefined);
}

/**
 * Set (or with `undefined`, remove) one plugin's section of an attachment, by compare-and-swap.
 * The record goes away with its last section. Returns the record as written (undefined = gone).
 */
export async function setSection<S extends Section>(
  store: Store,
  base: Pick<CniAttachmentRecord, 'network' | 'containerId' | 'ifname' | 'hostId' | 'netns'>,
  section: S,
  value: CniAttachmentRecord[S] | undefined,
): Promise<CniAttachmentRecord | undefined> {
  const key = keys.cniAttachment(base.network, base.containerId, base.ifname);
  for (let i = 0; i < 16; i++) {
    const kv = await store.get(key);
    const cur = kv ? decode(kv.value) : undefined;
    const next: CniAttachmentRecord = { ...(cur ?? { ...base, createdAt: new Date().toISOString() }) };
    if (base.netns) next.netns = base.netns;
    if (value === undefined) delete next[section];
    else next[section] = value;
    const empty = next.portmap === undefined && next.host === undefined;
    const cmp = { key, target: 'modRevision' as const, op: '==' as const, value: kv?.modRevision ?? 0 };
    if (empty && !kv) return undefined;
    const op = empty ? { type: 'delete' as const, key } : { type: 'put' as const, key, value: JSON.stringify(next) };
    if ((await store.txn([cmp], [op])).succeeded) return empty ? undefined : next;
  }
  throw Object.assign(new Error(`attachment ${key} keeps changing; retry`), { code: 'store-busy', kind: 'unavailable', retryable: true });
}

/** The foreign networks of these attachments, one per id, subnets merged. */
export function foreignNetworks(atts: readonly CniAttachmentRecord[]): ForeignNetwork[] {
  const byId = new Map<string, ForeignNetwork>();
  for (const a of atts) {
    const f = a.portmap?.foreign;
    if (!f) continue;
    const cur = byId.get(f.id);
    byId.set(f.id, cur ? { ...cur, subnets: [...new Set([...cur.subnets, ...f.subnets])] } : { ...f, subnets: [...f.subnets] });
  }
  return [...byId.values()];
}
