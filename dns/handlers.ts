// The handler chain: each handler answers a request or passes it on (undefined). The server
// runs endpoint names → services → SkyDNS → our zone (NXDOMAIN/NODATA) → the forwarder.
import { synthesize, type RecordBackend, type Scope } from './backend.js';
import { RCODE, T } from './constants.js';
import { codeReply, type Reply, type RR } from './encode.js';
import type { Forwarder } from './forwarder.js';
import type { Query, Question } from './message.js';
import { isSubdomain } from './name.js';
import type { RecordIndex } from './record-index.js';

/** One query on its way through the chain. */
export interface Request {
  /** The client's message as received (forwarded as is, with a new ID). */
  raw: Buffer;
  query: Query;
  question: Question;
  scope: Scope;
  tcp: boolean;
  /** The largest reply this client takes. */
  maxSize: number;
  /** Round-robin position for this answer. */
  rotation: number;
}

/** A reply to encode (and maybe cache), or an upstream's message to relay. */
export type Outcome = { kind: 'reply'; reply: Reply; cacheable: boolean; period: number } | { kind: 'relay'; bytes: Buffer };

export interface Handler {
  readonly name: string;
  handle(req: Request): Outcome | undefined | Promise<Outcome | undefined>;
}

/** Our zone's SOA, used in negative answers (its minimum is the negative TTL). */
export function soaRecord(domain: string, negativeTtl: number): RR {
  return {
    name: domain,
    type: T.SOA,
    ttl: negativeTtl,
    mname: domain ? `ns.${domain}` : 'ns',
    rname: domain ? `hostmaster.${domain}` : 'hostmaster',
    serial: 1,
    refresh: 3600,
    retry: 600,
    expire: 86400,
    minimum: negativeTtl,
  };
}

const reply = (r: Partial<Reply> & { rcode: number }, scope: Scope): Reply => ({
  authoritative: true,
  recursion: scope.forward,
  answers: [],
  authority: [],
  additional: [],
  ...r,
});

/** Answers names a backend knows (NODATA when the name exists without the asked type). */
export class BackendHandler implements Handler {
  readonly name: string;

  constructor(
    private readonly backend: RecordBackend,
    private readonly zone: { domain: string; soa: RR },
  ) {
    this.name = backend.name;
  }

  handle(req: Request): Outcome | undefined {
    const { name, type } = req.question;
    const set = this.backend.lookup(req.scope, name);
    if (!set) return undefined;
    const s = synthesize(name, type, set, req.rotation);
    const inZone = isSubdomain(name, this.zone.domain);
    const authority = s.answers.length === 0 && inZone ? [this.zone.soa] : [];
    return { kind: 'reply', reply: reply({ rcode: RCODE.NOERROR, answers: s.answers, authority, additional: s.additional }, req.scope), cacheable: true, period: s.period };
  }
}

/**
 * Names in our domain that no backend answered: NXDOMAIN with the SOA, except the apex and
 * empty non-terminals (`<network>.<domain>`, `_<proto>.<service>.<domain>`), which exist (NODATA).
 */
export class ZoneHandler implements Handler {
  readonly name = 'zone';

  constructor(
    private readonly index: RecordIndex,
    private readonly zone: { domain: string; soa: RR },
  ) {}

  handle(req: Request): Outcome | undefined {
    const { domain, soa } = this.zone;
    const { name, type } = req.question;
    if (domain === '' || !isSubdomain(name, domain)) return undefined;
    let r: Reply;
    if (name === domain) {
      r = type === T.SOA || type === T.ANY ? reply({ rcode: RCODE.NOERROR, answers: [soa] }, req.scope) : reply({ rcode: RCODE.NOERROR, authority: [soa] }, req.scope);
    } else {
      const exists = this.emptyNonTerminal(name.slice(0, name.length - domain.length - 1));
      r = reply({ rcode: exists ? RCODE.NOERROR : RCODE.NXDOMAIN, authority: [soa] }, req.scope);
    }
    return { kind: 'reply', reply: r, cacheable: true, period: 1 };
  }

  private emptyNonTerminal(rest: string): boolean {
    if (this.index.byLabel.has(rest) || (this.index.names.has(rest) && !this.index.networks.has(rest))) return true;
    const m = /^_[^.]+\.(.+)$/.exec(rest);
    return m !== null && this.index.serviceNames.has(m[1]!);
  }
}

/** Everything else goes upstream, for clients allowed to recurse; REFUSED for the others. */
export class ForwardHandler implements Handler {
  readonly name = 'forward';

  constructor(private readonly forwarder: Forwarder) {}

  handle(req: Request): Outcome | Promise<Outcome> {
    if (!req.scope.forward) return { kind: 'reply', reply: codeReply(RCODE.REFUSED), cacheable: true, period: 1 };
    let msg = req.raw;
    const { optAt, edns } = req.query;
    if (!req.tcp && optAt !== undefined && edns && edns.udpSize > req.maxSize) {
      // Ask upstream for no more than we may pass on, so its answer need not become a TC.
      msg = Buffer.from(req.raw);
      msg.writeUInt16BE(req.maxSize, optAt);
    }
    return this.forwarder.forward(msg, req.question, req.tcp).then(
      (bytes): Outcome => (bytes ? { kind: 'relay', bytes } : { kind: 'reply', reply: codeReply(RCODE.SERVFAIL, true), cacheable: false, period: 1 }),
    );
  }
}
