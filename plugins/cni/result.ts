// Helpers for building canonical results in a chain: a plugin passes `prevResult`
// through and extends it (SPEC §5 "ADD Success"), never drops it.
import type { Dns, Interface, IpConfig, Result } from './types.js';

function union(a: string[] | undefined, b: string[] | undefined): string[] | undefined {
  const out = [...new Set([...(a ?? []), ...(b ?? [])])];
  return out.length ? out : undefined;
}

function mergeDns(a: Dns | undefined, b: Dns | undefined): Dns | undefined {
  if (!a) return b && { ...b };
  if (!b) return { ...a };
  const out: Dns = {};
  const nameservers = union(a.nameservers, b.nameservers);
  const search = union(a.search, b.search);
  const options = union(a.options, b.options);
  const domain = a.domain || b.domain;
  if (nameservers) out.nameservers = nameservers;
  if (domain) out.domain = domain;
  if (search) out.search = search;
  if (options) out.options = options;
  return out;
}

/**
 * `prev` extended by `add`: interfaces appended; ips and routes appended unless an
 * identical entry exists; DNS lists merged (prev first). When `add` has interfaces, its
 * `ips[].interface` indices count within `add.interfaces` and are shifted; when it has
 * none, they point into `prev.interfaces` and are kept. Neither input is modified.
 */
export function extendResult(prev: Result | undefined, add: Result): Result {
  const base = prev ?? {};
  const offset = base.interfaces?.length ?? 0;
  const interfaces: Interface[] = [...(base.interfaces ?? []), ...(add.interfaces ?? [])].map((i) => ({ ...i }));
  const shifted = (add.ips ?? []).map((ip) => (ip.interface === undefined || !add.interfaces?.length ? { ...ip } : { ...ip, interface: ip.interface + offset }));
  const ips = dedupe([...(base.ips ?? []).map((ip) => ({ ...ip })), ...shifted]);
  const routes = dedupe([...(base.routes ?? []), ...(add.routes ?? [])].map((r) => ({ ...r })));
  const out: Result = {};
  if (interfaces.length) out.interfaces = interfaces;
  if (ips.length) out.ips = ips;
  if (routes.length) out.routes = routes;
  const dns = mergeDns(base.dns, add.dns);
  if (dns) out.dns = dns;
  return out;
}

function dedupe<T extends object>(items: T[]): T[] {
  const seen = new Set<string>();
  return items.filter((i) => {
    const k = JSON.stringify(i, Object.keys(i).sort());
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/**
 * An IPAM result (no interfaces, no `interface` index) attached to interface `index`
 * of the caller's result: the usual step of an interface plugin after delegating.
 */
export function assignInterface(ipam: Result, index: number): IpConfig[] {
  return (ipam.ips ?? []).map((ip) => ({ ...ip, interface: index }));
}
