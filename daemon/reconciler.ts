// Periodic repair: every interval, bring links, addresses, sysctls, peer entries and our
// firewall chains back to what the store says (someone's `ip link del`, a flushed chain, a
// reset ip_forward). Links no record explains are only pruned at start-up, when no verb runs.
import type { BridgeDriver } from '../plugins/drivers/bridge/bridge.js';
import type { OverlayDriver } from '../plugins/drivers/overlay/overlay.js';
import type { Firewall } from '../proxy/firewall.js';
import type { Logger } from './log.js';
import type { ReconcileRecorder } from './observability/metrics.js';

export interface ReconcilerDeps {
  bridge: BridgeDriver;
  overlay: OverlayDriver;
  firewall: Firewall;
  metrics: ReconcileRecorder;
  log: Logger;
  intervalMs: number;
}

/** What one pass repaired, by kind (only non-zero counts). */
export type Repairs = Record<string, number>;

export class Reconciler {
  private timer?: NodeJS.Timeout;
  private running?: Promise<Repairs>;

  constructor(private readonly deps: ReconcilerDeps) {}

  /** Start the periodic passes (none when the interval is 0). */
  start(): void {
    if (this.deps.intervalMs <= 0) return;
    this.timer = setInterval(() => void this.pass().catch(() => {}), this.deps.intervalMs);
    this.timer.unref();
  }

  /** Stop the timer and wait for a pass in progress. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running?.catch(() => {});
  }

  /** One repair pass (passes never overlap). */
  pass(): Promise<Repairs> {
    this.running ??= this.run().finally(() => (this.running = undefined));
    return this.running;
  }

  private async run(): Promise<Repairs> {
    const { bridge, overlay, firewall, metrics, log } = this.deps;
    const started = process.hrtime.bigint();
    let ok = true;
    const repairs: Repairs = {};
    const add = (kind: string, n: number) => {
      if (n > 0) {
        repairs[kind] = (repairs[kind] ?? 0) + n;
        metrics.repaired(kind, n);
      }
    };
    try {
      const br = await firewall.bulk(() => bridge.reconcile({ prune: false }));
      const ov = await overlay.reconcile({ prune: false });
      const fw = await firewall.reconcile();
      add('link', br.bridgesCreated.length + br.reattached.length + ov.recreated.length + ov.reattached.length);
      add('rule', Object.values(fw).reduce((n, s) => n + s.created + s.deleted + s.patched + s.rewritten, 0));
      const errors = [...br.errors, ...ov.errors];
      ok = errors.length === 0;
      if (Object.keys(repairs).length > 0 || !ok) log[ok ? 'info' : 'warn']({ repairs, errors }, 'reconcile repaired state');
    } catch (err) {
      ok = false;
      log.warn({ err: (err as Error).message }, 'reconcile pass failed');
    } finally {
      metrics.pass('daemon', Number(process.hrtime.bigint() - started) / 1e9, ok);
    }
    return repairs;
  }
}
