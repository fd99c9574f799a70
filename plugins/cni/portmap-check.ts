// tsportmap CHECK's kernel half: each recorded binding's DNAT rule (in its port bucket) and
// the bucket's dispatch rule are in the tables, as iptables-save shows them.
import { bindingRule, dispatchRule } from '../../proxy/build.js';
import type { PortBinding } from '../../proxy/firewall.js';
import { IptablesBackend } from '../../proxy/iptables.js';
import { renderRule } from '../../proxy/render.js';
import { bucketChain, chainKey, CHAINS } from '../../proxy/rules.js';
import { CniError, ErrorCode } from './errors.js';

/** Throws CniError 999 naming the first missing rule. */
export async function checkBindings(bindings: readonly PortBinding[]): Promise<void> {
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
        if (!have.has(text)) throw new CniError(ErrorCode.Internal, `tsportmap CHECK: rule "-A ${chain} ${text}" for ${b.hostIp}:${b.hostPort}/${b.proto} is missing`);
      }
    }
  }
}
