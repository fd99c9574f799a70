// `tsoverlay link add|rm|ls` and `tsoverlay service create|rm|ls|add-backend|rm-backend`: store
// writes (keys.link, keys.service) that every daemon applies to its firewall (daemon/store-rules.ts).
// They work on any host that reaches the store; the daemons need not be running.
import { RecordStore } from '../../plugins/drivers/common/record-store.js';
import type { EndpointRecord, NetworkRecord } from '../../plugins/drivers/common/records.js';
import { endpointView, selectBackends, type ServiceRecord } from '../../proxy/services.js';
import { checkService } from '../../proxy/specs.js';
import { keys, lastSegment } from '../../store/keys.js';
import type { Store } from '../../store/types.js';
import { checkRef, decodeLinkRecord, findEndpoint, linkAddresses, linkEnv, linkPorts, parseLinkPort, RecordError, refOf, type LinkRecord } from '../../plugins/drivers/common/link-records.js';
import { printRows, withStore } from './ls.js';

export interface StoreCommandOptions {
  store?: string;
  stateDir: string;
  json?: boolean;
  /** false (`--no-trunc`): tables show 64-character ids in full. */
  trunc?: boolean;
}

const print = (line: string) => process.stdout.write(`${line}\n`);
const printJson = (v: unknown) => print(JSON.stringify(v, null, 2));

/**
 * A network by id, name or unique id prefix (Docker's order: full id, name, prefix). Several
 * networks of one name (CNI bridge networks are per host) must be named by id.
 */
export function findNetwork(nets: readonly NetworkRecord[], ref: string): NetworkRecord {
  const byId = nets.find((n) => n.id === ref);
  if (byId) return byId;
  for (const match of [(n: NetworkRecord) => n.name === ref, (n: NetworkRecord) => n.id.startsWith(ref)]) {
    const found = nets.filter(match);
    if (found.length > 1) throw new RecordError('ambiguous-network', 'bad-request', `"${ref}" names ${found.length} networks (${found.map((n) => n.id).join(', ')}): use an id`);
    if (found.length === 1) return found[0]!;
  }
  throw new RecordError('unknown-network', 'not-found', `no network "${ref}" (see tsoverlay network ls)`);
}

/** The endpoint a reference names on a network, or a not-found error naming both. */
function endpointOn(eps: readonly EndpointRecord[], ref: string, net: NetworkRecord): EndpointRecord {
  const ep = findEndpoint(eps, ref);
  if (!ep) throw new RecordError('unknown-endpoint', 'not-found', `no endpoint "${ref}" on network ${net.name ?? net.id} (see tsoverlay endpoint ls)`);
  return ep;
}

export interface LinkAddOptions extends StoreCommandOptions {
  network: string;
  port?: string[];
}

/** `tsoverlay link add --network NET FROM TO[:ALIAS] [--port P[/proto]]…`: prints Docker's link environment. */
export function linkAdd(from: string, target: string, opts: LinkAddOptions): Promise<number> {
  return withStore(opts, async (store) => {
    const [toRef, aliasGiven] = target.split(':', 2) as [string, string | undefined];
    const recs = new RecordStore(store);
    const net = findNetwork(await recs.listNetworks(), opts.network);
    const eps = await recs.listEndpoints(net.id);
    const a = endpointOn(eps, checkRef(from, 'FROM'), net);
    const b = endpointOn(eps, checkRef(toRef, 'TO'), net);
    if (a.id === b.id) throw new RecordError('invalid-link', 'bad-request', `an endpoint cannot be linked to itself ("${from}" and "${toRef}")`);
    const rec: LinkRecord = {
      networkId: net.id,
      from: refOf(a),
      to: refOf(b),
      alias: checkRef(aliasGiven ?? toRef, 'ALIAS'),
      ports: (opts.port ?? []).map(parseLinkPort),
      createdAt: new Date().toISOString(),
    };
    const ports = linkPorts(rec, b);
    if (ports.length === 0) throw new RecordError('no-ports', 'bad-request', `"${toRef}" exposes no port: name the ports with --port PORT[/PROTO]`);
    const key = keys.link(net.id, rec.from, rec.to);
    const r = await store.txn([{ key, target: 'version', op: '==', value: 0 }], [{ type: 'put', key, value: JSON.stringify(rec) }]);
    if (!r.succeeded) throw new RecordError('link-exists', 'conflict', `"${rec.from}" is already linked to "${rec.to}" on network ${net.name ?? net.id} (tsoverlay link rm first)`);
    const addrs = linkAddresses(a, b);
    const env = addrs ? linkEnv(rec.from, rec.alias, addrs.toIp, ports) : [];
    // Legal, but only meaningful where containers are kept apart: say so rather than refuse.
    if (net.icc) process.stderr.write(`note: network ${net.name ?? net.id} allows all traffic between its containers (icc on): the link changes nothing there\n`);
    if (opts.json) printJson({ ...rec, env });
    else {
      print(`linked ${rec.from} -> ${rec.to} (as ${rec.alias}) on network ${net.name ?? net.id}: ${ports.map((p) => `${p.port}/${p.proto}`).join(', ')}`);
      env.forEach(print);
    }
    return 0;
  });
}

