// web + db with a link on a network where containers may not talk (the book's ch. 7.2 and 20.3:
// `--icc=false` and `--link db:db`): a real Docker engine uses tsoverlay's tsbridge driver; the
// link opens db's exposed port to web only, in one direction, until it is removed.
// Run: sudo npx tsx examples/links-icc/run.ts   (see README.md)
import { startDockerd } from '../../test/harness/docker.js';
import { startDaemon, tsoverlay, until } from '../lib/tsoverlay.js';
import { runScenario, type Scenario } from '../lib/scenario.js';

async function main(s: Scenario): Promise<void> {
  s.step('a host running dockerd and the tsoverlay daemon (serving the tsbridge and tsipam plugins)');
  const host = await s.netns('host');
  const engine = await startDockerd({ netns: host.path, extraArgs: ['--bridge=none'] });
  s.onCleanup(() => engine.stop());
  const d = await startDaemon(s, host, { hostId: 'docker1', pluginDir: engine.pluginDir, extraArgs: ['--docker-host', `unix://${engine.socket}`] });
  await engine.importBusybox();
  const docker = (args: string[]) => engine.docker(args);
  const exec = (ctr: string, args: string[]) => engine.tryDocker(['exec', ctr, ...args]);
  /** `wget` from one container to another by name: the body, or undefined when nothing answered. */
  const get = async (from: string, url: string) => {
    const r = await exec(from, ['timeout', '3', 'wget', '-q', '-O', '-', url]);
    return r.code === 0 ? r.stdout.trim() : undefined;
  };

  s.step('docker network create -d tsbridge -o com.docker.network.bridge.enable_icc=false --subnet 10.70.0.0/24 appnet');
  const net = (await docker(['network', 'create', '-d', 'tsbridge', '--subnet', '10.70.0.0/24', '-o', 'com.docker.network.bridge.enable_icc=false', 'appnet'])).trim();
  s.say(net);

  s.step('db (a server on its exposed port 5432) and web (exposing 80)');
  const server = (name: string, port: number) => ['run', '-d', '--name', name, '--hostname', name, '--net', 'appnet', '--expose', String(port), 'busybox:local', 'httpd', '-f', '-p', String(port), '-h', '/etc'];
  await docker(server('db', 5432));
  await docker(server('web', 80));
  // The daemon learns the container names from the engine just after each join.
  const named = await until(async () => {
    const eps = JSON.parse(await tsoverlay(['endpoint', 'ls', '--store', d.store, '--network', net, '--json'])) as { names: string[]; addresses: string[] }[];
    return ['web', 'db'].every((n) => eps.some((e) => e.names.includes(n))) ? eps : undefined;
  }, 20_000, 500);
  s.expect(named !== undefined, 'both containers are endpoints of appnet, by name');
  for (const e of named ?? []) s.say(`endpoint ${e.names[0]}: ${e.addresses.join(', ')}`);

  s.step('before the link: icc=false keeps them apart');
  const before = await get('web', 'http://db:5432/hostname');
  s.say(`web$ wget -O - http://db:5432/hostname  ->  ${before ?? '(no answer)'}`);
  s.expect(before === undefined, 'web cannot reach db');

  // The daemon learnt the network's name with the containers' names (an id or id prefix works too).
  s.step('tsoverlay link add --network appnet web db   (docker run --link db:db …)');
  s.say((await tsoverlay(['link', 'add', '--store', d.store, '--network', 'appnet', 'web', 'db'])).trimEnd());
  const answer = await until(() => get('web', 'http://db:5432/hostname'), 15_000, 300);
  s.say(`web$ wget -O - http://db:5432/hostname  ->  ${answer ?? '(no answer)'}`);
  s.expect(answer === 'db', 'web reaches db\'s exposed port through the link');
  s.expect((await get('db', 'http://web:80/hostname')) === undefined, 'db still cannot open connections to web (a link is one way)');
  const ping = await exec('web', ['ping', '-c', '1', '-W', '1', 'db']);
  s.expect(ping.code !== 0, 'and nothing but the exposed port is open (ping web -> db fails)');
  s.say((await tsoverlay(['link', 'ls', '--store', d.store])).trimEnd());

  s.step('docker restart db: a new endpoint under the same name keeps the link');
  await docker(['restart', '-t', '0', 'db']);
  const again = await until(() => get('web', 'http://db:5432/hostname'), 20_000, 500);
  s.expect(again === 'db', 'web reaches db again after its restart');

  s.step('tsoverlay link rm --network appnet web db');
  s.say((await tsoverlay(['link', 'rm', '--store', d.store, '--network', 'appnet', 'web', 'db'])).trimEnd());
  const cut = await until(async () => ((await get('web', 'http://db:5432/hostname')) === undefined ? true : undefined), 15_000, 300);
  s.expect(cut === true, 'web cannot reach db any more');

  s.step('docker rm -f web db; docker network rm appnet');
  await docker(['rm', '-f', 'web', 'db']);
  await docker(['network', 'rm', 'appnet']);
  s.say((await tsoverlay(['network', 'ls', '--store', d.store])).trimEnd());
}

await runScenario('links-icc', 'Example: web + db linked on a network with icc=false (Docker + tsbridge)', main);
