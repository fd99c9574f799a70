// examples/overlay-two-hosts: one overlay network over etcd, names resolving across two hosts.
import test from 'ava';
import { checkExample } from './run-example.js';

test('overlay-two-hosts runs to the end: one subnet, MTU 1450, ping by name both ways, DEL forgotten', (t) =>
  checkExample(t, 'overlay-two-hosts', [
    /^ok: one subnet across hosts: c1 10\.0\.0\.\d+, c2 10\.0\.0\.\d+$/,
    /^ok: the overlay MTU is 1450/,
    /^ok: from c2 on host2, "c1" resolves to 10\.0\.0\.\d+ and answers$/,
    /^ok: from c1 on host1, "c2\.multi\.tsoverlay" resolves to 10\.0\.0\.\d+ and answers$/,
    /^ok: "c2" no longer resolves or answers from c1$/,
  ]));