/** `tsoverlay link rm --network NET FROM TO`. */
export function linkRm(from: string, to: string, opts: StoreCommandOptions & { network: string }): Promise<number> {
  return withStore(opts, async (store) => {
    const recs = new RecordStore(store);
    const net = findNetwork(await recs.listNetworks(), opts.network);
    const eps = await recs.listEndpoints(net.id);
    // The stored reference, or the one an endpoint of that name has now.
    const refs = (r: string) => [...new Set([r, ...[findEndpoint(eps, r)].flatMap((e) => (e ? [refOf(e)] : []))])];
    for (const f of refs(checkRef(from, 'FROM'))) {
      for (const t of refs(checkRef(to, 'TO'))) {
        if (await store.delete(keys.link(net.id, f, t))) {
          if (!opts.json) print(`unlinked ${f} -> ${t} on network ${net.name ?? net.id}`);
          return 0;
        }
      }
    }
    throw new RecordError('unknown-link', 'not-found', `no link ${from} -> ${to} on network ${net.name ?? net.id}`);
  });
}

/** `tsoverlay link ls [--network NET]`: each link with its addresses when both ends exist now. */
export function linkLs(opts: StoreCommandOptions & { network?: string }): Promise<number> {
  return withStore(opts, async (store) => {
    const recs = new RecordStore(store);
    const nets = await recs.listNetworks();
    const only = opts.network ? findNetwork(nets, opts.network).id : undefined;
    const { kvs } = await store.range(only ? keys.networkLinks(only) : keys.links());
    const rows = [];
    for (const kv of kvs) {
      const rec = decodeLinkRecord(kv.value);
      if (!rec) continue;
      const eps = await recs.listEndpoints(rec.networkId);
      const a = findEndpoint(eps, rec.from);
      const b = findEndpoint(eps, rec.to);
      const addrs = a && b ? linkAddresses(a, b) : undefined;
      const net = nets.find((n) => n.id === rec.networkId);
      rows.push({
        network: net?.name ?? rec.networkId,
        from: rec.from,
        to: rec.to,
        alias: rec.alias,
        ports: (b ? linkPorts(rec, b) : rec.ports).map((p) => `${p.port}/${p.proto}`),
        fromIp: addrs?.fromIp ?? null,
        toIp: addrs?.toIp ?? null,
        state: addrs ? 'active' : 'waiting',
      });
    }
    printRows(rows, ['network', 'from', 'to', 'alias', 'ports', 'fromIp', 'toIp', 'state'], opts.json, opts.trunc === false);
    return 0;
  });
}

/** Service names are DNS labels (they answer as `<name>.<domain>`). */
const SERVICE_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

function checkServiceName(name: string): string {
  if (!SERVICE_NAME.test(name)) throw new RecordError('invalid-name', 'bad-request', `service name ${JSON.stringify(name)} is not a DNS label (a-z, 0-9, "-", at most 63)`);
  return name;
}

/** Parse `PORT[:TARGET][/PROTO]`. */
export function parseServicePort(text: string): ServiceRecord['ports'][number] {
  const m = /^(\d{1,5})(?::(\d{1,5}))?(?:\/([a-z]+))?$/.exec(text.trim());
  if (!m) throw new RecordError('invalid-port', 'bad-request', `port ${JSON.stringify(text)}: expected PORT[:TARGET][/tcp|udp|sctp]`);
  const port = Number(m[1]);
  const targetPort = m[2] === undefined ? port : Number(m[2]);
  return { proto: (m[3] ?? 'tcp') as 'tcp', port, targetPort };
}

function parseLabels(list: readonly string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of list) {
    const i = l.indexOf('=');
    if (i <= 0) throw new RecordError('invalid-label', 'bad-request', `label ${JSON.stringify(l)}: expected KEY=VALUE`);
    out[l.slice(0, i)] = l.slice(i + 1);
  }
  return out;
}

/** Validate a service record the way the firewall will (ports, VIP, affinity); returns it. */
function validService(rec: ServiceRecord): ServiceRecord {
  try {
    checkService({ name: rec.name, vip: rec.vip, ports: rec.ports, backends: [], affinitySeconds: rec.affinitySeconds });
  } catch (err) {
    throw new RecordError('invalid-service', 'bad-request', (err as Error).message);
  }
  for (const e of rec.selector.endpoints ?? []) checkRef(e, 'endpoint');
  return rec;
}

export interface ServiceCreateOptions extends StoreCommandOptions {
  vip: string;
  port: string[];
  endpoint?: string[];
  label?: string[];
  affinity?: string;
}

