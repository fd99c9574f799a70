// A small read-only client of the Docker engine API (unix socket or TCP), for what the plugin
// protocol never carries: container names and aliases, and which endpoints the engine still has.
// Limits: GET only, unversioned paths (the engine's current API), no TLS.
import { request } from 'node:http';
import { PluginError } from '../errors.js';

/** One network as `GET /networks/{id}` shows it (the fields we read). */
export interface EngineNetwork {
  Id: string;
  Name: string;
  Driver: string;
  IPAM: { Driver: string; Config: Array<{ Subnet?: string; IPRange?: string; Gateway?: string; AuxiliaryAddresses?: Record<string, string> | null }> | null };
  /** Container id → its endpoint on this network (inspect only; the list leaves it empty). */
  Containers?: Record<string, { Name: string; EndpointID: string; MacAddress?: string; IPv4Address?: string; IPv6Address?: string }> | null;
}

/** One container as `GET /containers/{id}/json` shows it (the fields we read). */
export interface EngineContainer {
  Id: string;
  /** "/name". */
  Name: string;
  Config?: { Hostname?: string };
  NetworkSettings?: { Networks?: Record<string, { NetworkID: string; EndpointID: string; Aliases?: string[] | null }> | null };
}

type Target = { socketPath: string } | { host: string; port: number };

/** Parse `unix:///path` or `tcp://host:port` (the daemon's --docker-host). */
export function parseDockerHost(url: string): Target {
  if (url.startsWith('unix://')) {
    const socketPath = url.slice('unix://'.length);
    if (!socketPath.startsWith('/')) throw new PluginError('invalid-docker-host', 'bad-request', `docker host ${url}: expected unix:///absolute/path`);
    return { socketPath };
  }
  const m = /^tcp:\/\/(\[[^\]]+\]|[^:/]+):(\d{1,5})\/?$/.exec(url);
  if (m) return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
  throw new PluginError('invalid-docker-host', 'bad-request', `docker host ${url}: expected unix:///PATH or tcp://HOST:PORT`);
}

export class EngineClient {
  private readonly target: Target;

  constructor(
    readonly url: string,
    private readonly timeoutMs = 5_000,
  ) {
    this.target = parseDockerHost(url);
  }

  /** Every network (without Containers). */
  networks(): Promise<EngineNetwork[]> {
    return this.get<EngineNetwork[]>('/networks').then((n) => n ?? []);
  }

  /** One network with its Containers; undefined when the engine has none with that id. */
  network(id: string): Promise<EngineNetwork | undefined> {
    return this.get<EngineNetwork>(`/networks/${encodeURIComponent(id)}`);
  }

  container(id: string): Promise<EngineContainer | undefined> {
    return this.get<EngineContainer>(`/containers/${encodeURIComponent(id)}/json`);
  }

  /** GET and parse JSON; undefined on 404; 'unavailable' (retryable) when the engine cannot be reached. */
  get<T>(path: string): Promise<T | undefined> {
    return new Promise((resolve, reject) => {
      const unavailable = (why: string) => new PluginError('engine-unavailable', 'unavailable', `docker engine ${this.url}: GET ${path}: ${why}`, true);
      const req = request({ ...this.target, path, method: 'GET', timeout: this.timeoutMs, headers: { Host: 'docker' } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('error', (err) => reject(unavailable(err.message)));
        res.on('end', () => {
          if (res.statusCode === 404) return resolve(undefined);
          if (res.statusCode !== 200) return reject(unavailable(`status ${res.statusCode}: ${body.slice(0, 200)}`));
          try {
            resolve(JSON.parse(body) as T);
          } catch {
            reject(unavailable('reply is not JSON'));
          }
        });
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)));
      req.on('error', (err) => reject(unavailable(err.message)));
      req.end();
    });
  }
}
