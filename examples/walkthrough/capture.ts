// Runs the README's walkthrough for real (see walkthrough.ts: a namespace standing in for the
// host, its own dockerd, our daemon) and prints the README section as markdown, each command
// followed by the output it gave. With --write it replaces the section between the markers in
// README.md and saves the page's screenshot as examples/walkthrough/topology.png.
// Run: sudo npx tsx examples/walkthrough/capture.ts [--write]
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT, runWalkthrough, WALK, type Step } from './walkthrough.js';

export const BEGIN = '<!-- walkthrough:begin (written by examples/walkthrough/capture.ts --write) -->';
export const END = '<!-- walkthrough:end -->';
export const SCREENSHOT = 'examples/walkthrough/topology.png';

/** Lines kept of a long output: the first `head`, a `…` line, the last `tail`. */
function trim(text: string, head: number, tail = 0): string {
  const lines = text.split('\n');
  if (lines.length <= head + tail + 1) return text;
  return [...lines.slice(0, head), '…', ...lines.slice(lines.length - tail)].join('\n');
}

const block = (s: Step, maxLines = 20) => `\`\`\`console\n${s.shown.map((c) => `$ ${c}`).join('\n')}\n${trim(s.output, maxLines)}\n\`\`\``;

/** The README section for these steps (pure). */
export function markdown(steps: Step[]): string {
  const by = (id: string) => {
    const s = steps.find((x) => x.id === id);
    if (!s) throw new Error(`no step ${id}`);
    return s;
  };
  return `${BEGIN}
## Walkthrough

From a Debian or Ubuntu host with Node 20 and Docker (\`docker.io\`) to a container on a tsoverlay
network, seen everywhere tsoverlay shows it. The outputs are real:
[\`examples/walkthrough/capture.ts\`](examples/walkthrough/capture.ts) ran these commands and wrote
this section, and [\`test/examples/walkthrough.test.ts\`](test/examples/walkthrough.test.ts) runs
them again and checks what you should see. It ran them in a network namespace standing in for the
host (\`${WALK.hostname}\`, ${WALK.underlay.split('/')[0]}) with its own dockerd, \`tsoverlay\` from the sources through tsx,
an imported busybox image and a temporary state directory, shown as \`/var/lib/tsoverlay\`. Ids, MAC
addresses, times and figures differ on your host; \`…\` marks lines left out.

**1. Start the daemon** from the checkout, with the metrics and the topology page on a local
port (\`npm start\` installs the npm dependencies and builds first; npm's own lines are left out).
It logs one JSON line per decision (here the ones to notice: the store, the page, the
Docker plugin sockets):

${block(by('daemon'))}

In a second terminal, make the \`tsoverlay\` command available:
\`sudo ln -s "$PWD/dist/bin/tsoverlay.js" /usr/local/bin/tsoverlay\`.

**2. A network and a container with Docker.** The engine finds the \`tsbridge\` and \`tsipam\`
plugins in \`/run/docker/plugins\`, where the daemon serves them (on a first run \`docker run\` also
prints the image pull); the published port answers:

${block(by('network-create'))}

${block(by('docker-run'))}

${block(by('curl-port'))}

**3. What tsoverlay knows** — read from the store, so it works from any host that reaches it
(\`--json\` for the full records, \`inspect\` for one):

${block(by('network-ls'))}

${block(by('endpoint-ls'))}

**4. Metrics** for Prometheus on \`/metrics\` (endpoints per network, pool usage, DNS, proxy, store
and reconciler figures; the list is in [\`daemon/observability/\`](daemon/observability/README.md)):

${block(by('metrics'))}

**5. The topology page** at \`http://${WALK.metrics}/\`: hosts, networks, endpoints and published
ports, updated live as containers come and go (a screenshot taken by headless Chromium in the run
above):

![The topology page listing host1, network web and container web1 with its published port](${SCREENSHOT})

**6. \`doctor\`** checks the kernel, the firewall (dockerd's \`FORWARD\` policy DROP is fine once the
daemon's own rule accepts tsoverlay's traffic ahead of it), the store and the peers; every failure
comes with the command that fixes it:

${block(by('doctor'))}
${END}`;
}

/** Put the section into README.md in place of the previous one (pure). */
export function replaceSection(readme: string, section: string): string {
  const a = readme.indexOf(BEGIN);
  const b = readme.indexOf(END);
  if (a < 0 || b < a) throw new Error(`README.md has no ${BEGIN} … ${END} section`);
  return `${readme.slice(0, a)}${section}${readme.slice(b + END.length)}`;
}

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('capture.ts needs root (it makes network namespaces and runs dockerd)\n');
    return 1;
  }
  const write = process.argv.includes('--write');
  const dir = mkdtempSync(join(tmpdir(), 'tsot-walkshot-'));
  const png = join(dir, 'topology.png');
  const run = runWalkthrough({ screenshot: png, log: (l) => process.stderr.write(`${l}\n`) });
  const stop = (code: number) => () => void run.cleanup().finally(() => (rmSync(dir, { recursive: true, force: true }), process.exit(code)));
  process.once('SIGINT', stop(130));
  process.once('SIGTERM', stop(143));
  try {
    const r = await run.done;
    const failed = r.steps.filter((s) => s.code !== 0 && s.id !== 'doctor');
    if (failed.length) throw new Error(`steps failed: ${failed.map((s) => `${s.id}: ${s.output}`).join('\n')}`);
    const section = markdown(r.steps);
    if (!write) {
      process.stdout.write(`${section}\n`);
      return 0;
    }
    const file = join(ROOT, 'README.md');
    writeFileSync(file, replaceSection(readFileSync(file, 'utf8'), section));
    copyFileSync(png, join(ROOT, SCREENSHOT));
    process.stderr.write(`wrote README.md's walkthrough and ${SCREENSHOT}\n`);
    return 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    (code) => process.exit(code),
    (err: Error) => {
      process.stderr.write(`capture: ${err.message}\n`);
      process.exit(1);
    },
  );
}