/** `tsoverlay service create NAME --vip IP --port P[:T][/proto]… [--endpoint NAME]… [--label K=V]… [--affinity S]`. */
export function serviceCreate(name: string, opts: ServiceCreateOptions): Promise<number> {
  return withStore(opts, async (store) => {
    const labels = parseLabels(opts.label);
    const rec = validService({
      name: checkServiceName(name),
      vip: opts.vip,
      ports: opts.port.map(parseServicePort),
      selector: { endpoints: [...new Set(opts.endpoint ?? [])], ...(Object.keys(labels).length ? { labels } : {}) },
      ...(opts.affinity !== undefined ? { affinitySeconds: Number(opts.affinity) } : {}),
    });
    const key = keys.service(name);
    const r = await store.txn([{ key, target: 'version', op: '==', value: 0 }], [{ type: 'put', key, value: JSON.stringify(rec) }]);
    if (!r.succeeded) throw new RecordError('service-exists', 'conflict', `service "${name}" exists (tsoverlay service rm first)`);
    if (opts.json) printJson(rec);
    else print(`service ${name} created: ${rec.vip} ${rec.ports.map((p) => `${p.port}/${p.proto}->${p.targetPort}`).join(', ')}`);
    return 0;
  });
}

/** `tsoverlay service rm NAME`. */
export function serviceRm(name: string, opts: StoreCommandOptions): Promise<number> {
  return withStore(opts, async (store) => {
    if (!(await store.delete(keys.service(checkServiceName(name))))) throw new RecordError('unknown-service', 'not-found', `no service "${name}"`);
    if (!opts.json) print(`service ${name} removed`);
    return 0;
  });
}

/** Read-modify-write of one service's selector by compare-and-swap on its revision. */
async function updateEndpoints(store: Store, name: string, change: (eps: string[]) => string[]): Promise<ServiceRecord> {
  const key = keys.service(checkServiceName(name));
  for (let attempt = 0; attempt < 8; attempt++) {
    const kv = await store.get(key);
    if (!kv) throw new RecordError('unknown-service', 'not-found', `no service "${name}"`);
    const rec = JSON.parse(kv.value) as ServiceRecord;
    const next: ServiceRecord = { ...rec, selector: { ...rec.selector, endpoints: change(rec.selector?.endpoints ?? []) } };
    const r = await store.txn([{ key, target: 'modRevision', op: '==', value: kv.modRevision }], [{ type: 'put', key, value: JSON.stringify(next) }]);
    if (r.succeeded) return next;
  }
  throw Object.assign(new Error(`service "${name}" keeps changing under us: try again`), { code: 'store-busy', kind: 'unavailable', retryable: true });
}

/** `tsoverlay service add-backend NAME ENDPOINT…` (endpoint names or aliases). */
export function serviceAddBackend(name: string, endpoints: string[], opts: StoreCommandOptions): Promise<number> {
  return withStore(opts, async (store) => {
    endpoints.forEach((e) => checkRef(e, 'endpoint'));
    const rec = await updateEndpoints(store, name, (cur) => [...new Set([...cur, ...endpoints])]);
    if (opts.json) printJson(rec);
    else print(`service ${name} selects endpoints: ${(rec.selector.endpoints ?? []).join(', ')}`);
    return 0;
  });
}

/** `tsoverlay service rm-backend NAME ENDPOINT…`. */
export function serviceRmBackend(name: string, endpoints: string[], opts: StoreCommandOptions): Promise<number> {
  return withStore(opts, async (store) => {
    const rec = await updateEndpoints(store, name, (cur) => cur.filter((e) => !endpoints.includes(e)));
    if (opts.json) printJson(rec);
    else print(`service ${name} selects endpoints: ${(rec.selector.endpoints ?? []).join(', ') || '(none)'}`);
    return 0;
  });
}

/** `tsoverlay service ls`: each service with the backend addresses it selects now. */
export function serviceLs(opts: StoreCommandOptions): Promise<number> {
  return withStore(opts, async (store) => {
    const [svcs, eps] = await Promise.all([store.range(keys.services()), store.range(keys.endpoints())]);
    const views = eps.kvs.flatMap((kv) => [endpointView(kv.key, kv.value)].filter((v) => v !== undefined));
    const rows = [];
    for (const kv of svcs.kvs) {
      let rec: ServiceRecord;
      try {
        rec = { ...(JSON.parse(kv.value) as ServiceRecord), name: lastSegment(kv.key) };
      } catch {
        process.stderr.write(`skipping ${kv.key}: not JSON\n`);
        continue;
      }
      rows.push({
        name: rec.name,
        vip: rec.vip,
        ports: (rec.ports ?? []).map((p) => `${p.port}/${p.proto ?? 'tcp'}->${p.targetPort ?? p.port}`),
        selector: [...(rec.selector?.endpoints ?? []), ...Object.entries(rec.selector?.labels ?? {}).map(([k, v]) => `${k}=${v}`)],
        backends: typeof rec.vip === 'string' && rec.selector ? selectBackends(rec, views) : [],
      });
    }
    printRows(rows, ['name', 'vip', 'ports', 'selector', 'backends'], opts.json, opts.trunc === false);
    return 0;
  });
}
