// Throw-away certificates for TLS etcd tests: a CA, a server cert for 127.0.0.1 and a client
// cert, made with the openssl CLI (argument arrays, no shell) into a directory the caller owns.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from './exec.js';

export interface TlsFiles {
  caFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  clientCertFile: string;
  clientKeyFile: string;
}

const KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function leaf(dir: string, name: string, cn: string, ext: string): Promise<[string, string]> {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const crt = join(dir, `${name}.crt`);
  const extFile = join(dir, `${name}.ext`);
  writeFileSync(extFile, ext);
  await run('openssl', ['req', ...KEY, '-keyout', key, '-out', csr, '-subj', `/CN=${cn}`]);
  await run('openssl', ['x509', '-req', '-in', csr, '-CA', join(dir, 'ca.crt'), '-CAkey', join(dir, 'ca.key'), '-CAcreateserial', '-out', crt, '-days', '2', '-extfile', extFile]);
  return [crt, key];
}

/** Create a CA plus server (SAN IP 127.0.0.1) and client certificates under dir. */
export async function makeTlsFiles(dir: string): Promise<TlsFiles> {
  await run('openssl', ['req', '-x509', ...KEY, '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.crt'), '-days', '2', '-subj', '/CN=tsot-test-ca']);
  const [serverCertFile, serverKeyFile] = await leaf(dir, 'server', '127.0.0.1', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
  const [clientCertFile, clientKeyFile] = await leaf(dir, 'client', 'root', 'extendedKeyUsage=clientAuth\n');
  return { caFile: join(dir, 'ca.crt'), serverCertFile, serverKeyFile, clientCertFile, clientKeyFile };
}
