// The representative firewall state both backends' golden tests render: an ICC-off network, an
// internal one, ports of every kind, a link, a service with affinity.
import type { FirewallBackend } from '../../proxy/backend.js';
import { checkNetwork, checkService } from '../../proxy/specs.js';

type Target = Pick<FirewallBackend, 'setNetworks' | 'setBindings' | 'setLink' | 'setService'>;

/** Put the sample state into `d` (a DesiredState, an NftDesired, or a backend). */
export function fillSample<T extends Target>(d: T): T {
  d.setNetworks([
    checkNetwork({ id: 'web', bridge: 'tsbr-web', subnets: ['172.30.0.0/24', 'fd30::/64'], icc: false }),
    checkNetwork({ id: 'back', bridge: 'tsbr-back', subnets: ['172.31.0.0/24'], internal: true }),
  ]);
  d.setBindings('ep1', [], [
    { proto: 'tcp', hostIp: '0.0.0.0', hostPort: 8080, containerIp: '172.30.0.2', containerPort: 80 },
    { proto: 'tcp', hostIp: '::', hostPort: 8080, containerIp: 'fd30::2', containerPort: 80 },
    { proto: 'udp', hostIp: '127.0.0.1', hostPort: 5353, containerIp: '172.30.0.2', containerPort: 53 },
    { proto: 'sctp', hostIp: '10.0.0.1', hostPort: 49200, containerIp: '172.30.0.2', containerPort: 9 },
  ]);
  d.setLink('web/ep2/ep1', { networkId: 'web', bridge: 'tsbr-web', fromIp: '172.30.0.3', toIp: '172.30.0.2', ports: [{ proto: 'tcp', port: 5432 }] });
  d.setService('api', checkService({ name: 'api', vip: '10.96.0.10', ports: [{ proto: 'tcp', port: 80, targetPort: 8080 }], backends: ['172.30.0.4', '172.30.0.2', '172.30.0.3'], affinitySeconds: 600 }));
  return d;
}
