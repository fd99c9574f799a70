// Loads the batched UDP addon (dns/native/udp-batch.c, built by dns/native/build.mjs into
// dist/dns/native/); undefined when it is not built or cannot load (the server then uses dgram).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** Environment variable naming the addon file (else the built one under dist/). */
export const ADDON_ENV = 'TSOVERLAY_DNS_UDP_ADDON';

/** What open() returns: the handle and the memory shared with the addon. */
export interface UdpBatchOpened {
  handle: object;
  /** batch × slot bytes: received datagram i at i × slot. */
  in: ArrayBuffer;
  /** batch × slot bytes: the reply to datagram i at i × slot. */
  out: ArrayBuffer;
  /** Per slot `peer` bytes (sockaddr, its length as u32 at 28, text address at 32), then u32 × batch each: in-length, flags (1 = truncated), out-length. */
  ctrl: ArrayBuffer;
  batch: number;
}

/** The addon's functions (see dns/native/README.md). */
export interface UdpBatchAddon {
  /** Watch a dup of this bound UDP socket; `onBatch(n)` runs once per received batch of n. */
  open(fd: number, onBatch: (this: UdpBatchOpened, n: number) => void): UdpBatchOpened;
  /** One datagram to the peer (a copy of a slot's first 32 ctrl bytes); 0 or an errno. */
  sendTo(handle: object, bytes: Buffer, peer: Buffer): number;
  /** [received, sent, dropped] datagrams. */
  stats(handle: object): [number, number, number];
  /** Stop: no callback after this; the dup'd descriptor is closed soon after. */
  close(handle: object): void;
  slot: number;
  peer: number;
}

/** Where the addon is looked for: $TSOVERLAY_DNS_UDP_ADDON, next to the built JS, or dist/ from the sources. */
export function addonCandidates(env: NodeJS.ProcessEnv = process.env): string[] {
  const list = [fileURLToPath(new URL('./native/udp-batch.node', import.meta.url)), fileURLToPath(new URL('../dist/dns/native/udp-batch.node', import.meta.url))];
  const forced = env[ADDON_ENV];
  return forced ? [forced] : list;
}

/** The addon, or undefined with the reason. */
export function loadUdpBatch(env: NodeJS.ProcessEnv = process.env): { addon?: UdpBatchAddon; why?: string } {
  const path = addonCandidates(env).find((p) => existsSync(p));
  if (!path) return { why: 'not built (npm run build compiles dns/native/udp-batch.c)' };
  try {
    const addon = createRequire(import.meta.url)(path) as UdpBatchAddon;
    if (typeof addon.open !== 'function' || typeof addon.sendTo !== 'function' || !(addon.slot > 0) || !(addon.peer >= 80)) return { why: `${path} is not the expected addon` };
    return { addon };
  } catch (err) {
    return { why: `${path}: ${(err as Error).message}` };
  }
}
