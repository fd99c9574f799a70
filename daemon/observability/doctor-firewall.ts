// Firewall checks of `tsoverlay doctor`, read-only: which iptables backend `iptables` is (nft or
// legacy) and whether the other backend also holds rules, and whether the filter FORWARD chain
// lets our traffic through (dockerd sets its policy to DROP): tsoverlay's own rule there — the
// iptables backend's jump to TSO-FORWARD or the nft backend's mark relay — makes a DROP policy
// harmless, as long as no unconditional DROP comes before it. Limit: IPv4 only.
import { RELAY_RULE } from '../../proxy/nft.js';
import { CHAINS } from '../../proxy/rules.js';
import { extraTool, fail, firstLine, inScope, pass, toolsIn, type Check, type Scope } from './doctor-check.js';

/**
 * The nft backend's rule in iptables' FORWARD (as iptables-save prints it): it accepts what
 * tsoverlay's own nft forward chain marked, since an accept in our table cannot override
 * iptables' DROP policy.
 */
export const NFT_RELAY_RULE = RELAY_RULE;

/** What the FORWARD chain of an `iptables-save -t filter` dump says about our traffic. */
export interface ForwardState {
  policy: string | null;
  /** Index among FORWARD rules of our rule (the TSO-FORWARD jump or the nft relay), -1 when absent. */
  jump: number;
  /** Which of our rules `jump` is. */
  via: 'jump' | 'relay' | null;
  /** Index of the first unconditional DROP/REJECT, -1 when none. */
  block: number;
  /** Whether our chain exists at all. */
  chain: boolean;
}

/** Parse a filter-table dump (pure). */
export function parseForward(dump: string): ForwardState {
  const lines = dump.split('\n').map((l) => l.trim());
  const policy = lines.find((l) => l.startsWith(':FORWARD '))?.split(/\s+/)[1] ?? null;
  const rules = lines.filter((l) => l.startsWith('-A FORWARD '));
  const direct = rules.findIndex((l) => l === `-A FORWARD -j ${CHAINS.forward}`);
  const relay = rules.findIndex((l) => l === NFT_RELAY_RULE);
  const found = [direct, relay].filter((i) => i >= 0);
  const jump = found.length ? Math.min(...found) : -1;
  const via = jump < 0 ? null : jump === direct ? 'jump' : 'relay';
  const block = rules.findIndex((l) => /^-A FORWARD -j (DROP|REJECT)\b/.test(l));
  const chain = lines.some((l) => l.startsWith(`:${CHAINS.forward} `));
  return { policy, jump, via, block, chain };
}

/** Judge a parsed FORWARD chain (pure; `scope` only shapes the fix command). */
export function judgeForward(s: ForwardState, scope: Scope): Check {
  const name = 'forward-policy';
  const jumpFix = inScope(scope, `iptables -I FORWARD 1 -j ${CHAINS.forward}`);
  const ours = s.via === 'relay' ? 'nft relay rule (mark 0x2000 → ACCEPT)' : `${CHAINS.forward} jump`;
  if (s.block >= 0 && (s.jump < 0 || s.block < s.jump)) {
    const fix = s.via === 'relay' ? inScope(scope, `iptables -I FORWARD 1 ${NFT_RELAY_RULE.slice('-A FORWARD '.length)}`) : s.chain ? jumpFix : inScope(scope, `iptables -D FORWARD ${s.block + 1}`);
    return fail(name, `rule ${s.block + 1} of FORWARD drops everything before tsoverlay's ${ours} is reached`, fix);
  }
  if (s.policy === 'DROP' && s.jump < 0) {
    const fix = s.chain ? jumpFix : `${inScope(scope, 'iptables -P FORWARD ACCEPT')}; or start \`tsoverlay daemon\`, which appends its own FORWARD rule (-j ${CHAINS.forward}, or the nft backend's mark relay)`;
    return fail(name, `FORWARD policy is DROP (dockerd sets it) and no tsoverlay rule accepts before it (no -j ${CHAINS.forward}, no nft relay): traffic of tsoverlay networks through this host is dropped`, fix);
  }
  if (s.policy === 'DROP') return pass(name, `FORWARD policy is DROP (dockerd) and tsoverlay's ${ours} accepts tsoverlay traffic before it`);
  return pass(name, `FORWARD policy is ${s.policy ?? 'ACCEPT (no filter table yet)'}`);
}

const countRules = (dump: string) => dump.split('\n').filter((l) => l.startsWith('-A ')).length;

/** `iptables -V`: the backend, and rules left in the other backend (both sets apply to packets). */
export async function backendCheck(scope: Scope): Promise<Check> {
  const tools = toolsIn(scope);
  const v = await tools.tryRun('iptables', ['-V']).catch((err: Error) => ({ code: 127, stdout: '', stderr: err.message }));
  if (v.code !== 0) return fail('iptables-backend', `iptables does not run: ${firstLine(v.stderr) || `exit ${v.code}`}`, 'apt-get install iptables');
  const text = firstLine(v.stdout);
  const backend = /nf_tables/.test(text) ? 'nft' : /legacy/.test(text) ? 'legacy' : 'legacy';
  const other = backend === 'nft' ? 'iptables-legacy-save' : 'iptables-nft-save';
  const dump = await tools.tryRun(extraTool(other), []).catch(() => undefined);
  const n = dump && dump.code === 0 ? countRules(dump.stdout) : 0;
  if (n > 0) {
    return fail(
      'iptables-backend',
      `${text}; but the ${backend === 'nft' ? 'legacy' : 'nft'} backend also holds ${n} rules, which apply to packets too (${other} shows them)`,
      `update-alternatives --set iptables /usr/sbin/iptables-${backend === 'nft' ? 'legacy' : 'nft'} (use the backend that already has the rules, then restart dockerd and tsoverlay)`,
    );
  }
  return pass('iptables-backend', `${text} (backend ${backend})`);
}

/** Read the filter table and judge FORWARD. */
export async function forwardCheck(scope: Scope): Promise<Check> {
  const r = await toolsIn(scope).tryRun('iptables-save', ['-t', 'filter']).catch((err: Error) => ({ code: 127, stdout: '', stderr: err.message }));
  if (r.code !== 0) return fail('forward-policy', `iptables-save fails: ${firstLine(r.stderr) || `exit ${r.code}`}`, 'apt-get install iptables');
  return judgeForward(parseForward(r.stdout), scope);
}
