// Parse and validate the CNI environment (SPEC §2 "Parameters") the way libcni's skel
// does: required variables per verb, container ID and interface name rules, CNI_ARGS
// syntax. Every failure is CniError 4 naming the variable and its value.
import { CniError, ErrorCode, invalidEnv } from './errors.js';
import type { CniCommand } from './types.js';

/** The validated invocation parameters. Absent optional values are ''. */
export interface CniEnv {
  command: CniCommand;
  containerId: string;
  netns: string;
  ifname: string;
  /** CNI_ARGS as given ('' when unset). */
  args: string;
  /** CNI_ARGS split into key/value pairs, in order. */
  argPairs: Array<[string, string]>;
  /** CNI_PATH directories (empty entries dropped). */
  path: string[];
  /** CNI_NETNS_OVERRIDE=1|true: skip the "netns is our own" check (libcni's escape hatch). */
  netnsOverride: boolean;
}

const COMMANDS: readonly CniCommand[] = ['ADD', 'DEL', 'CHECK', 'VERSION', 'STATUS', 'GC'];

/** Variables each verb requires (SPEC §2; libcni also wants CNI_PATH, we only need it to delegate). */
const REQUIRED: Readonly<Record<CniCommand, readonly string[]>> = {
  ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
  CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
  DEL: ['CNI_CONTAINERID', 'CNI_IFNAME'],
  VERSION: [],
  STATUS: [],
  GC: [],
};

/** Container IDs and network names (libcni `cniValidNameChars`). */
export const CNI_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** Kernel limit IFNAMSIZ-1 (bytes). */
const MAX_IFNAME_BYTES = 15;

/** Why `name` cannot be an interface name, or undefined when it can (libcni rules). */
export function interfaceNameProblem(name: string): string | undefined {
  if (name === '') return 'is empty';
  if (Buffer.byteLength(name, 'utf8') > MAX_IFNAME_BYTES) return `is longer than ${MAX_IFNAME_BYTES} bytes`;
  if (name === '.' || name === '..') return 'must not be "." or ".."';
  if (/[/:\s]/u.test(name)) return 'must not contain "/", ":" or whitespace';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'must not contain control characters';
  return undefined;
}

/** Split CNI_ARGS ("K=V;K=V") into pairs; each pair needs exactly one "=" and a key. */
export function parseArgPairs(raw: string): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  if (raw === '') return pairs;
  for (const part of raw.split(';')) {
    // A trailing ";" leaves an empty segment: harmless, skipped.
    if (part === '') continue;
    const kv = part.split('=');
    if (kv.length !== 2 || kv[0] === '') throw invalidEnv('CNI_ARGS', raw, `has an invalid pair ${JSON.stringify(part)} (want KEY=VALUE)`);
    pairs.push([kv[0]!, kv[1]!]);
  }
  return pairs;
}

function parseCommand(value: string | undefined): CniCommand {
  if (value === undefined || value === '') throw invalidEnv('CNI_COMMAND', value, 'is missing');
  if (!(COMMANDS as readonly string[]).includes(value)) {
    throw invalidEnv('CNI_COMMAND', value, `is unknown (want one of ${COMMANDS.join(', ')})`);
  }
  return value as CniCommand;
}

/**
 * Parse `env` for one invocation. Throws CniError 4: missing variables are reported
 * together (as libcni does); a present-but-bad variable names itself and its value.
 */
export function parseEnv(env: NodeJS.ProcessEnv): CniEnv {
  const command = parseCommand(env.CNI_COMMAND);
  const get = (name: string): string => env[name] ?? '';
  const missing = REQUIRED[command].filter((name) => get(name) === '');
  if (missing.length) {
    throw new CniError(ErrorCode.InvalidEnvironment, `required environment variables missing for ${command}: ${missing.join(', ')}`);
  }
  const attachment = command === 'ADD' || command === 'CHECK' || command === 'DEL';
  const containerId = attachment ? get('CNI_CONTAINERID') : '';
  if (attachment && !CNI_NAME.test(containerId)) {
    throw invalidEnv('CNI_CONTAINERID', containerId, 'has invalid characters (want a letter or digit, then letters, digits, "_", "." or "-")');
  }
  const ifname = attachment ? get('CNI_IFNAME') : '';
  const ifProblem = attachment ? interfaceNameProblem(ifname) : undefined;
  if (ifProblem) throw invalidEnv('CNI_IFNAME', ifname, ifProblem);
  let netns = attachment ? get('CNI_NETNS') : '';
  if (netns !== '' && !netns.startsWith('/')) {
    // DEL is best-effort (SPEC §2 DEL): an unusable netns is treated as already gone.
    if (command === 'DEL') netns = '';
    else throw invalidEnv('CNI_NETNS', netns, 'is not an absolute path');
  }
  const args = attachment ? get('CNI_ARGS') : '';
  const override = get('CNI_NETNS_OVERRIDE').toLowerCase();
  return {
    command,
    containerId,
    netns,
    ifname,
    args,
    argPairs: parseArgPairs(args),
    path: get('CNI_PATH').split(':').filter((d) => d !== ''),
    netnsOverride: override === '1' || override === 'true',
  };
}
