// Host records as the overlay reads them (keys.host(id), written by each daemon under a liveness
// lease), and a registration that keeps one alive and writes it again after losing its lease.
// Decoding is tolerant: a record without VXLAN fields (an older daemon) means the default port.
import { keys } from '../../../store/keys.js';
import type { Lease, Store } from '../../../store/types.js';
import { silentLogger, type DriverLogger } from '../common/log.js';
import { OVERLAY_DEFAULTS, vtepMac, type OverlayHostConfig } from './config.js';

/** The overlay's fields of a host record (the daemon may add more: version, pid, startedAt). */
export interface OverlayHostFields {
  id: string;
  /** Underlay (VTEP) address; null = the host works alone. */
  advertise: string | null;
  /** UDP port of its VXLAN devices. */
  vxlanPort: number;
  /** MAC of its VXLAN devices. */
  vtepMac?: string;
}

/** A peer as the programmer uses it. */
export interface PeerHost {
  id: string;
  advertise: string | null;
  port: number;
}

/** The overlay fields a daemon puts in its host record. */
export function overlayHostFields(cfg: OverlayHostConfig): OverlayHostFields {
  return {
    id: cfg.hostId,
    advertise: cfg.advertise,
    vxlanPort: cfg.vxlanPort,
    ...(cfg.advertise ? { vtepMac: vtepMac(cfg.advertise) } : {}),
  };
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

/** A host record's peer view, or undefined when it is unusable (then the host has no peers' entries). */
export function decodeHost(id: string, value: string): PeerHost | undefined {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(value) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (typeof o !== 'object' || o === null) return undefined;
  const advertise = typeof o.advertise === 'string' && IPV4.test(o.advertise) ? o.advertise : null;
  const p = o.vxlanPort;
  const port = typeof p === 'number' && Number.isInteger(p) && p >= 1 && p <= 65535 ? p : OVERLAY_DEFAULTS.port;
  return { id, advertise, port };
}

export interface HostRegistrationOptions {
  store: Store;
  /** The whole record to write (overlayHostFields plus whatever else the caller wants). */
  record: OverlayHostFields & Record<string, unknown>;
  ttlSeconds: number;
  log?: DriverLogger;
  /** Delay before writing again after a failed attempt (default 500 ms, doubling to 5 s). */
  retryMs?: number;
}

/**
 * Keeps `hosts/<id>` alive under a lease. When the lease is lost (the store was unreachable for
 * longer than the TTL, the host's underlay was cut), it registers again with a new lease, retrying
 * until the store answers: a host that comes back needs no manual step.
 */
export class HostRegistration {
  private lease?: Lease;
  private stopped = false;
  private timer?: NodeJS.Timeout;
  private readonly log: DriverLogger;

  constructor(private readonly opts: HostRegistrationOptions) {
    this.log = opts.log ?? silentLogger;
  }

  /** Register now (throws if the store does not answer); later losses are repaired in the background. */
  async start(): Promise<void> {
    await this.register();
  }

  /** Stop renewing. `revoke` deletes the record at once; otherwise it expires with the lease. */
  async stop(opts: { revoke?: boolean } = {}): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const lease = this.lease;
    this.lease = undefined;
    if (!lease) return;
    if (opts.revoke) await lease.revoke().catch(() => lease.release());
    else lease.release();
  }

  private async register(): Promise<void> {
    const { store, record, ttlSeconds } = this.opts;
    const lease = await store.lease(ttlSeconds);
    try {
      await store.put(keys.host(record.id), JSON.stringify(record), { lease: lease.id });
    } catch (err) {
      lease.release();
      throw err;
    }
    if (this.stopped) {
      await lease.revoke().catch(() => lease.release());
      return;
    }
    lease.keepAlive();
    lease.onLost((err) => {
      if (this.stopped || this.lease !== lease) return;
      this.log.warn({ host: record.id, err: err.message }, 'host lease lost; registering again');
      this.again(this.opts.retryMs ?? 500);
    });
    this.lease = lease;
  }

  private again(delayMs: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (this.stopped) return;
      this.register().catch((err: Error) => {
        this.log.warn({ host: this.opts.record.id, err: err.message, retryInMs: delayMs }, 'host registration failed');
        this.again(Math.min(5000, delayMs * 2));
      });
    }, delayMs);
    this.timer.unref();
  }
}
