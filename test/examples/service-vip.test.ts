// examples/service-vip: a service VIP spreading a client's connections over web containers.
import test from 'ava';
import { checkExample } from './run-example.js';

test('service-vip runs to the end: spread over the selected back ends, scale out, DNS name, removal', (t) =>
  checkExample(t, 'service-vip', [
    /^ok: the client cannot reach a container directly/,
    /^ok: new connections are spread over web1 and web2 only$/,
    /^ok: the back end sees the client's own address/,
    /^ok: all three back ends answer$/,
    /^ok: the service name answers the VIP$/,
    /^ok: a container reaches the VIP too/,
    /^ok: the VIP answers no more$/,
    /^ok: the containers themselves keep running$/,
  ]));
