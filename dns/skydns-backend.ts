// SkyDNS records written by other tools under /skydns/ (the CoreDNS etcd plugin layout): a name
// answers with the records at its key and below it. Address hosts give A/AAAA, name hosts a
// CNAME; SRV targets are the record's own name (address hosts) or the host name. No wildcards.
import type { Addr } from './address.js';
import { emptySet, type RecordBackend, type RecordSet, type Scope, type SrvTarget } from './backend.js';
import type { RecordIndex, SkydnsEntry } from './record-index.js';

export interface SkydnsBackendOptions {
  /** TTL for records without one. */
  ttl: number;
}

/** Looks SkyDNS records up in the index (visible to every client). */
export class SkydnsBackend implements RecordBackend {
  readonly name = 'skydns';

  constructor(
    private readonly index: RecordIndex,
    private readonly opts: SkydnsBackendOptions,
  ) {}

  lookup(_scope: Scope, name: string): RecordSet | undefined {
    const entries = this.index.skydns.get(name);
    if (!entries) return undefined;
    const list = [...entries.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const set = emptySet(Math.min(...list.map((e) => e.rec.ttl ?? this.opts.ttl)));
    for (const e of list) {
      const { host } = e.rec;
      if (typeof host !== 'string') {
        if (!set.addrs.some((a) => a.ip === host.ip)) set.addrs.push(host);
      } else if (host !== '' && set.cname === undefined) set.cname = host;
      if (e.rec.text !== undefined) set.txt.push(e.rec.text);
    }
    set.srv = this.srv(list);
    return set;
  }

  private srv(list: SkydnsEntry[]): SrvTarget[] {
    const withHost = list.filter((e) => e.rec.host !== '');
    // SkyDNS spreads weight 100 over the records of one priority that give none.
    const unweighted = new Map<number, number>();
    for (const e of withHost) if (e.rec.weight === 0) unweighted.set(e.rec.priority, (unweighted.get(e.rec.priority) ?? 0) + 1);
    return withHost.map((e) => {
      const host = e.rec.host;
      const isAddr = typeof host !== 'string';
      const addrs: Addr[] = isAddr ? [host] : [];
      const weight = e.rec.weight || Math.floor(100 / unweighted.get(e.rec.priority)!);
      return { priority: e.rec.priority, weight, port: e.rec.port, target: isAddr ? e.name : (host as string), addrs };
    });
  }
}
