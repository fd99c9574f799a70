// The README's walkthrough, run for real (examples/walkthrough/): a host namespace with its own
// dockerd, our daemon, the reader's commands. Checks what a reader would see at each step — the
// network in `network ls`, the endpoint, the metric, the page listing the container (headless
// Chromium), `doctor --json` all ok and traffic really flowing through dockerd's FORWARD DROP —
// and that README.md shows these very commands with these outputs (ids, times and figures aside).
// A second run with the nft firewall backend checks doctor's verdict there too. Serial: each run
// is a dockerd, a daemon and Chromium on a shared 2-core machine (~40 s each).
import test from 'ava';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { BEGIN, END, markdown, SCREENSHOT } from '../../examples/walkthrough/capture.js';
import { runWalkthrough, WALK, type Step } from '../../examples/walkthrough/walkthrough.js';
import { sample } from '../ops/fixtures.js';
import { ROOT, rootState } from './run-example.js';

const ARTIFACTS = join(ROOT, '.test-artifacts');

/**
 * What may differ between two runs: ids, times, durations, bridge names, and which of the
 * daemon's other log lines fell between the ones shown (each log line is reduced to its message).
 */
function normalize(text: string): string {
  return text
    .split('\n')
    .filter((l) => l !== '…')
    .map((l) => (l.startsWith('{"level"') ? `log: ${(JSON.parse(l) as { msg: string }).msg}` : l))
    .join('\n')
    .replace(/\b[0-9a-f]{12,64}\b/g, 'ID')
    .replace(/\btsbr-[0-9a-f]{8}\b/g, 'tsbr-ID')
    .replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, 'TIME')
    .replace(/\d+(\.\d+)? ms/g, 'N ms');
}

test.serial('the walkthrough: network, endpoint, metric, page and a green doctor, as the README shows them', async (t) => {
  t.timeout(115_000);
  const before = await rootState();
  mkdirSync(ARTIFACTS, { recursive: true });
  const png = join(ARTIFACTS, 'walkthrough-topology.png');
  const run = runWalkthrough({ screenshot: png, log: (l) => t.log(l) });
  t.teardown(() => run.cleanup());
  const r = await run.done;
  const step = (id: string): Step => r.steps.find((s) => s.id === id)!;
  for (const s of r.steps) t.is(s.code, 0, `${s.shown.join(' ')}:\n${s.output}`);

  const netId = step('network-create').output.trim();
  const ctrId = step('docker-run').output.trim();
  t.regex(netId, /^[0-9a-f]{64}$/);
  t.regex(ctrId, /^[0-9a-f]{64}$/);
  t.is(step('curl-port').output, ctrId.slice(0, 12), 'the published port answers with the container\'s hostname');

  const netRow = step('network-ls').output.split('\n').find((l) => l.startsWith(netId.slice(0, 12)))?.split(/\s{2,}/);
  t.deepEqual(netRow, [netId.slice(0, 12), WALK.network, 'bridge', 'local', WALK.subnet, '10.20.0.1', `tsbr-${netId.slice(0, 8)}`, 'false', '1']);
  const epRow = step('endpoint-ls').output.split('\n')[1]?.split(/\s{2,}/) ?? [];
  t.is(epRow[1], netId.slice(0, 12));
  t.is(epRow[2], WALK.hostname);
  t.is(epRow[3], ctrId.slice(0, 12));
  t.is(epRow[4], `${WALK.container},${ctrId.slice(0, 12)}`);
  t.regex(epRow[5] ?? '', /^10\.20\.0\.\d+\/24$/);
  t.is(epRow[7], `0.0.0.0:${WALK.publish}/tcp`.replace(':80/', '->80/'));

  t.is(sample(step('metrics').output, 'tsoverlay_network_endpoints', { network: netId, name: WALK.network, driver: 'bridge' }), 1);
  t.is(sample(step('metrics').output, 'tsoverlay_ipam_pool_allocations', { pool: `local/${WALK.subnet}`, kind: 'endpoint' }), 1);

  t.is(r.page.status, 'live');
  t.regex(r.page.summary, /^1\/1 hosts alive · 1 networks · 1 endpoints/);
  t.is(r.page.endpoints.length, 1);
  t.regex(r.page.endpoints[0]!, new RegExp(`^${WALK.container}, ${ctrId.slice(0, 12)}`));
  t.regex(r.page.endpoints[0]!, /0\.0\.0\.0:8080 → 80\/tcp/);
  t.regex(r.page.hosts[0]!, new RegExp(`^${WALK.hostname}\\nalive`));
  t.true(statSync(png).size > 5_000, 'a screenshot was saved');

  const failed = r.doctorJson.checks.filter((c) => !c.ok);
  t.deepEqual(failed, [], 'doctor is green');
  t.true(r.doctorJson.checks.length >= 10);
  for (const c of r.doctorJson.checks) t.deepEqual(Object.keys(c).sort(), ['detail', 'fix', 'name', 'ok']);
  t.regex(step('doctor').output, new RegExp(`^all ${r.doctorJson.checks.length} checks passed$`, 'm'));
  t.deepEqual(r.traffic, { containerToOutside: true, outsideToPublished: ctrId.slice(0, 12) }, 'what doctor calls ok does flow through dockerd\'s FORWARD DROP');

  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf(BEGIN), readme.indexOf(END) + END.length);
  t.true(section.startsWith(BEGIN) && section.endsWith(END), 'README.md has the walkthrough section');
  t.is(normalize(section), normalize(markdown(r.steps)), 'README.md shows what these commands print now: run `sudo npx tsx examples/walkthrough/capture.ts --write`');
  t.true(existsSync(join(ROOT, SCREENSHOT)), `${SCREENSHOT} is committed`);

  const mine = `tsot-${process.pid.toString(36)}-`;
  t.deepEqual(readdirSync('/run/netns').filter((n) => n.startsWith(mine) && n.includes('-wt-')), [], 'no namespace left');
  t.is(await rootState(), before, 'the root namespace is unchanged');
});

test.serial('with --firewall-backend nft: doctor recognises the nft relay past dockerd\'s FORWARD DROP, and traffic flows', async (t) => {
  t.timeout(115_000);
  mkdirSync(ARTIFACTS, { recursive: true });
  const run = runWalkthrough({ screenshot: join(ARTIFACTS, 'walkthrough-topology-nft.png'), daemonFlags: ['--firewall-backend', 'nft'] });
  t.teardown(() => run.cleanup());
  const r = await run.done;
  for (const s of r.steps) t.is(s.code, 0, `${s.shown.join(' ')}:\n${s.output}`);
  t.deepEqual(r.doctorJson.checks.filter((c) => !c.ok), [], 'doctor is green');
  t.regex(r.doctorJson.checks.find((c) => c.name === 'forward-policy')!.detail, /DROP \(dockerd\) and tsoverlay's nft relay rule/);
  const ctr = r.steps.find((s) => s.id === 'docker-run')!.output.trim().slice(0, 12);
  t.deepEqual(r.traffic, { containerToOutside: true, outsideToPublished: ctr });
});
