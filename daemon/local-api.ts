// The daemon's local HTTP API on a unix socket (default /run/tsoverlay/tsoverlay.sock):
// the CLI and the CNI executables talk to the running daemon through it. Root only (0600,
// root-owned when run as root).
import express, { type Request, type Response, type NextFunction } from 'express';
import { createServer, type Server } from 'node:http';
import { listenUnixPath } from '../plugins/libnetwork/listeners.js';
import type { Logger } from './log.js';

/** What GET /v1/status answers. */
export interface DaemonStatus {
  hostId: string;
  advertise: string | null;
  store: string;
  version: string;
  pid: number;
  startedAt: string;
}

export interface LocalApiOptions {
  socket: string;
  status: () => DaemonStatus;
  log: Logger;
  /** POST /v1/cni: a CNI executable's invocation run by the daemon (plugins/cni/handoff.ts). */
  cni?: (body: unknown) => Promise<{ status: number; body: unknown }>;
  /** POST /v1/networks and DELETE /v1/networks/:ref (`tsoverlay network create|rm`, daemon/network-admin.ts). */
  networks?: NetworkAdminApi;
}

/** What the network routes call; both answer the network record. */
export interface NetworkAdminApi {
  create(body: unknown): Promise<unknown>;
  remove(ref: string): Promise<unknown>;
}

/** HTTP status of an error by its `kind`. */
const STATUS: Record<string, number> = { 'bad-request': 400, 'not-found': 404, conflict: 409, unavailable: 503 };

/** Answer with the record, or with an error's {code, kind, message} and the status of its kind. */
async function answer(res: Response, log: Logger, status: number, fn: () => Promise<unknown>): Promise<void> {
  try {
    res.status(status).json(await fn());
  } catch (err) {
    const e = err as { kind?: unknown; code?: unknown; message?: unknown; retryable?: unknown };
    const code = typeof e.kind === 'string' ? (STATUS[e.kind] ?? 500) : 500;
    if (code === 500) log.error({ err }, 'local API request failed');
    res.status(code).json({ code: typeof e.code === 'string' ? e.code : 'internal', kind: typeof e.kind === 'string' ? e.kind : 'internal', message: String(e.message ?? err), retryable: e.retryable === true });
  }
}

/** A started local API; close() stops listening and removes the socket file. */
export interface LocalApi {
  close(): Promise<void>;
}

export async function startLocalApi(opts: LocalApiOptions): Promise<LocalApi> {
  const app = express();
  app.use(express.json({ type: () => true, limit: '1mb' }));
  app.get('/v1/status', (_req: Request, res: Response) => {
    res.json(opts.status());
  });
  const cni = opts.cni;
  if (cni) {
    app.post('/v1/cni', async (req: Request, res: Response) => {
      const reply = await cni(req.body);
      res.status(reply.status).json(reply.body);
    });
  }
  const networks = opts.networks;
  if (networks) {
    app.post('/v1/networks', (req: Request, res: Response) => answer(res, opts.log, 201, () => networks.create(req.body)));
    app.delete('/v1/networks/:ref', (req: Request, res: Response) => answer(res, opts.log, 200, () => networks.remove(String(req.params.ref))));
  }
  app.use((_req: Request, res: Response) => {
    res.status(404).json({ code: 'not-found', message: 'unknown API path' });
  });
  app.use((err: Error & { status?: unknown; type?: unknown }, _req: Request, res: Response, _next: NextFunction) => {
    // body-parser's refusals (broken JSON, too large, bad charset) carry a 4xx status: the
    // client's mistake, answered as such with the parser's reason.
    const status = typeof err.status === 'number' && err.status >= 400 && err.status < 500 ? err.status : 500;
    if (status < 500) {
      const why = err.type === 'entity.parse.failed' ? `request body is not valid JSON: ${err.message}` : err.message;
      res.status(status).json({ code: 'bad-request', message: why });
      return;
    }
    opts.log.error({ err }, 'local API request failed');
    res.status(500).json({ code: 'internal', message: err.message });
  });

  const server: Server = createServer(app);
  // Bound privately and renamed into place with its mode (as the plugin sockets): nobody can
  // connect while it has the umask's permissions. A live socket there is refused.
  const listener = await listenUnixPath(server, opts.socket, { mode: 0o600 });
  return { close: () => listener.close() };
}
