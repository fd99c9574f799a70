// examples/dns-etcd: the standalone DNS over etcd answering container names, services and SkyDNS records.
import test from 'ava';
import { checkExample } from './run-example.js';

test('dns-etcd runs to the end: names, VIP, SkyDNS A/SRV, live deletion, no open recursion', (t) =>
  checkExample(t, 'dns-etcd', [
    /^ok: the container's name answers from the standalone DNS$/,
    /^ok: the service name answers its VIP$/,
    /^ok: both records answer$/,
    /^ok: SRV answers carry the port$/,
    /^ok: only x1 is left$/,
    /^ok: no recursion for clients outside the cluster$/,
    /^ok: "web\.front\.tsoverlay" is NXDOMAIN now$/,
  ]));
