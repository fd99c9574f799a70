// Spawning the firewall tools (iptables-restore/-save, nft, conntrack, sysctl, ss) in a target
// network namespace: `nsenter --net=<path> -- tool …` when a path is given, else directly.
// Argument arrays only, bounded time, stdin for bulk input; failures become ProxyError.
import { existsSync } from 'node:fs';
import { netnsArgv, spawnCollect } from '../netlink/runner.js';
import { ProxyError } from './errors.js';

export type ToolName =
  | 'iptables-restore'
  | 'iptables-save'
  | 'ip6tables-restore'
  | 'ip6tables-save'
  | 'conntrack'
  | 'sysctl'
  | 'ss'
  | 'ip'
  | 'iptables'
  | 'ip6tables'
  | 'nft'
  | 'stdbuf';

export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

// Absolute paths: a PATH with node_modules/.bin first would find @vercel/nft's `nft`, not nftables'.
const SEARCH_DIRS = ['/usr/sbin', '/sbin', '/usr/bin', '/bin'];

function find(name: string): string {
  return SEARCH_DIRS.map((d) => `${d}/${name}`).find((p) => existsSync(p)) ?? name;
}

/** The code of a tool's failure: `nft-failed` for nft, `iptables-failed` for every other tool. */
export function failedCode(tool: ToolName): 'nft-failed' | 'iptables-failed' {
  return tool === 'nft' ? 'nft-failed' : 'iptables-failed';
}

/** Runs tools inside one network namespace (undefined = the caller's own). */
export class NetnsTools {
  private readonly paths = new Map<string, string>();

  /**
   * @param netnsPath e.g. /var/run/netns/h1; undefined runs in this process's namespace.
   * @param timeoutMs per spawned process.
   */
  constructor(
    readonly netnsPath?: string,
    private readonly timeoutMs = 30_000,
  ) {
    if (netnsPath !== undefined && !/^\/[A-Za-z0-9_./@:-]+$/.test(netnsPath)) {
      throw new ProxyError('invalid-name', `netns path ${JSON.stringify(netnsPath)} is not an absolute path`);
    }
  }

  private bin(tool: string): string {
    let p = this.paths.get(tool);
    if (!p) this.paths.set(tool, (p = find(tool)));
    return p;
  }

  /** The absolute path of a tool. */
  path(tool: ToolName): string {
    return this.bin(tool);
  }

  /** The argv that runs `tool args` in the namespace. */
  argv(tool: ToolName, args: readonly string[]): string[] {
    const bin = this.bin(tool);
    return netnsArgv(this.bin('nsenter'), this.netnsPath ?? null, bin, args);
  }

  /** Run and collect; never throws for a non-zero exit (only when the tool cannot be spawned). */
  async tryRun(tool: ToolName, args: readonly string[], input?: string): Promise<ToolResult> {
    const argv = this.argv(tool, args);
    try {
      const { code, stdout, stderr } = await spawnCollect(argv, input, this.timeoutMs);
      return { code, stdout, stderr };
    } catch (e) {
      throw new ProxyError(failedCode(tool), `cannot run ${argv[0]}: ${(e as Error).message}`, { cause: e });
    }
  }

  /** Run; resolve with stdout or throw ProxyError (failedCode(tool)) carrying the tool's message. */
  async run(tool: ToolName, args: readonly string[], input?: string): Promise<string> {
    const r = await this.tryRun(tool, args, input);
    if (r.code === 0) return r.stdout;
    const where = this.netnsPath ? ` in ${this.netnsPath}` : '';
    // A busy xtables lock or a concurrent nft transaction may clear up: retryable.
    const retryable = /resource temporarily unavailable|another app is currently holding the xtables lock/i.test(r.stderr);
    throw new ProxyError(failedCode(tool), `${tool}${where} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`, { retryable });
  }
}
