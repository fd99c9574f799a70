// The server suite again over node:dgram (TSOVERLAY_DNS_UDP=dgram): the default run uses the
// native batched path when it is built, and both paths must behave the same.
import test from 'ava';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ava = fileURLToPath(new URL('../../node_modules/ava/entrypoints/cli.mjs', import.meta.url));

// (The slow-TCP-client test is left out: it has nothing of UDP and is timing-sensitive under load.)
test('test/dns/server.test.ts passes with the UDP listener forced to dgram', async (t) => {
  const child = spawn(process.execPath, [ava, '--tap', '--match', '!*CVE-2024-8418*', 'test/dns/server.test.ts'], {
    env: { ...process.env, TSOVERLAY_DNS_UDP: 'dgram' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 100_000);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearTimeout(timer);
  const ok = out.match(/^ok \d+/gm)?.length ?? 0;
  const failed = out.match(/^not ok .*$/gm) ?? [];
  t.is(code, 0, `${failed.join('\n')}\n${out.slice(-3000)}`);
  t.true(ok >= 6, `${ok} tests passed over dgram`);
  t.notRegex(out, /^not ok/m);
});
