// Test fixture for netlink/ kernel tests: fresh namespaces per test, a Kernel handle on each,
// deleted in teardown even when the test fails.
import type { ExecutionContext } from 'ava';
import { Kernel, type NetnsHandle } from '../../netlink/index.js';
import { NetnsSet, type Netns } from '../harness/netns.js';

export interface Space {
  /** The harness namespace (name, path, exec/ip helpers). */
  ns: Netns;
  /** Our API on it. */
  h: NetnsHandle;
}

/** Create one namespace per name (loopback up) and return them with Kernel handles. */
export async function spaces<N extends string>(t: ExecutionContext, tag: string, names: N[]): Promise<{ k: Kernel } & Record<N, Space>> {
  const set = new NetnsSet(tag);
  t.teardown(() => set.cleanup());
  const k = new Kernel({ timeoutMs: 20_000 });
  const out = { k } as { k: Kernel } & Record<N, Space>;
  for (const name of names) {
    const ns = await set.add(name);
    (out as Record<string, unknown>)[name] = { ns, h: k.ns(ns.path) };
  }
  return out;
}

/** The KernelError code of a rejected promise (fails the test if it resolves). */
export async function codeOf(t: ExecutionContext, p: Promise<unknown>): Promise<string> {
  const err = await t.throwsAsync(p);
  return (err as { code?: string } | undefined)?.code ?? 'none';
}

/** One ping (bounded) from inside a namespace; true when answered. */
export async function ping(from: Netns, to: string, waitSeconds = 2): Promise<boolean> {
  const r = await from.tryExec('ping', ['-c', '1', '-W', String(waitSeconds), '-n', '-q', to], { timeoutMs: 5_000 });
  return r.code === 0;
}
