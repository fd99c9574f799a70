// KernelError: what every netlink/ call throws, with an errno-like `code` so callers can be idempotent.
// iproute2/sysctl/nsenter print text, not errno numbers: `classify` maps their messages to codes.

/** Error classes shared with the rest of tsoverlay (the HTTP/CNI layers map them to statuses). */
export type ErrorKind = 'bad-request' | 'not-found' | 'conflict' | 'unavailable' | 'internal';

/** What a KernelError carries besides its message; `command` is the failing tool invocation. */
export interface KernelErrorDetails {
  /** argv of the spawned process (after namespace entry), when one was spawned. */
  command?: string[];
  /** The batch line that failed (ip/bridge `-batch` input), when known. */
  line?: string;
  /** The namespace path the call targeted (null = the caller's own). */
  netns?: string | null;
  stderr?: string;
  /** The invalid field and value, for validation errors. */
  field?: string;
  value?: unknown;
}

const KIND_OF: Record<string, ErrorKind> = {
  EEXIST: 'conflict',
  EBUSY: 'conflict',
  EADDRINUSE: 'conflict',
  ENOENT: 'not-found',
  ENODEV: 'not-found',
  ESRCH: 'not-found',
  EADDRNOTAVAIL: 'not-found',
  EINVAL: 'bad-request',
  ERANGE: 'bad-request',
  ENETUNREACH: 'bad-request',
  EOPNOTSUPP: 'bad-request',
  ENOTCONN: 'bad-request',
  EAGAIN: 'unavailable',
  ENOBUFS: 'unavailable',
  ETIMEDOUT: 'unavailable',
  ENOEXEC: 'unavailable',
  EPERM: 'internal',
  EKERNEL: 'internal',
};

const RETRYABLE = new Set(['EBUSY', 'EAGAIN', 'ENOBUFS', 'ETIMEDOUT']);

/**
 * An operation on the kernel failed, or was refused before reaching it (validation).
 * `code` is an errno name ('EEXIST', 'ENODEV', …) or 'EKERNEL' when the message is unknown;
 * `kind` and `retryable` follow from the code.
 */
export class KernelError extends Error {
  readonly code: string;
  readonly kind: ErrorKind;
  readonly retryable: boolean;
  readonly details: KernelErrorDetails;

  constructor(code: string, message: string, details: KernelErrorDetails = {}) {
    super(message);
    this.name = 'KernelError';
    this.code = code;
    this.kind = KIND_OF[code] ?? 'internal';
    this.retryable = RETRYABLE.has(code);
    this.details = details;
  }
}

/** A value was refused before any command ran (kind 'bad-request'). */
export function invalid(field: string, value: unknown, why: string): KernelError {
  return new KernelError('EINVAL', `invalid ${field} ${JSON.stringify(value)}: ${why}`, { field, value });
}

// Order matters: the first match wins, specific messages before the generic "Error:" catch-all.
const RULES: ReadonlyArray<readonly [RegExp, string]> = [
  [/File exists|already exists|Address already assigned/i, 'EEXIST'],
  [/table does not exist/i, 'ENOENT'],
  [/Cannot find device|No such device|does not exist/i, 'ENODEV'],
  [/No such process/i, 'ESRCH'],
  [/Address not found|Cannot assign requested address/i, 'EADDRNOTAVAIL'],
  [/Invalid "netns" value|No such file or directory|cannot stat/i, 'ENOENT'],
  [/Device or resource busy/i, 'EBUSY'],
  [/Operation not permitted|Permission denied/i, 'EPERM'],
  [/Network is unreachable|invalid gateway|No route to host/i, 'ENETUNREACH'],
  [/Unknown device type|not supported/i, 'EOPNOTSUPP'],
  [/Numerical result out of range/i, 'ERANGE'],
  [/Transport endpoint is not connected/i, 'ENOTCONN'],
  [/Address already in use/i, 'EADDRINUSE'],
  [/Resource temporarily unavailable|Try again/i, 'EAGAIN'],
  [/No buffer space/i, 'ENOBUFS'],
  [/Invalid argument|is unknown|is invalid|is wrong|garbage|expected|^Error: /im, 'EINVAL'],
];

/** Map a tool's stderr to an errno-like code ('EKERNEL' when nothing matches). */
export function classify(stderr: string): string {
  for (const [re, code] of RULES) if (re.test(stderr)) return code;
  return 'EKERNEL';
}

/** True for "it is not there" (link, address, route, neighbour, namespace): DEL treats it as done. */
export function isNotFound(err: unknown): boolean {
  return err instanceof KernelError && err.kind === 'not-found';
}

/** True when the object already exists (EEXIST): ADD-if-missing treats it as done. */
export function isExists(err: unknown): boolean {
  return err instanceof KernelError && err.code === 'EEXIST';
}

/** Await `p`; a not-found error resolves to `fallback` instead (idempotent delete). */
export async function ignoreNotFound<T>(p: Promise<T>, fallback?: T): Promise<T | undefined> {
  try {
    return await p;
  } catch (err) {
    if (isNotFound(err)) return fallback;
    throw err;
  }
}
