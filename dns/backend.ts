// The record backend contract and the one place where A/AAAA/PTR/SRV/CNAME/TXT answers are
// synthesized from what a backend knows about a name (CONVENTIONS 11).
import type { Addr } from './address.js';
import { T } from './constants.js';
import type { RR } from './encode.js';

/** Which names a client sees and whether its other queries may go upstream. */
export interface Scope {
  /** Identifies this view for answer caches (equal keys ⇒ equal answers). */
  key: string;
  /** Network ids whose names are visible; undefined = every network (standalone). */
  networks?: ReadonlySet<string>;
  /** Names outside our records may be forwarded for this client. */
  forward: boolean;
}

/** One SRV answer with the addresses of its target (sent as additional records). */
export interface SrvTarget {
  priority: number;
  weight: number;
  port: number;
  target: string;
  addrs: Addr[];
}

/**
 * Everything a backend knows about one name. A returned set means the name exists: a type
 * with no data gives NOERROR/NODATA, never NXDOMAIN.
 */
export interface RecordSet {
  ttl: number;
  addrs: Addr[];
  ptr: string[];
  srv: SrvTarget[];
  /** Alias target, used when the set has no address (SkyDNS hosts given as names). */
  cname?: string;
  txt: string[];
}

/** A source of records (endpoints, services, SkyDNS), looked up by (scope, name). */
export interface RecordBackend {
  readonly name: string;
  /** What the client with this scope sees at name (a key), or undefined when nothing. */
  lookup(scope: Scope, name: string): RecordSet | undefined;
}

/** An empty record set (the name exists). */
export function emptySet(ttl: number): RecordSet {
  return { ttl, addrs: [], ptr: [], srv: [], txt: [] };
}

/** Answer records for (name, qtype) from a set, plus additional records and the rotation period. */
export interface Synthesized {
  answers: RR[];
  additional: RR[];
  /** How many distinct round-robin orders the answer has (1 = none). */
  period: number;
}

/** Rotate a list by r (round-robin order of several addresses). */
function rotate<X>(xs: X[], r: number): X[] {
  if (xs.length < 2) return xs;
  const k = r % xs.length;
  return k === 0 ? xs : [...xs.slice(k), ...xs.slice(0, k)];
}

function addrRRs(name: string, addrs: Addr[], family: 4 | 6, ttl: number, rotation: number): { rrs: RR[]; n: number } {
  const list = addrs.filter((a) => a.family === family);
  const rrs = rotate(list, rotation).map((a): RR => ({ name, type: family === 4 ? T.A : T.AAAA, ttl, addr: a.bytes }));
  return { rrs, n: list.length };
}

/** Build the answer for qtype at name (ANY returns every kind the set has). */
export function synthesize(name: string, qtype: number, set: RecordSet, rotation: number): Synthesized {
  const out: Synthesized = { answers: [], additional: [], period: 1 };
  const { ttl } = set;
  const want = (t: number) => qtype === t || qtype === T.ANY;
  for (const [t, fam] of [
    [T.A, 4],
    [T.AAAA, 6],
  ] as const) {
    if (!want(t)) continue;
    const { rrs, n } = addrRRs(name, set.addrs, fam, ttl, rotation);
    out.answers.push(...rrs);
    out.period = Math.max(out.period, n);
  }
  if (want(T.PTR)) for (const target of set.ptr) out.answers.push({ name, type: T.PTR, ttl, target });
  if (want(T.SRV)) {
    const srv = rotate(set.srv, rotation);
    out.period = Math.max(out.period, set.srv.length);
    for (const s of srv) {
      out.answers.push({ name, type: T.SRV, ttl, priority: s.priority, weight: s.weight, port: s.port, target: s.target });
      for (const a of s.addrs) out.additional.push({ name: s.target, type: a.family === 4 ? T.A : T.AAAA, ttl, addr: a.bytes });
    }
  }
  if (want(T.TXT) && set.txt.length) out.answers.push({ name, type: T.TXT, ttl, txt: set.txt });
  if (set.cname && set.addrs.length === 0 && (qtype === T.A || qtype === T.AAAA || qtype === T.CNAME || qtype === T.ANY)) {
    out.answers.push({ name, type: T.CNAME, ttl, target: set.cname });
  }
  return out;
}
