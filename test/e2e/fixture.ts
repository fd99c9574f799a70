// Networks and containers of the e2e world as a user makes them: `docker network create -d
// tsoverlay` on one engine (the others see it through the cluster store), the same network
// joined from podman by a conflist naming its id, `docker run` / `podman run` on each host.
import type { ExecutionContext } from 'ava';
import { containerIPv4 } from '../harness/container.js';
import type { DockerEngine } from '../harness/docker.js';
import type { PodmanHost } from '../harness/podman.js';
import { until, type Ctr } from './helpers.js';
import type { E2eHost, E2eWorld } from './world.js';

export interface OverlayNet {
  name: string;
  /** The engine's id, shared by every engine and used as the overlay network id. */
  id: string;
  subnet: string;
  gateway: string;
}

/** `docker network create -d tsoverlay --ipam-driver tsipam` on `on`; waits until every other engine shows it. */
export async function dockerOverlay(w: E2eWorld, on: E2eHost, name: string, subnet: string): Promise<OverlayNet> {
  await on.engine!.docker(['network', 'create', '-d', 'tsoverlay', '--ipam-driver', 'tsipam', '--subnet', subnet, name]);
  const id = (await on.engine!.docker(['network', 'inspect', '-f', '{{.Id}}', name])).trim();
  for (const h of Object.values(w.hosts)) {
    if (!h.engine || h === on) continue;
    const seen = await until(async () => (await h.engine!.tryDocker(['network', 'inspect', '-f', '{{.Id}}', name])).stdout.trim() === id, 20_000);
    if (!seen) throw new Error(`engine of ${h.id} does not show network ${name} (${id}) through the cluster store`);
  }
  return { name, id, subnet, gateway: subnet.replace(/\.0\/24$/, '.1') };
}

/** A podman conflist `net.name` on host h whose tsoverlay plugin joins the Docker network by id. */
export function podmanJoins(w: E2eWorld, h: E2eHost, net: OverlayNet): void {
  h.podman!.writeConflist(net.name, {
    cniVersion: '1.0.0',
    plugins: [
      {
        type: 'tsoverlay',
        networkId: net.id,
        store: w.storeUrl,
        daemonSocket: h.daemon.socket,
        ipam: { type: 'tsipam', ranges: [[{ subnet: net.subnet }]] },
      },
    ],
  });
}

/** `docker run -d --net NET --dns <gateway> busybox sleep`; removed at teardown. */
export async function dockerRun(t: Pick<ExecutionContext, 'teardown'> | undefined, engine: DockerEngine, name: string, net: OverlayNet): Promise<Ctr> {
  t?.teardown(() => engine.tryDocker(['rm', '-f', name]));
  await engine.docker(['run', '-d', '--net', net.name, '--name', name, '--dns', net.gateway, 'busybox:local', 'sleep', '3600'], { timeoutMs: 60_000 });
  return { name, engine, ip: await containerIPv4(engine, name), pid: await engine.containerPid(name) };
}

/** `podman run -d --network NET` from the busybox rootfs; removed at teardown. */
export async function podmanRun(t: Pick<ExecutionContext, 'teardown'> | undefined, pod: PodmanHost, name: string, net: OverlayNet): Promise<Ctr> {
  t?.teardown(() => pod.tryPodman(['rm', '-f', '-t', '0', name], { timeoutMs: 30_000 }));
  await pod.podman(['run', '-d', '--name', name, '--network', net.name, '--rootfs', pod.rootfs, 'sleep', '3600'], { timeoutMs: 60_000 });
  return { name, engine: pod, ip: await containerIPv4(pod, name), pid: await pod.containerPid(name) };
}
