// examples/links-icc: Docker + tsbridge with icc=false; a link opens db's exposed port to web only.
import test from 'ava';
import { checkExample } from './run-example.js';

test('links-icc runs to the end: blocked, linked one way on the exposed port only, kept across a restart, unlinked', (t) =>
  checkExample(t, 'links-icc', [
    /^ok: both containers are endpoints of appnet, by name$/,
    /^ok: web cannot reach db$/,
    /^ok: web reaches db's exposed port through the link$/,
    /^ok: db still cannot open connections to web/,
    /^ok: and nothing but the exposed port is open/,
    /^ok: web reaches db again after its restart$/,
    /^ok: web cannot reach db any more$/,
  ]));
