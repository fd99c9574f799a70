// The Docker adapter's teardown order on a real bridge driver (real kernel, test namespaces):
// Leave is answered before its kernel work; DeleteEndpoint queues behind it and is answered only
// once the endpoint's record is gone, so a daemon killed after that answer leaves nothing behind.
import test from 'ava';
import { DockerBridgeNetwork } from '../../plugins/libnetwork/adapters/network.js';
import { bridgeEnv, dockerId } from './fixture.js';

test('DeleteEndpoint is answered after the record and veth are gone (behind a deferred Leave), Leave before its work', async (t) => {
  const env = await bridgeEnv(t, 'dtd');
  const net = await env.driver.createNetwork({ id: dockerId('dtd'), name: 'dtd', subnets: [{ subnet: '10.42.0.0/24', gateway: '10.42.0.1' }] });
  const ep = { networkId: net.id, endpointId: 'ep-dtd' };
  await env.driver.createEndpoint(net.id, { id: ep.endpointId, addresses: ['10.42.0.2/24'] });
  const joined = await env.driver.join(net.id, ep.endpointId, { mode: 'engine' });
  const adapter = new DockerBridgeNetwork({ driver: env.driver, log: env.log });

  // The driver's teardown is held at a gate, as a slow kernel would hold it.
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const leave = env.driver.leave.bind(env.driver);
  env.driver.leave = async (n, e) => {
    await gate;
    return leave(n, e);
  };
  const settled = (p: Promise<unknown>) => Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 300))]);
  t.true(await settled(adapter.leave(ep)), 'Leave is answered before its work');
  const deleting = adapter.deleteEndpoint(ep);
  t.false(await settled(deleting), 'DeleteEndpoint waits for the Leave before it and for its own work');
  t.truthy(await env.driver.endpoint(net.id, ep.endpointId), 'the record is still there while it waits');
  open();
  await deleting;
  t.is(await env.driver.endpoint(net.id, ep.endpointId), undefined, 'no record once answered');
  t.is(await env.h.link(joined.srcName!), null, 'no veth once answered');
  t.deepEqual(env.log.lines.filter((l) => l.level === 'error'), []);
});
