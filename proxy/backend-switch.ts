// Removing everything one firewall backend put in a namespace, for a host that switched to the
// other: the iptables backend's TSO-* chains and the jumps to them, or the nft backend's table
// and its FORWARD mark relay. Only our objects are touched; a missing tool means nothing to remove.
import type { BackendKind } from './backend.js';
import { ProxyError } from './errors.js';
import type { NetnsTools } from './exec.js';
import { IptablesBackend, parseSave } from './iptables.js';
import { NFT_TABLE } from './nft-render.js';
import { RELAY_RULE } from './nft.js';

/**
 * Remove the rules backend `kind` leaves in the namespace of `tools` (the one not in use).
 * Resolves with how many objects went (chains + jumps, or table + relay rules; 0: none there).
 */
export async function removeBackendRules(kind: BackendKind, tools: NetnsTools): Promise<number> {
  return kind === 'iptables' ? removeIptablesRules(tools) : removeNftRules(tools);
}

/** Whether a tool exists and answers (iptables may not be installed on an nft-only host). */
async function answers(tools: NetnsTools, tool: 'iptables-save' | 'ip6tables-save' | 'nft', args: string[]): Promise<{ code: number; stdout: string; stderr: string } | undefined> {
  try {
    return await tools.tryRun(tool, args);
  } catch (err) {
    if (err instanceof ProxyError) return undefined; // cannot be spawned: not installed
    throw err;
  }
}

/** Every TSO-* chain and every jump to one, per family, in one iptables-restore each. */
async function removeIptablesRules(tools: NetnsTools): Promise<number> {
  let removed = 0;
  for (const family of [4, 6] as const) {
    const save = await answers(tools, family === 4 ? 'iptables-save' : 'ip6tables-save', []);
    if (!save || save.code !== 0) continue;
    const ours = parseSave(save.stdout);
    if (ours.chains.size + ours.jumps.length === 0) continue;
    // A reconcile towards nothing: every chain of ours is stale, every jump of ours goes.
    await new IptablesBackend({ family, tools }).reconcile(new Map(), []);
    removed += ours.chains.size + ours.jumps.length;
  }
  return removed;
}

/** `table inet tsoverlay` and the FORWARD relay rule of each family. */
async function removeNftRules(tools: NetnsTools): Promise<number> {
  let removed = 0;
  const table = NFT_TABLE.split(' ');
  const list = await answers(tools, 'nft', ['list', 'table', ...table]);
  if (list && list.code === 0) {
    await tools.run('nft', ['delete', 'table', ...table]);
    removed++;
  }
  for (const family of [4, 6] as const) {
    const save = await answers(tools, family === 4 ? 'iptables-save' : 'ip6tables-save', ['-t', 'filter']);
    if (!save || save.code !== 0) continue;
    const n = save.stdout.split('\n').filter((l) => l === RELAY_RULE).length;
    if (n === 0) continue;
    const del = `-D ${RELAY_RULE.slice('-A '.length)}`;
    await tools.run(family === 4 ? 'iptables-restore' : 'ip6tables-restore', ['--noflush'], `*filter\n${Array(n).fill(del).join('\n')}\nCOMMIT\n`);
    removed += n;
  }
  return removed;
}
