// Pure rendering of rule objects into iptables-restore text, in exactly the form iptables-save
// prints (so desired and dumped rules compare as strings). Every value is re-validated here:
// the rendered text never contains a value that did not pass a validator.
import { ProxyError } from './errors.js';
import { CT_STATES, type Family, type Rule, type Target } from './rules.js';
import * as v from './validate.js';

function fail(what: string, value: unknown): never {
  throw new ProxyError('internal', `refusing to render ${what} ${JSON.stringify(value)}`);
}

function addr(c: string, family: Family, what: string): string {
  const r = v.cidr(c, what);
  if (r.cidr !== c || r.family !== family) fail(what, c);
  return c;
}

function ports(p: number | readonly [number, number]): string {
  if (typeof p === 'number') return String(v.port(p, 'port'));
  const [a, b] = p;
  if (v.port(a, 'port') > v.port(b, 'port')) fail('port range', p);
  return `${a}:${b}`;
}

/** The probability as iptables-save prints it: the kernel keeps p * 2^31 as an integer. */
export function probabilityText(p: number): string {
  if (!(p > 0 && p < 1)) fail('probability', p);
  return (Math.round(p * 0x80000000) / 0x80000000).toFixed(11);
}

function targetText(t: Target, family: Family): string {
  switch (t.kind) {
    case 'ACCEPT':
    case 'DROP':
    case 'RETURN':
    case 'MASQUERADE':
      return `-j ${t.kind}`;
    case 'jump':
      return `-j ${v.chainName(t.chain)}`;
    case 'DNAT': {
      const ip = v.ip(t.ip, 'DNAT address');
      if (ip.addr !== t.ip || ip.family !== family) fail('DNAT address', t.ip);
      const port = v.port(t.port, 'DNAT port');
      return family === 4 ? `-j DNAT --to-destination ${t.ip}:${port}` : `-j DNAT --to-destination [${t.ip}]:${port}`;
    }
    case 'SNAT': {
      const ip = v.ip(t.ip, 'SNAT address');
      if (ip.addr !== t.ip || ip.family !== family) fail('SNAT address', t.ip);
      return `-j SNAT --to-source ${t.ip}`;
    }
    default:
      return fail('target', t);
  }
}

const MASK: Record<Family, string> = { 4: '255.255.255.255', 6: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff' };

/** One rule's text after "-A CHAIN ". */
export function renderRule(rule: Rule, family: Family): string {
  const out: string[] = [];
  if (rule.src !== undefined) out.push(`-s ${addr(rule.src, family, 'source')}`);
  if (rule.dst !== undefined) out.push(`${rule.notDst ? '! ' : ''}-d ${addr(rule.dst, family, 'destination')}`);
  if (rule.in) out.push(`${rule.in.not ? '! ' : ''}-i ${v.ifname(rule.in.name, 'in-interface')}`);
  if (rule.out) out.push(`${rule.out.not ? '! ' : ''}-o ${v.ifname(rule.out.name, 'out-interface')}`);
  if (rule.proto !== undefined) {
    const p = v.proto(rule.proto);
    out.push(`-p ${p}`);
    if (rule.dport !== undefined || rule.sport !== undefined) {
      out.push(`-m ${p}`);
      if (rule.sport !== undefined) out.push(`--sport ${ports(rule.sport)}`);
      if (rule.dport !== undefined) out.push(`--dport ${ports(rule.dport)}`);
    }
  } else if (rule.dport !== undefined || rule.sport !== undefined) {
    fail('port match without protocol', rule);
  }
  if (rule.dstType !== undefined) {
    if (rule.dstType !== 'LOCAL') fail('address type', rule.dstType);
    out.push('-m addrtype --dst-type LOCAL');
  }
  if (rule.ctstate !== undefined) {
    if (rule.ctstate.length === 0 || rule.ctstate.some((s) => !CT_STATES.includes(s))) fail('ctstate', rule.ctstate);
    out.push(`-m conntrack --ctstate ${CT_STATES.filter((s) => rule.ctstate!.includes(s)).join(',')}`);
  }
  if (rule.probability !== undefined) out.push(`-m statistic --mode random --probability ${probabilityText(rule.probability)}`);
  if (rule.recent !== undefined) {
    // The list name follows the chain-name scheme (TSO-AFF-…).
    const name = v.chainName(rule.recent.name);
    if ('set' in rule.recent) out.push(`-m recent --set --name ${name} --mask ${MASK[family]} --rsource`);
    else {
      const s = rule.recent.seconds;
      if (!Number.isInteger(s) || s < 1 || s > 86400 * 7) fail('affinity seconds', s);
      out.push(`-m recent --update --seconds ${s} --reap --name ${name} --mask ${MASK[family]} --rsource`);
    }
  }
  out.push(targetText(rule.target, family));
  return out.join(' ');
}
