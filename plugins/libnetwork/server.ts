// The Docker remote plugin HTTP server: one express app per plugin name (network drivers and
// the IPAM driver), served on unix sockets in the plugin dir or on loopback TCP ports.
// HTTP only: the driver and IPAM logic live behind the backend interfaces (backend.ts).

import { randomBytes } from 'node:crypto';
import { createServer, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import express, { type NextFunction, type Request, type Response } from 'express';
import {
  IPAM_METHODS,
  NETWORK_METHODS,
  PLUGIN_MEDIA_TYPE,
  type ActivateResponse,
  type IpamErrorResponse,
  type NetworkErrorResponse,
  type PluginRole,
} from './api.js';
import type { IpamBackend, Logger, NetworkDriverBackend, RequestContext } from './backend.js';
import { codeOf, kindOf, messageOf, PluginError, type ErrorKind } from './errors.js';
import { IPAM_NOT_FOUND_POLICY, ipamHandlers } from './ipam-routes.js';
import { listenTcp, listenUnix, validatePluginName, type Listener } from './listeners.js';
import { NETWORK_NOT_FOUND_POLICY, networkHandlers, type MethodHandler, type NotFoundPolicy } from './network-routes.js';

/** What one plugin name serves. */
export interface PluginRoles {
  network?: NetworkDriverBackend;
  ipam?: IpamBackend;
}

export interface PluginServerOptions {
  /** Unix mode: sockets `<pluginDir>/<name>.sock` (created when missing), e.g. /run/docker/plugins. */
  pluginDir?: string;
  /** Network drivers by plugin name (e.g. tsbridge, tshost, tsoverlay). */
  drivers: Record<string, NetworkDriverBackend>;
  /** The IPAM driver (e.g. name "tsipam"); may share a name with a driver. */
  ipam?: { name: string; backend: IpamBackend };
  log?: Logger;
  /**
   * TCP mode instead of unix sockets: one loopback port per plugin name (`ports[name]`, 0 or
   * absent = any free port), and with `specDir` a `<name>.spec` file holding `tcp://host:port`.
   * Use it when several engines in different network namespaces share one spec file: each
   * engine dials the port inside its own namespace, i.e. its own plugin instance.
   */
  tcp?: { host?: string; ports?: Record<string, number>; specDir?: string };
  /** Unix socket mode (default 0o660) and owner (default root:root when running as root). */
  socketMode?: number;
  socketOwner?: { uid: number; gid: number };
}

export interface PluginServer {
  /** Plugin name → the URL it is served on (`unix:///…/name.sock` or `tcp://127.0.0.1:port`). */
  readonly endpoints: Readonly<Record<string, string>>;
  /** Stop every listener and remove the sockets (and spec files) it created. */
  close(): Promise<void>;
}

/** HTTP status per error kind. 404 is also the protocol's "method not implemented". */
const STATUS: Readonly<Record<ErrorKind, number>> = {
  'bad-request': 400,
  'not-found': 404,
  conflict: 409,
  unavailable: 503,
  internal: 500,
};

/**
 * The engine reads a 404 from these methods as "not implemented" and carries on silently
 * (libnetwork drivers/remote ProgramExternalConnectivity), so a backend's not-found must not
 * become a 404 there.
 */
const NO_404: ReadonlySet<string> = new Set(['NetworkDriver.ProgramExternalConnectivity', 'NetworkDriver.RevokeExternalConnectivity']);

const NOOP_LOG: Logger = { debug() {}, info() {}, warn() {}, error() {} };

function errorBody(role: PluginRole | undefined, message: string): NetworkErrorResponse | IpamErrorResponse {
  // IPAM: the engine reads `Error` from 200 replies but `Err` from non-200 ones; send both.
  return role === 'IpamDriver' ? { Error: message, Err: message } : { Err: message };
}

function roleOfPath(path: string): PluginRole | undefined {
  if (path.startsWith('/IpamDriver.')) return 'IpamDriver';
  if (path.startsWith('/NetworkDriver.')) return 'NetworkDriver';
  return undefined;
}

function reply(res: Response, status: number, body: object): void {
  res.status(status).type(PLUGIN_MEDIA_TYPE).send(JSON.stringify(body));
}

interface Route {
  role: PluginRole;
  method: string;
  handler: MethodHandler;
  notFound: NotFoundPolicy;
}

function routeHandler(plugin: string, route: Route, log: Logger) {
  const full = `${route.role}.${route.method}`;
  return async (req: Request, res: Response): Promise<void> => {
    const requestId = randomBytes(4).toString('hex');
    const started = process.hrtime.bigint();
    const ctx: RequestContext = { requestId, plugin, log };
    const fields = () => ({ requestId, plugin, method: full, ms: Number(process.hrtime.bigint() - started) / 1e6 });
    const body: unknown = req.body ?? {};
    try {
      if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        throw new PluginError('invalid-body', 'bad-request', 'request body must be a JSON object');
      }
      const out = await route.handler(body as Record<string, unknown>, ctx);
      log.debug({ ...fields(), status: 200 }, 'plugin call');
      reply(res, 200, out);
    } catch (err) {
      const kind = kindOf(err);
      if (kind === 'not-found' && route.notFound !== 'error') {
        log.info({ ...fields(), status: 200, err: messageOf(err) }, 'not found: answered as success (idempotent)');
        reply(res, 200, route.notFound === 'empty-info' ? { Value: {} } : {});
        return;
      }
      const status = kind === 'not-found' && NO_404.has(full) ? 500 : STATUS[kind];
      const level = status >= 500 ? 'error' : 'warn';
      log[level]({ ...fields(), status, code: codeOf(err), kind, err: messageOf(err) }, 'plugin call failed');
      reply(res, status, errorBody(route.role, messageOf(err)));
    }
  };
}

