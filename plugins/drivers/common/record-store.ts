// Reading and writing network/endpoint records through the Store: create-if-absent and
// read-modify-write by compare-and-swap on the key's modRevision, so concurrent writers (the
// daemon and a standalone CNI executable on the same file, or hosts on etcd) never lose updates.
import { keys, type KeyValue, type Store } from '../../../store/index.js';
import { DriverError } from './errors.js';
import { decodeEndpointRecord, decodeNetworkRecord, encodeRecord, removalUnderWay, type EndpointRecord, type NetworkRecord } from './records.js';

/** Outcome of a create-if-absent: the record now stored, and whether this call wrote it. */
export interface CreateOutcome<T> {
  created: boolean;
  record: T;
}

const CAS_ATTEMPTS = 8;

/** Typed access to the driver records of one store. */
export class RecordStore {
  constructor(
    private readonly store: Store,
    /** Called with the key and error of a record that cannot be decoded while listing (it is skipped). */
    private readonly onCorrupt: (key: string, err: Error) => void = () => {},
  ) {}

  async getNetwork(id: string): Promise<NetworkRecord | undefined> {
    const key = keys.network(id);
    const kv = await this.store.get(key);
    return kv === undefined ? undefined : decodeNetworkRecord(kv.value, key);
  }

  /** Every network record (undecodable ones are reported to onCorrupt and skipped). */
  async listNetworks(): Promise<NetworkRecord[]> {
    return this.list(keys.networks(), decodeNetworkRecord);
  }

  /** The network's record, or unknown-network naming the driver it was expected to come from. */
  async requireNetwork(id: string, driver: string): Promise<NetworkRecord> {
    const rec = await this.getNetwork(id);
    if (!rec) throw new DriverError('unknown-network', `network ${JSON.stringify(id)} does not exist (was it created with the ${driver} driver?)`);
    return rec;
  }

  /** The endpoint's record, or unknown-endpoint. */
  async requireEndpoint(networkId: string, endpointId: string): Promise<EndpointRecord> {
    const ep = await this.getEndpoint(networkId, endpointId);
    if (!ep) throw new DriverError('unknown-endpoint', `endpoint ${JSON.stringify(endpointId)} does not exist on network ${JSON.stringify(networkId)}`);
    return ep;
  }

  /** Store `rec` unless the key exists; then return what is there. */
  createNetwork(rec: NetworkRecord): Promise<CreateOutcome<NetworkRecord>> {
    return this.createIfAbsent(keys.network(rec.id), rec, decodeNetworkRecord);
  }

  /**
   * Read-modify-write a network (as updateEndpoint): `change` returns the new record, or the
   * same object to write nothing. Resolves undefined when the record does not exist.
   */
  async updateNetwork(id: string, change: (cur: NetworkRecord) => NetworkRecord): Promise<NetworkRecord | undefined> {
    const key = keys.network(id);
    for (let i = 0; i < CAS_ATTEMPTS; i++) {
      const kv = await this.store.get(key);
      if (kv === undefined) return undefined;
      const cur = decodeNetworkRecord(kv.value, key);
      const next = change(cur);
      if (next === cur) return cur;
      const r = await this.store.txn([{ key, target: 'modRevision', op: '==', value: kv.modRevision }], [{ type: 'put', key, value: encodeRecord(next) }]);
      if (r.succeeded) return next;
    }
    throw new DriverError('store-contention', `network ${id}: record kept changing under ${CAS_ATTEMPTS} attempts`);
  }

  /** Delete a network record; true when it existed. */
  deleteNetwork(id: string): Promise<boolean> {
    return this.store.delete(keys.network(id));
  }

  async getEndpoint(networkId: string, endpointId: string): Promise<EndpointRecord | undefined> {
    const key = keys.endpoint(networkId, endpointId);
    const kv = await this.store.get(key);
    return kv === undefined ? undefined : decodeEndpointRecord(kv.value, key);
  }

  /** The endpoints of one network (all hosts). */
  listEndpoints(networkId: string): Promise<EndpointRecord[]> {
    return this.list(keys.networkEndpoints(networkId), decodeEndpointRecord);
  }

  /** Every endpoint of every network. */
  listAllEndpoints(): Promise<EndpointRecord[]> {
    return this.list(keys.endpoints(), decodeEndpointRecord);
  }

  /**
   * Store `rec` unless the endpoint exists (then return what is there). A new endpoint whose
   * network is gone or being removed (`network rm` checks for endpoints under a mark) is taken
   * back: network-removing, retryable. Write first, read the network after: either the removal's
   * endpoint check sees this record, or this read sees the removal's mark.
   */
  async createEndpoint(rec: EndpointRecord, now = new Date()): Promise<CreateOutcome<EndpointRecord>> {
    const out = await this.createIfAbsent(keys.endpoint(rec.networkId, rec.id), rec, decodeEndpointRecord);
    if (!out.created) return out;
    const net = await this.getNetwork(rec.networkId);
    if (net && !removalUnderWay(net, now)) return out;
    await this.deleteEndpoint(rec.networkId, rec.id);
    throw new DriverError('network-removing', `network ${net?.name ?? rec.networkId} is being removed (or is gone): endpoint ${rec.id} not recorded; try again`);
  }

  /**
   * Read-modify-write an endpoint: `change` gets the current record and returns the new one.
   * Retries on a concurrent write; resolves undefined when the record does not exist.
   */
  async updateEndpoint(
    networkId: string,
    endpointId: string,
    change: (cur: EndpointRecord) => EndpointRecord,
  ): Promise<EndpointRecord | undefined> {
    const key = keys.endpoint(networkId, endpointId);
    for (let i = 0; i < CAS_ATTEMPTS; i++) {
      const kv = await this.store.get(key);
      if (kv === undefined) return undefined;
      const next = change(decodeEndpointRecord(kv.value, key));
      const r = await this.store.txn([{ key, target: 'modRevision', op: '==', value: kv.modRevision }], [
        { type: 'put', key, value: encodeRecord(next) },
      ]);
      if (r.succeeded) return next;
    }
    throw new DriverError('store-contention', `endpoint ${endpointId}: record kept changing under ${CAS_ATTEMPTS} attempts`);
  }

  deleteEndpoint(networkId: string, endpointId: string): Promise<boolean> {
    return this.store.delete(keys.endpoint(networkId, endpointId));
  }

  private async list<T>(prefix: string, decode: (text: string, key: string) => T): Promise<T[]> {
    const { kvs } = await this.store.range(prefix);
    const out: T[] = [];
    for (const kv of kvs) {
      try {
        out.push(decode(kv.value, kv.key));
      } catch (err) {
        this.onCorrupt(kv.key, err as Error);
      }
    }
    return out;
  }

  private async createIfAbsent<T extends NetworkRecord | EndpointRecord>(
    key: string,
    rec: T,
    decode: (text: string, key: string) => T,
  ): Promise<CreateOutcome<T>> {
    for (let i = 0; i < CAS_ATTEMPTS; i++) {
      const r = await this.store.txn([{ key, target: 'version', op: '==', value: 0 }], [{ type: 'put', key, value: encodeRecord(rec) }]);
      if (r.succeeded) return { created: true, record: rec };
      const kv: KeyValue | undefined = await this.store.get(key);
      if (kv !== undefined) return { created: false, record: decode(kv.value, key) };
      // Deleted between our txn and our read: try again.
    }
    throw new DriverError('store-contention', `${key}: created and deleted concurrently ${CAS_ATTEMPTS} times`);
  }
}
