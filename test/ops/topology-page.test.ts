// The topology page in headless Chromium (Debian's, driven by playwright-core): it shows the
// endpoints the store holds and follows a removal live, without a reload. A screenshot is kept in
// .test-artifacts/ for a person to look at.
import test from 'ava';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { Metrics, startWebServer } from '../../daemon/observability/index.js';
import { RecordStore } from '../../plugins/drivers/common/record-store.js';
import { endpoint, seedCluster, tempStore } from './fixtures.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(process.cwd(), '.test-artifacts');
// The flags this machine needs: no sandbox as root, and no background connections (the network is closed).
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

test('the page renders hosts, networks, endpoints and ports, and follows changes live', async (t) => {
  const tmp = await tempStore();
  t.teardown(() => tmp.cleanup());
  await seedCluster(tmp.store);
  const recs = new RecordStore(tmp.store);
  await recs.createEndpoint(endpoint('cache1', 'net-db', '10.78.0.20/24', { hostId: 'h2', names: ['cache'], aliases: ['redis'], ports: [{ proto: 'udp', hostIp: '127.0.0.1', hostPort: 5353, containerIp: '10.78.0.20', containerPort: 53 }] }));
  const web = await startWebServer({ listen: { host: '127.0.0.1', port: 0 }, store: tmp.store, registry: new Metrics({ processMetrics: false }).registry, log: { info: () => {}, warn: () => {} } });
  t.teardown(() => web.close());

  const profile = mkdtempSync(join(tmpdir(), 'tso-chromium-'));
  t.teardown(() => rmSync(profile, { recursive: true, force: true }));
  // A persistent context is how Playwright takes a fresh --user-data-dir.
  const ctx = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1280, height: 720 }, timeout: 30_000 });
  t.teardown(() => ctx.close());
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  page.setDefaultTimeout(10_000);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));

  await page.goto(`http://127.0.0.1:${web.address.port}/`);
  await page.locator('#status.live').waitFor();
  const ep = (id: string) => page.locator(`[data-endpoint-id="${id}"]`);
  for (const id of ['web1', 'web2', 'web3', 'db1', 'cache1']) await ep(id).waitFor();
  t.is(await page.locator('[data-host-id]').count(), 2);
  t.is(await page.locator('[data-host-id="h2"] [data-endpoint-id="cache1"]').count(), 1);
  t.regex(await page.locator('[data-host-id="h1"] .badge').innerText(), /alive/);
  t.regex(await page.locator('[data-host-id="h2"] .badge').innerText(), /dead/);
  t.regex(await ep('web1').locator('.port').innerText(), /0\.0\.0\.0:8080 → 80\/tcp/);
  t.regex(await ep('cache1').innerText(), /cache, redis/);
  t.regex(await page.locator('#summary').innerText(), /1\/2 hosts alive · 2 networks · 5 endpoints/);

  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, 'topology-page.png'), fullPage: true });

  // Live: a removal and an addition reach the page through /api/events, with no reload.
  await page.evaluate(() => ((globalThis as unknown as { marker: number }).marker = 42));
  await recs.deleteEndpoint('net-web', 'web2');
  await ep('web2').waitFor({ state: 'detached' });
  await recs.createEndpoint(endpoint('web4', 'net-web', '10.77.0.44/24'));
  await ep('web4').waitFor();
  t.is(await page.evaluate(() => (globalThis as unknown as { marker?: number }).marker), 42, 'the page was not reloaded');
  t.is(await page.locator('[data-endpoint-id]').count(), 5);
  await page.screenshot({ path: join(ARTIFACTS, 'topology-page-after.png'), fullPage: true });
  t.deepEqual(errors, []);
});
