// Sends plugin requests the way dockerd 20.10's plugin client does (pkg/plugins/client.go):
// POST, Accept: application/vnd.docker.plugins.v1.2+json, no Content-Type, the body from Go's
// json.Encoder (JSON + "\n") or no body at all when the call has no arguments.

import { request } from 'node:http';

export interface PluginReply {
  status: number;
  contentType: string;
  /** Parsed JSON, or the raw text when it is not JSON. */
  body: any;
  raw: string;
}

/** POST `path` to a plugin on a unix socket (or tcp `{host, port}`) with an optional body. */
export function callPlugin(
  target: string | { host: string; port: number },
  path: string,
  body?: unknown,
  opts: { rawBody?: string; httpMethod?: string } = {},
): Promise<PluginReply> {
  const payload = opts.rawBody ?? (body === undefined ? '' : `${JSON.stringify(body)}\n`);
  const where = typeof target === 'string' ? { socketPath: target } : { host: target.host, port: target.port };
  return new Promise((resolve, reject) => {
    const req = request(
      {
        ...where,
        path,
        method: opts.httpMethod ?? 'POST',
        headers: {
          Host: 'plugin',
          'User-Agent': 'Go-http-client/1.1',
          Accept: 'application/vnd.docker.plugins.v1.2+json',
          'Accept-Encoding': 'gzip',
          'Content-Length': Buffer.byteLength(payload),
        },
        timeout: 5000,
      },
      (res) => {
        let raw = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (raw += d));
        res.on('end', () => {
          let parsed: unknown = raw;
          try {
            parsed = JSON.parse(raw);
          } catch {
            // leave raw text
          }
          resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), body: parsed, raw });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`plugin call ${path} timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}
