// Every example is a README (what the book shows, what it demonstrates, the one command, the
// expected output) plus a run.ts, and a test here runs it; the README's expected output has
// as many `ok:` lines as the script has checks.
import test from 'ava';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './run-example.js';

const EXAMPLES = join(ROOT, 'examples');
const scripted = readdirSync(EXAMPLES, { withFileTypes: true })
  .filter((e) => e.isDirectory() && existsSync(join(EXAMPLES, e.name, 'run.ts')))
  .map((e) => e.name);

test('the scripted examples are the four of issue 9, and the index lists every example with its README', (t) => {
  t.deepEqual(scripted.sort(), ['dns-etcd', 'links-icc', 'overlay-two-hosts', 'service-vip']);
  const index = readFileSync(join(EXAMPLES, 'README.md'), 'utf8');
  for (const name of [...scripted, 'cni']) {
    t.true(index.includes(`[\`${name}/\`](${name}/README.md)`), `index links ${name}`);
    t.true(existsSync(join(EXAMPLES, name, 'README.md')), `${name}/README.md exists`);
  }
});

for (const name of scripted) {
  test(`${name}: README sections, the one command, checks counted alike in README and run.ts, a test runs it`, (t) => {
    const readme = readFileSync(join(EXAMPLES, name, 'README.md'), 'utf8');
    const script = readFileSync(join(EXAMPLES, name, 'run.ts'), 'utf8');
    for (const h of ['## What the book shows', '## What this demonstrates', '## Run it', '## Expected output']) t.true(readme.includes(h), `${name}: ${h}`);
    t.true(readme.includes(`sudo npx tsx examples/${name}/run.ts`));
    t.true(readme.includes(`sudo node --import tsx examples/${name}/run.ts`));
    const oks = readme.split('\n').filter((l) => l.startsWith('ok: ')).length;
    const expects = (script.match(/\bs\.expect\(/g) ?? []).length;
    const claimed = Number(new RegExp(`example ${name}: all (\\d+) checks passed`).exec(readme)?.[1]);
    t.is(oks, expects, 'ok lines in the README');
    t.is(claimed, expects, 'the closing line in the README');
    t.true(existsSync(join(ROOT, 'test', 'examples', `${name}.test.ts`)));
  });
}