function routesOf(roles: PluginRoles): Route[] {
  const routes: Route[] = [];
  if (roles.network) {
    const table = networkHandlers(roles.network);
    for (const method of NETWORK_METHODS) {
      routes.push({ role: 'NetworkDriver', method, handler: table[method], notFound: NETWORK_NOT_FOUND_POLICY[method] ?? 'error' });
    }
  }
  if (roles.ipam) {
    const table = ipamHandlers(roles.ipam);
    for (const method of IPAM_METHODS) {
      routes.push({ role: 'IpamDriver', method, handler: table[method], notFound: IPAM_NOT_FOUND_POLICY[method] ?? 'error' });
    }
  }
  return routes;
}

/**
 * The express app of one plugin name. Docker sends no Content-Type and empty bodies for
 * Activate/GetCapabilities/GetDefaultAddressSpaces, so every body is parsed as (optional) JSON.
 */
export function createPluginApp(plugin: string, roles: PluginRoles, log: Logger = NOOP_LOG): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.use(express.json({ type: () => true, limit: '1mb' }));
  const implementsList: PluginRole[] = [];
  if (roles.network) implementsList.push('NetworkDriver');
  if (roles.ipam) implementsList.push('IpamDriver');
  app.post('/Plugin.Activate', (_req, res) => {
    const manifest: ActivateResponse = { Implements: implementsList };
    log.debug({ plugin, method: 'Plugin.Activate', status: 200 }, 'plugin activated');
    reply(res, 200, manifest);
  });
  for (const route of routesOf(roles)) app.post(`/${route.role}.${route.method}`, routeHandler(plugin, route, log));
  app.use((req: Request, res: Response) => {
    log.info({ plugin, path: req.path, httpMethod: req.method }, 'unknown plugin method');
    reply(res, 404, errorBody(roleOfPath(req.path), `${plugin}: unknown method ${req.method} ${req.path}`));
  });
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    // Body parser failures (bad JSON, too large) land here, before any route.
    const status = (err as { status?: number }).status ?? 500;
    const message = `${plugin}: cannot read request ${req.path}: ${messageOf(err)}`;
    log.warn({ plugin, path: req.path, status, err: messageOf(err) }, 'bad plugin request');
    reply(res, status >= 400 && status < 600 ? status : 500, errorBody(roleOfPath(req.path), message));
  });
  return app;
}

/**
 * Requests node's HTTP parser refuses before express sees them (headers over 16 KiB, malformed
 * request lines) would get node's bare text reply; answer them in the protocol's JSON shape.
 */
function onClientError(roles: PluginRoles, log: Logger) {
  return (err: NodeJS.ErrnoException, socket: Duplex): void => {
    if (!socket.writable || err.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
    const message = `bad HTTP request: ${err.code ?? err.message}`;
    log.warn({ status, err: message }, 'bad plugin request');
    const body = JSON.stringify(roles.ipam ? { Error: message, Err: message } : { Err: message });
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: ${PLUGIN_MEDIA_TYPE}\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  };
}

function rolesByName(opts: PluginServerOptions): Map<string, PluginRoles> {
  const byName = new Map<string, PluginRoles>();
  for (const [name, backend] of Object.entries(opts.drivers)) byName.set(validatePluginName(name), { network: backend });
  if (opts.ipam) {
    const name = validatePluginName(opts.ipam.name);
    byName.set(name, { ...byName.get(name), ipam: opts.ipam.backend });
  }
  return byName;
}

/**
 * Start serving every driver and the IPAM driver. Unix mode (default): one socket per name in
 * `pluginDir`; a stale socket is replaced, a live one is an error. If any listener fails, the
 * ones already started are closed before the error is thrown.
 */
export async function startPluginServer(opts: PluginServerOptions): Promise<PluginServer> {
  const log = opts.log ?? NOOP_LOG;
  const byName = rolesByName(opts);
  if (!opts.tcp && !opts.pluginDir) throw new Error('startPluginServer: pluginDir is required without tcp');
  const listeners: Listener[] = [];
  const endpoints: Record<string, string> = {};
  try {
    for (const [name, roles] of byName) {
      const server = createServer(createPluginApp(name, roles, log));
      server.on('clientError', onClientError(roles, log));
      const listener = opts.tcp
        ? await listenTcp(server, { name, host: opts.tcp.host, port: opts.tcp.ports?.[name], specDir: opts.tcp.specDir })
        : await listenUnix(server, { dir: opts.pluginDir as string, name, mode: opts.socketMode, owner: opts.socketOwner });
      listeners.push(listener);
      endpoints[name] = listener.url;
      log.info({ plugin: name, url: listener.url }, 'plugin listening');
    }
  } catch (err) {
    await Promise.all(listeners.map((l) => l.close()));
    throw err;
  }
  let closed: Promise<void> | undefined;
  return {
    endpoints,
    close: () => (closed ??= Promise.all(listeners.map((l) => l.close())).then(() => undefined)),
  };
}
