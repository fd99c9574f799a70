// The daemon's local web server on the metrics address: /metrics (Prometheus text), /api/topology
// (JSON), /api/events (Server-Sent Events from a store watch) and / (the topology page). Read-only:
// only GET and HEAD are served; it binds to the configured address alone.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Store } from '../../store/types.js';
import { TopologyEvents } from './events.js';
import { topologyPage } from './page.js';
import { readTopology } from './topology.js';

/** The subset of pino the server uses. */
export interface WebLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface WebServerOptions {
  /** Address and port to bind (port 0: any free port; see `address`). */
  listen: { host: string; port: number };
  store: Store;
  /** Served at /metrics. */
  registry: Registry;
  log: WebLog;
}

export interface WebServer {
  /** The bound address (the real port when 0 was asked for). */
  readonly address: { host: string; port: number };
  /** Stop listening, end event streams and open connections. */
  close(): Promise<void>;
}

/** Raised when the server cannot bind (address in use, not local, …). */
export class WebServerError extends Error {
  readonly kind = 'unavailable';
  constructor(
    readonly code: 'listen-failed',
    message: string,
    readonly retryable: boolean,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

// The page carries its own script and style inline and talks only to this origin.
const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:",
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-store',
};

function send(res: ServerResponse, status: number, type: string, body: string, head: boolean): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  res.end(head ? undefined : body);
}

function sendError(res: ServerResponse, err: unknown): void {
  const e = err as { code?: unknown; kind?: unknown; message?: string };
  const status = e.kind === 'unavailable' ? 503 : 500;
  if (res.headersSent) return void res.end();
  send(res, status, 'application/json', JSON.stringify({ error: e.message ?? String(err), code: typeof e.code === 'string' ? e.code : 'internal' }), false);
}

/** Start serving; resolves once listening. */
export async function startWebServer(opts: WebServerOptions): Promise<WebServer> {
  const events = new TopologyEvents(opts.store, opts.log);
  const page = topologyPage();
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const head = req.method === 'HEAD';
    if (req.method !== 'GET' && !head) {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    const path = new URL(req.url ?? '/', 'http://local').pathname;
    switch (path) {
      case '/':
        res.writeHead(200, PAGE_HEADERS).end(head ? undefined : page);
        return;
      case '/metrics':
        return send(res, 200, opts.registry.contentType, await opts.registry.metrics(), head);
      case '/api/topology':
        return send(res, 200, 'application/json', JSON.stringify(await readTopology(opts.store)), head);
      case '/api/events':
        return head ? send(res, 200, 'text/event-stream', '', true) : events.subscribe(res);
      default:
        return send(res, 404, 'text/plain', 'not found\n', head);
    }
  };
  const server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      opts.log.warn({ err: (err as Error).message, url: req.url }, 'web request failed');
      sendError(res, err);
    });
  });
  await listen(server, opts.listen);
  const bound = server.address() as AddressInfo;
  const address = { host: bound.address, port: bound.port };
  opts.log.info({ address: `${address.host}:${address.port}` }, 'metrics and topology page listening');
  if (!isLoopback(address.host)) opts.log.warn({ address: address.host }, 'metrics and topology page are served without authentication on a non-loopback address');
  return {
    address,
    close: async () => {
      await events.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

function isLoopback(host: string): boolean {
  return host === '::1' || host.startsWith('127.') || host === '::ffff:127.0.0.1';
}

function listen(server: Server, at: { host: string; port: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const retryable = err.code === 'EADDRINUSE';
      reject(new WebServerError('listen-failed', `cannot listen on ${at.host}:${at.port}: ${err.code ?? err.message}`, retryable, { cause: err }));
    };
    server.once('error', onError);
    // exclusive: never share the port with another process's cluster workers.
    server.listen({ host: at.host, port: at.port, exclusive: true }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}
