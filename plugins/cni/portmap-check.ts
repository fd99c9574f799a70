// tsportmap CHECK's kernel half: each recorded binding is live in the backend the daemon
// recorded — its DNAT rule and the bucket's dispatch rule (iptables-save), or its map element
// and the `published` chain (the nft table).
import type { BackendKind } from '../../proxy/backend.js';
import { bindingRule, dispatchRule } from '../../proxy/build.js';
import { NetnsTools } from '../../proxy/exec.js';
import type { PortBinding } from '../../proxy/firewall.js';
import { IptablesBackend } from '../../proxy/iptables.js';
import { NftKernel } from '../../proxy/nft-kernel.js';
import { bindingElem, elemId } from '../../proxy/nft-render.js';
import { renderRule } from '../../proxy/render.js';
import { bucketChain, chainKey, CHAINS } from '../../proxy/rules.js';
import { CniError, ErrorCode } from './errors.js';

const missing = (what: string, b: PortBinding) => new CniError(ErrorCode.Internal, `tsportmap CHECK: ${what} for ${b.hostIp}:${b.hostPort}/${b.proto} is missing`);

/** Throws CniError 999 naming the first missing rule (or nft element). */
export async function checkBindings(bindings: readonly PortBinding[], backend: BackendKind = 'iptables'): Promise<void> {
  if (backend === 'nft') return checkNftBindings(bindings);
  for (const family of [4, 6] as const) {
    const mine = bindings.filter((b) => (b.containerIp.includes(':') ? 6 : 4) === family);
    if (mine.length === 0) continue;
    const saved = await new IptablesBackend({ family }).dump();
    const rules = (chain: string) => new Set(saved.chains.get(chainKey('nat', chain))?.rules ?? []);
    const dispatch = rules(CHAINS.dnat);
    for (const b of mine) {
      const bucket = bucketChain(b.proto, b.hostPort);
      const want: Array<[string, Set<string>, string]> = [
        [CHAINS.dnat, dispatch, renderRule(dispatchRule(b.proto, b.hostPort), family)],
        [bucket, rules(bucket), renderRule(bindingRule(b), family)],
      ];
      for (const [chain, have, text] of want) {
        if (!have.has(text)) throw missing(`rule "-A ${chain} ${text}"`, b);
      }
    }
  }
}

async function checkNftBindings(bindings: readonly PortBinding[]): Promise<void> {
  if (bindings.length === 0) return;
  const kernel = new NftKernel(new NetnsTools());
  const applied = await kernel.dump();
  for (const b of bindings) {
    if (!applied.chains.get('published')?.length) throw missing('the nft chain "published" (table inet tsoverlay)', b);
    const e = bindingElem(b);
    if (applied.elems.get(e.set)?.get(elemId(e.key)) !== elemId(e.value ?? '')) throw missing(`nft element "${e.key} : ${e.value}" of map ${e.set}`, b);
  }
}
