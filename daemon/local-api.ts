// The daemon's local HTTP API on a unix socket (default /run/tsoverlay/tsoverlay.sock):
// the CLI and the CNI executables talk to the running daemon through it. Root only (0600).
import express, { type Request, type Response, type NextFunction } from 'express';
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { dirname } from 'node:path';
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
  app.use((_req: Request, res: Response) => {
    res.status(404).json({ code: 'not-found', message: 'unknown API path' });
  });
  app.use((err: Error, _req: Request, res: Response, _next: NextFunction) => {
    opts.log.error({ err }, 'local API request failed');
    res.status(500).json({ code: 'internal', message: err.message });
  });

  mkdirSync(dirname(opts.socket), { recursive: true, mode: 0o755 });
  rmSync(opts.socket, { force: true }); // a stale socket from a killed daemon
  const server: Server = createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.socket, () => resolve());
  });
  chmodSync(opts.socket, 0o600);
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        rmSync(opts.socket, { force: true });
      }),
  };
}
