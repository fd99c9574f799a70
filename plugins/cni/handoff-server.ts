// The daemon side of the CNI hand-off (POST /v1/cni): run an executable's invocation with
// the daemon's handlers, validated exactly as the executable itself would validate it.
import { parseEnv } from './env.js';
import { CniError, ErrorCode, toCniError } from './errors.js';
import { cniVars, type ExecReply, type HandOffReply, type HandOffRequest } from './handoff.js';
import { dispatch, loadHandlers, parseRequest, runCni, type PluginSpec } from './skel.js';

/** HTTP status for a CNI code (the body carries the exact code). */
export function httpStatus(code: number): number {
  if (code === ErrorCode.TryAgainLater || code === ErrorCode.PluginNotAvailable || code === ErrorCode.LimitedConnectivity) return 503;
  if (code === ErrorCode.PoolExhausted || code === ErrorCode.AlreadyTaken || code === ErrorCode.InterfaceExists) return 409;
  if (code === ErrorCode.Internal || code === ErrorCode.KernelRefused || code === ErrorCode.IoFailure) return 500;
  return 400;
}

/**
 * Daemon side of POST /v1/cni: validate the body, find the plugin's spec, run it exactly
 * as the executable would, and build the reply (HTTP status + HandOffReply).
 */
export async function serveHandOff(
  body: unknown,
  specFor: (plugin: string) => PluginSpec | undefined,
): Promise<{ status: number; body: HandOffReply | ExecReply }> {
  if ((body as Partial<HandOffRequest> | null)?.reply === 'exec') return serveExec(body as Partial<HandOffRequest>, specFor);
  try {
    const b = body as Partial<HandOffRequest> | null;
    if (typeof b?.plugin !== 'string' || typeof b.stdin !== 'string' || typeof b.env !== 'object' || b.env === null) {
      throw new CniError(ErrorCode.DecodingFailure, 'hand-off body must be {plugin, env, stdin}');
    }
    const spec = specFor(b.plugin);
    if (!spec) throw new CniError(ErrorCode.InvalidConfig, `unknown plugin ${JSON.stringify(b.plugin)}`);
    const env = parseEnv(cniVars(b.env as NodeJS.ProcessEnv));
    if (env.command === 'VERSION') throw new CniError(ErrorCode.InvalidEnvironment, 'VERSION is answered by the executable');
    const req = parseRequest(env, b.stdin, spec);
    const result = await dispatch(req, await loadHandlers(spec));
    return { status: 200, body: result === undefined ? {} : { result } };
  } catch (err) {
    const e = toCniError(err);
    const error: { code: number; msg: string; details?: string } = { code: e.code, msg: e.msg };
    if (e.details !== undefined) error.details = e.details;
    return { status: httpStatus(e.code), body: { error } };
  }
}

/**
 * `reply: "exec"` (the compiled launcher, bin/launcher/): run the invocation through the same
 * runCni as the Node executable and answer what that process would print and exit with, so
 * the launcher needs no version conversion of its own. The own-netns check is the launcher's
 * (the daemon runs in another namespace); a plugin unknown here is 404 (not handled).
 */
async function serveExec(b: Partial<HandOffRequest>, specFor: (plugin: string) => PluginSpec | undefined): Promise<{ status: number; body: ExecReply | HandOffReply }> {
  const spec = typeof b.plugin === 'string' ? specFor(b.plugin) : undefined;
  if (!spec || typeof b.stdin !== 'string' || typeof b.env !== 'object' || b.env === null) {
    return { status: 404, body: { error: { code: ErrorCode.InvalidConfig, msg: 'hand-off body must be {plugin, env, stdin} naming a plugin of this daemon' } } };
  }
  let stdout = '';
  let stderr = '';
  const stdin = b.stdin;
  const exitCode = await runCni(spec, {
    env: cniVars(b.env as NodeJS.ProcessEnv),
    readStdin: async () => stdin,
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    isOwnNetns: async () => false,
  });
  return { status: 200, body: { exitCode, stdout, stderr } };
}
