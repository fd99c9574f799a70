// Running an interface plugin's IPAM: the configured `ipam.type` through the CNI exec
// protocol (SPEC §4: same env, the complete config on stdin), except our own tsipam,
// which runs in-process on the same request: identical input and behaviour, without a
// second Node start (~40-60 ms). `"ipam": {"exec": true}` forces the exec path.
import type { CniContext } from './context.js';
import { delegate } from './delegate.js';
import { invalidConfig } from './errors.js';
import type { CniRequest, PluginHandlers } from './skel.js';
import type { Result } from './types.js';

type Verb = 'ADD' | 'DEL' | 'CHECK' | 'STATUS' | 'GC';

/** The IPAM plugin name of a config (CniError 7 when missing). */
export function ipamType(req: Pick<CniRequest, 'conf'>): string {
  const t = req.conf.ipam?.type;
  if (typeof t !== 'string' || t === '') throw invalidConfig('ipam.type', t ?? null, 'missing: an IPAM plugin is required (e.g. tsipam or host-local)');
  return t;
}

/** Runs the IPAM of one request (one instance per invocation). */
export class IpamRunner {
  private own?: Promise<PluginHandlers>;

  /** `local`: the in-process tsipam handlers to use (a caller keeping them across requests keeps their caches). */
  constructor(
    private readonly ctx: CniContext,
    private readonly req: CniRequest,
    private readonly local?: () => Promise<PluginHandlers>,
  ) {}

  /** True when the IPAM runs inside this process. */
  get inProcess(): boolean {
    return ipamType(this.req) === 'tsipam' && this.req.conf.ipam?.exec !== true;
  }

  private handlers(): Promise<PluginHandlers> {
    if (this.local) return this.local();
    this.own ??= import('./tsipam-handlers.js').then((m) => m.createTsipamHandlers(this.ctx));
    return this.own;
  }

  /** ADD: the IPAM's result in canonical form. */
  async add(): Promise<Result> {
    return (await this.run('ADD')) ?? {};
  }

  /** Any verb; ADD resolves the result, the others undefined. */
  async run(command: Verb): Promise<Result | undefined> {
    const type = ipamType(this.req);
    if (this.inProcess) {
      const h = await this.handlers();
      const sub: CniRequest = { ...this.req, command, env: { ...this.req.env, command } };
      switch (command) {
        case 'ADD':
          return h.add(sub);
        case 'DEL':
          return void (await h.del(sub));
        case 'CHECK':
          return void (await h.check(sub));
        case 'STATUS':
          return void (await h.status?.(sub));
        case 'GC':
          return void (await h.gc?.(sub));
      }
    }
    return delegate({ type, command, stdin: this.req.stdin, env: this.req.env, cniVersion: this.req.cniVersion });
  }
}
