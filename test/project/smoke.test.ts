import test from 'ava';
import { readFileSync } from 'node:fs';

test('package.json names the CLI and the five CNI plugins as executables', (t) => {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
  t.is(pkg.name, 'tsoverlay');
  t.is(pkg.type, 'module');
  for (const bin of ['tsoverlay', 'tsbridge', 'tshost', 'tsipam', 'tsportmap']) t.truthy(pkg.bin[bin], bin);
});
