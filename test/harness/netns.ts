// Network namespaces that stand in for hosts and containers in tests.
// Every namespace a test makes is named `tsot-<pid36>-<id>-<name>` (pid36: the creating
// process's PID in base 36) so leftovers are recognisable and the runner's sweep can
// tell a dead test's namespaces from a live one's; each is deleted by the handle's
// cleanup even when the test fails.
import { randomBytes } from 'node:crypto';
import { run, tryRun, type RunOptions } from './exec.js';

export const NETNS_DIR = '/var/run/netns';

/** A short random id unique enough for one machine's concurrent tests. */
export function uniqueId(bytes = 3): string {
  return randomBytes(bytes).toString('hex');
}

export class Netns {
  constructor(readonly name: string) {}

  get path(): string {
    return `${NETNS_DIR}/${this.name}`;
  }

  /** Run a command inside the namespace (nsenter keeps /sys and cgroups as they are). */
  exec(cmd: string, args: string[], opts?: RunOptions): Promise<string> {
    return run('nsenter', [`--net=${this.path}`, '--', cmd, ...args], opts);
  }

  tryExec(cmd: string, args: string[], opts?: RunOptions) {
    return tryRun('nsenter', [`--net=${this.path}`, '--', cmd, ...args], opts);
  }

  /** `ip ARGS` inside the namespace. */
  ip(...args: string[]): Promise<string> {
    return run('ip', ['-n', this.name, ...args]);
  }
}

/** A set of namespaces made by one test; `cleanup()` deletes them all. */
export class NetnsSet {
  readonly prefix: string;
  private readonly made: Netns[] = [];

  constructor(tag = 't') {
    this.prefix = `tsot-${process.pid.toString(36)}-${uniqueId()}-${tag}`.slice(0, 30);
  }

  /** Create `<prefix>-<name>` with loopback up. */
  async add(name: string): Promise<Netns> {
    const ns = new Netns(`${this.prefix}-${name}`);
    await run('ip', ['netns', 'add', ns.name]);
    this.made.push(ns);
    await ns.ip('link', 'set', 'lo', 'up');
    return ns;
  }

  /**
   * Join namespaces a and b with a veth pair created inside them (never in the
   * root namespace) and give each end an address, e.g. "10.99.0.1/24".
   */
  async link(a: Netns, aIf: string, aAddr: string, b: Netns, bIf: string, bAddr: string, mtu = 1500): Promise<void> {
    await a.ip('link', 'add', aIf, 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', bIf, 'netns', b.name);
    await b.ip('link', 'set', bIf, 'mtu', String(mtu));
    if (aAddr) await a.ip('addr', 'add', aAddr, 'dev', aIf);
    if (bAddr) await b.ip('addr', 'add', bAddr, 'dev', bIf);
    await a.ip('link', 'set', aIf, 'up');
    await b.ip('link', 'set', bIf, 'up');
  }

  /** Delete every namespace this set made (their links go with them). */
  async cleanup(): Promise<void> {
    for (const ns of this.made.splice(0).reverse()) {
      await tryRun('ip', ['netns', 'delete', ns.name]);
    }
  }
}
