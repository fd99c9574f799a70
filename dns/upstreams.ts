// Upstream resolvers: parsing "IP[:PORT]" lists and resolv.conf, and following a resolv.conf
// that changes (stat polling, so a file replaced by rename is seen too). At most 3 are used,
// like glibc's MAXNS.
import { readFileSync, unwatchFile, watchFile, type Stats } from 'node:fs';
import { isIP } from 'node:net';
import { parseAddress } from './address.js';
import { DnsError } from './errors.js';

/** An upstream resolver (host: canonical address text, see address.ts). */
export interface Upstream {
  host: string;
  port: number;
}

export const MAX_UPSTREAMS = 3;

/** Parse "10.0.0.1", "10.0.0.1:5353", "fd00::1", "[fd00::1]:5353"; throws DnsError invalid-upstream. */
export function parseUpstream(text: string): Upstream {
  const s = text.trim();
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(s) ?? /^([^:]+)(?::(\d+))?$/.exec(s);
  const host = m ? m[1]! : s;
  const port = m && m[2] !== undefined ? Number(m[2]) : 53;
  if (isIP(host) === 0 || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new DnsError('invalid-upstream', `upstream "${text}" is not IP[:PORT] (e.g. 10.0.0.1, 10.0.0.1:5353, [fd00::1]:53)`);
  }
  return { host: parseAddress(host)!.ip, port };
}

/** The nameservers of a resolv.conf text (port 53, canonical addresses), at most 3, zones dropped. */
export function parseResolvConf(text: string): Upstream[] {
  const out: Upstream[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (!m) continue;
    const a = parseAddress(m[1]!);
    if (a && out.length < MAX_UPSTREAMS) out.push({ host: a.ip, port: 53 });
  }
  return out;
}

/** Follows a resolv.conf file; `current()` is the latest good list (empty when unreadable). */
export class ResolvConfWatcher {
  private list: Upstream[] = [];
  private readonly listener = (cur: Stats, prev: Stats) => {
    if (cur.mtimeMs !== prev.mtimeMs || cur.ino !== prev.ino || cur.size !== prev.size) this.reload();
  };

  constructor(
    readonly path: string,
    private readonly opts: { intervalMs?: number; onChange?: (list: Upstream[]) => void } = {},
  ) {
    this.reload();
    watchFile(path, { interval: opts.intervalMs ?? 1000, persistent: false }, this.listener);
  }

  current(): Upstream[] {
    return this.list;
  }

  private reload(): void {
    try {
      this.list = parseResolvConf(readFileSync(this.path, 'utf8'));
    } catch {
      this.list = [];
    }
    this.opts.onChange?.(this.list);
  }

  close(): void {
    unwatchFile(this.path, this.listener);
  }
}
