// The shape of one `tsoverlay doctor` check and small helpers shared by the check modules.
// A failing check always carries the command that fixes it.
import { NetnsTools, type ToolName } from '../../proxy/exec.js';

/** One line of `doctor --json`'s `{checks: [...]}`. */
export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  /** The command (or commands, separated by `; `) that fixes a failure; null when ok. */
  fix: string | null;
}

export const pass = (name: string, detail: string): Check => ({ name, ok: true, detail, fix: null });
export const fail = (name: string, detail: string, fix: string): Check => ({ name, ok: false, detail, fix });

/** Where the doctor looks: the namespace to inspect (undefined: the doctor's own). */
export interface Scope {
  netnsPath?: string;
  /** Per spawned tool, ms. */
  timeoutMs: number;
}

/** Tools run inside the scope's namespace, through the one helper that knows how to enter it. */
export function toolsIn(scope: Scope): NetnsTools {
  return new NetnsTools(scope.netnsPath, scope.timeoutMs);
}

/**
 * Run a tool that proxy/exec.ts does not list (ping, iptables-legacy-save) the same way:
 * NetnsTools resolves any name in the system directories and enters the namespace itself.
 */
export function extraTool(name: 'ping' | 'iptables-legacy-save' | 'iptables-nft-save'): ToolName {
  return name as ToolName;
}

/** How a fix command is run in the inspected namespace (a prefix, empty for the doctor's own). */
export function inScope(scope: Scope, command: string): string {
  return scope.netnsPath === undefined ? command : `nsenter --net=${scope.netnsPath} -- ${command}`;
}

/** First line of a tool's complaint, for a detail. */
export function firstLine(text: string): string {
  return text.trim().split('\n')[0]?.trim() ?? '';
}
