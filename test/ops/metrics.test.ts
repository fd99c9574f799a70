// /metrics, /api/topology and /api/events over a real SQLite store holding records written
// through RecordStore and the IPAM, served on 127.0.0.1:0.
import test from 'ava';
import { instrumentStore, Metrics, registerStateGauges, startObservability, startWebServer } from '../../daemon/observability/index.js';
import { RecordStore } from '../../plugins/drivers/common/record-store.js';
import { keys } from '../../store/keys.js';
import { endpoint, sample, seedCluster, tempStore } from './fixtures.js';

const quiet = { info: () => {}, warn: () => {} };

test('gauges report endpoints per network, allocations and free addresses per pool, hosts alive', async (t) => {
  const tmp = await tempStore();
  t.teardown(() => tmp.cleanup());
  const { webPool, dbPool } = await seedCluster(tmp.store);
  const metrics = new Metrics();
  const store = instrumentStore(tmp.store, metrics.store);
  registerStateGauges(metrics.registry, store);
  const web = await startWebServer({ listen: { host: '127.0.0.1', port: 0 }, store, registry: metrics.registry, log: quiet });
  t.teardown(() => web.close());
  t.is(web.address.host, '127.0.0.1');
  const base = `http://127.0.0.1:${web.address.port}`;

  const res = await fetch(`${base}/metrics`);
  t.is(res.status, 200);
  t.regex(res.headers.get('content-type') ?? '', /text\/plain/);
  const text = await res.text();
  t.is(sample(text, 'tsoverlay_state_up'), 1);
  t.is(sample(text, 'tsoverlay_network_endpoints', { network: 'net-web', name: 'web' }), 3);
  t.is(sample(text, 'tsoverlay_network_endpoints', { network: 'net-db', name: 'db' }), 1);
  t.is(sample(text, 'tsoverlay_networks', { driver: 'bridge' }), 2);
  t.is(sample(text, 'tsoverlay_hosts', { alive: 'true' }), 1);
  t.is(sample(text, 'tsoverlay_hosts', { alive: 'false' }), 1);
  // web: 10.77.0.0/24 → 254 usable − gateway = 253; 3 endpoints allocated → 250 free.
  t.is(sample(text, 'tsoverlay_ipam_pool_capacity_addresses', { pool: webPool }), 253);
  t.is(sample(text, 'tsoverlay_ipam_pool_allocations', { pool: webPool, kind: 'endpoint' }), 3);
  t.is(sample(text, 'tsoverlay_ipam_pool_allocations', { pool: webPool, kind: 'gateway' }), 1);
  t.is(sample(text, 'tsoverlay_ipam_pool_free_addresses', { pool: webPool }), 250);
  // db: range 10.78.0.16/28 → 16 addresses (the gateway .1 is outside it); 2 taken → 14 free.
  t.is(sample(text, 'tsoverlay_ipam_pool_capacity_addresses', { pool: dbPool }), 16);
  t.is(sample(text, 'tsoverlay_ipam_pool_free_addresses', { pool: dbPool }), 14);
  t.truthy(sample(text, 'tsoverlay_process_resident_memory_bytes'));

  // A removed endpoint and a removed network disappear from the next scrape.
  await new RecordStore(store).deleteEndpoint('net-web', 'web2');
  await new RecordStore(store).deleteNetwork('net-db');
  const after = await (await fetch(`${base}/metrics`)).text();
  t.is(sample(after, 'tsoverlay_network_endpoints', { network: 'net-web' }), 2);
  t.is(sample(after, 'tsoverlay_network_endpoints', { network: 'net-db' }), undefined);
  // The first scrape's own reads went through the instrumented store (histograms are read at the
  // start of a scrape, so they show in the next one).
  t.true((sample(after, 'tsoverlay_store_request_duration_seconds_count', { op: 'range' }) ?? 0) >= 3);
});

test('recorders handed to other modules show up under tsoverlay_ names', async (t) => {
  const metrics = new Metrics({ processMetrics: false, defaultLabels: { host: 'h1' } });
  metrics.dns.query('udp');
  metrics.dns.query('tcp');
  metrics.dns.answer('NOERROR', 'local', 0.0004);
  metrics.dns.answer('NXDOMAIN', 'forwarded', 0.02);
  metrics.dns.forwarded();
  metrics.dns.error('upstream-timeout');
  metrics.proxy.sync(0.05, { nat: 12, filter: 30 });
  metrics.proxy.syncError('iptables-restore');
  metrics.reconcile.repaired('link', 2);
  metrics.reconcile.pass('bridge', 0.2, true);
  const text = await metrics.text();
  t.is(sample(text, 'tsoverlay_dns_queries_total', { transport: 'udp', host: 'h1' }), 1);
  t.is(sample(text, 'tsoverlay_dns_answers_total', { rcode: 'NXDOMAIN', source: 'forwarded' }), 1);
  t.is(sample(text, 'tsoverlay_dns_forwarded_total'), 1);
  t.is(sample(text, 'tsoverlay_dns_errors_total', { reason: 'upstream-timeout' }), 1);
  t.is(sample(text, 'tsoverlay_dns_request_duration_seconds_count', { source: 'local' }), 1);
  t.is(sample(text, 'tsoverlay_proxy_rules', { table: 'filter', family: '4' }), 30);
  t.is(sample(text, 'tsoverlay_proxy_sync_duration_seconds_count', { family: '4' }), 1);
  t.is(sample(text, 'tsoverlay_proxy_sync_errors_total', { reason: 'iptables-restore' }), 1);
  t.is(sample(text, 'tsoverlay_reconcile_repairs_total', { object: 'link' }), 2);
  t.is(sample(text, 'tsoverlay_reconcile_pass_duration_seconds_count', { component: 'bridge', result: 'ok' }), 1);
  // Two registries never share series (no global default registry).
  t.is(sample(await new Metrics({ processMetrics: false }).text(), 'tsoverlay_dns_forwarded_total'), 0);
});

test('the store wrapper times calls, counts errors by code and measures watch delay', async (t) => {
  const tmp = await tempStore();
  t.teardown(() => tmp.cleanup());
  const metrics = new Metrics({ processMetrics: false });
  const store = instrumentStore(tmp.store, metrics.store);
  const seen: number[] = [];
  const w = await store.watch(keys.endpoints(), (ev) => seen.push(ev.revision));
  const rev = await store.put(keys.endpoint('n1', 'e1'), '{}');
  await store.get(keys.endpoint('n1', 'e1'));
  await t.throwsAsync(store.put(keys.endpoint('n1', 'e2'), '{}', { lease: '424242' }), { message: /lease/ });
  for (let i = 0; i < 100 && !seen.includes(rev); i++) await new Promise((r) => setTimeout(r, 10));
  await w.cancel();
  t.true(seen.includes(rev));
  const text = await metrics.text();
  t.is(sample(text, 'tsoverlay_store_request_duration_seconds_count', { op: 'put' }), 2);
  t.is(sample(text, 'tsoverlay_store_request_duration_seconds_count', { op: 'get' }), 1);
  t.is(sample(text, 'tsoverlay_store_errors_total', { op: 'put', code: 'lease-lost' }), 1);
  t.is(sample(text, 'tsoverlay_store_watch_events_total', { prefix: 'endpoints' }), 1);
  t.is(sample(text, 'tsoverlay_store_watch_delay_seconds_count'), 1);
});

test('/api/topology lists hosts, networks, endpoints and ports; /api/events pushes changes', async (t) => {
  const tmp = await tempStore();
  t.teardown(() => tmp.cleanup());
  await seedCluster(tmp.store);
  const metrics = new Metrics({ processMetrics: false });
  const web = await startWebServer({ listen: { host: '127.0.0.1', port: 0 }, store: tmp.store, registry: metrics.registry, log: quiet });
  t.teardown(() => web.close());
  const base = `http://127.0.0.1:${web.address.port}`;
  const topo = (await (await fetch(`${base}/api/topology`)).json()) as any;
  t.deepEqual(topo.hosts.map((h: any) => [h.id, h.alive]), [['h1', true], ['h2', false]]);
  t.deepEqual(topo.networks.map((n: any) => n.name), ['db', 'web']);
  const web1 = topo.endpoints.find((e: any) => e.id === 'web1');
  t.like(web1.ports[0], { hostPort: 8080, containerPort: 80, proto: 'tcp' });
  t.regex(web1.addresses[0], /^10\.77\.0\.\d+\/24$/);

  const ctl = new AbortController();
  t.teardown(() => ctl.abort());
  const res = await fetch(`${base}/api/events`, { signal: ctl.signal });
  t.regex(res.headers.get('content-type') ?? '', /text\/event-stream/);
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  const until = async (re: RegExp) => {
    const deadline = Date.now() + 5000;
    while (!re.test(buf) && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
    }
    return re.test(buf);
  };
  t.true(await until(/event: hello/));
  await new RecordStore(tmp.store).createEndpoint(endpoint('web9', 'net-web', '10.77.0.99/24'));
  t.true(await until(/event: change\ndata: .*"area":"endpoints".*web9/));

  const page = await fetch(`${base}/`);
  t.regex(page.headers.get('content-security-policy') ?? '', /default-src 'none'/);
  t.regex(await page.text(), /<title>tsoverlay topology<\/title>/);
  t.is((await fetch(`${base}/nope`)).status, 404);
  t.is((await fetch(`${base}/metrics`, { method: 'POST' })).status, 405);
});

test('binding an address in use fails with a clear, retryable error', async (t) => {
  const tmp = await tempStore();
  t.teardown(() => tmp.cleanup());
  const registry = new Metrics({ processMetrics: false }).registry;
  const a = await startWebServer({ listen: { host: '127.0.0.1', port: 0 }, store: tmp.store, registry, log: quiet });
  t.teardown(() => a.close());
  const err = await t.throwsAsync(startWebServer({ listen: { host: '127.0.0.1', port: a.address.port }, store: tmp.store, registry, log: quiet }));
  t.like(err as object, { code: 'listen-failed', retryable: true });
  t.regex(err!.message, /EADDRINUSE/);
});

test('startObservability: the wrapped store is timed, scrapes read the plain store, close stops serving', async (t) => {
  const tmp = await tempStore();
  t.teardown(() => tmp.cleanup());
  await seedCluster(tmp.store);
  const warnings: string[] = [];
  const obs = await startObservability({ store: tmp.store, listen: { host: '127.0.0.1', port: 0 }, log: { info: () => {}, warn: (_o, m) => warnings.push(m) }, processMetrics: false });
  await obs.store.put(keys.endpoint('net-web', 'extra'), JSON.stringify(endpoint('extra', 'net-web', '10.77.0.50/24')));
  const url = `http://127.0.0.1:${obs.web!.address.port}/metrics`;
  const text = await (await fetch(url)).text();
  t.is(sample(text, 'tsoverlay_network_endpoints', { network: 'net-web' }), 4);
  t.is(sample(text, 'tsoverlay_store_request_duration_seconds_count', { op: 'put' }), 1);
  t.is(sample(await (await fetch(url)).text(), 'tsoverlay_store_request_duration_seconds_count', { op: 'range' }), undefined, 'scrape reads are not counted');
  t.deepEqual(warnings, []);
  await obs.close();
  await t.throwsAsync(fetch(url));
});
