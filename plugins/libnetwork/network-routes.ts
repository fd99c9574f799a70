// Translates /NetworkDriver.* bodies into typed backend calls and typed results back into
// wire replies. Validation of IDs, addresses and options happens here, before the backend.

import type * as api from './api.js';
import type {
  CreateEndpointResult,
  DiscoveryInput,
  EndpointInterface,
  EndpointRef,
  IpamData,
  JoinResult,
  NetworkDriverBackend,
  RequestContext,
} from './backend.js';
import { badField, PluginError } from './errors.js';
import { parseEndpointOptions, parseNetworkOptions } from './options.js';
import {
  asRecord,
  bodyField,
  familyOf,
  optionalField,
  parseAddressCidr,
  parseIfName,
  parseIp,
  parseMac,
  parseNetworkCidr,
  parseObjectId,
  type Fail,
} from './values.js';

/** One protocol method: a parsed JSON body in, a JSON object out. */
export type MethodHandler = (body: Record<string, unknown>, ctx: RequestContext) => Promise<object>;

/** How the HTTP layer treats a backend 'not-found' for a method. */
export type NotFoundPolicy = 'error' | 'success' | 'empty-info';

/**
 * Teardown calls are idempotent (CONVENTIONS rule 7): a missing object is already gone.
 * EndpointOperInfo must never fail for an unknown endpoint (a failure stops `docker run`).
 */
export const NETWORK_NOT_FOUND_POLICY: Readonly<Partial<Record<api.NetworkMethod, NotFoundPolicy>>> = {
  DeleteNetwork: 'success',
  FreeNetwork: 'success',
  DeleteEndpoint: 'success',
  Leave: 'success',
  RevokeExternalConnectivity: 'success',
  DiscoverDelete: 'success',
  EndpointOperInfo: 'empty-info',
};

const EMPTY: api.EmptyResponse = {};

function logUnknown(ctx: RequestContext, method: string, unknown: string[]): void {
  if (unknown.length > 0) ctx.log.info({ requestId: ctx.requestId, method, keys: unknown }, 'option keys not known to the plugin layer');
}

function ref(body: Record<string, unknown>): EndpointRef {
  return {
    networkId: bodyField(body, 'NetworkID', parseObjectId),
    endpointId: bodyField(body, 'EndpointID', parseObjectId),
  };
}

function parseIpamList(body: Record<string, unknown>, name: string, family: 4 | 6): IpamData[] {
  const raw = body[name];
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw badField(name, raw, 'must be a JSON array');
  return raw.map((entry, i) => {
    const fail: Fail = (why) => badField(`${name}[${i}]`, entry, why);
    const e = asRecord(entry, fail);
    if (!e) throw fail('must be a JSON object');
    const pool = parseNetworkCidr(e.Pool, (why) => fail(`Pool ${why}`));
    if (familyOf(pool.split('/')[0]) !== family) throw fail(`Pool must be IPv${family}`);
    const gateway = e.Gateway ? parseAddressCidr(e.Gateway, (why) => fail(`Gateway ${why}`)) : undefined;
    if (gateway && familyOf(gateway.split('/')[0]!) !== family) throw fail(`Gateway must be IPv${family}`);
    const auxAddresses: Record<string, string> = {};
    for (const [k, v] of Object.entries(asRecord(e.AuxAddresses, (why) => fail(`AuxAddresses ${why}`)) ?? {})) {
      auxAddresses[k] = parseAddressCidr(v, (why) => fail(`AuxAddresses.${k} ${why}`));
      if (familyOf(auxAddresses[k]!.split('/')[0]!) !== family) throw fail(`AuxAddresses.${k} must be IPv${family}`);
    }
    const addressSpace = typeof e.AddressSpace === 'string' ? e.AddressSpace : '';
    return { addressSpace, pool, gateway, auxAddresses };
  });
}

/** address/prefix of one family (the engine's Address is IPv4, AddressIPv6 IPv6). */
const addressOf = (family: 4 | 6) => (value: unknown, fail: Fail): string => {
  const cidr = parseAddressCidr(value, fail);
  if (familyOf(cidr.split('/')[0]!) !== family) throw fail(`must be an IPv${family} address/prefix`);
  return cidr;
};

function parseInterface(raw: unknown): EndpointInterface {
  const iface = asRecord(raw, (why) => badField('Interface', raw, why)) ?? {};
  return {
    address: optionalField(iface, 'Address', addressOf(4)),
    addressIPv6: optionalField(iface, 'AddressIPv6', addressOf(6)),
    macAddress: optionalField(iface, 'MacAddress', parseMac),
  };
}

/**
 * The reply to CreateEndpoint. The engine refuses any field it already set, even unchanged
 * (libnetwork SetMacAddress/SetIPAddress), so set fields are dropped when equal and a
 * different value is a backend bug reported as an internal error.
 */
export function endpointReply(given: EndpointInterface, result: CreateEndpointResult | undefined): api.CreateEndpointResponse {
  const out: api.WireEndpointInterface = {};
  const internal = (why: string) => new PluginError('bad-driver-reply', 'internal', `driver returned ${why}`);
  const fields: Array<[keyof EndpointInterface, keyof api.WireEndpointInterface]> = [
    ['address', 'Address'],
    ['addressIPv6', 'AddressIPv6'],
    ['macAddress', 'MacAddress'],
  ];
  for (const [name, wire] of fields) {
    const value = result?.interface?.[name];
    if (!value) continue;
    const parsed = name === 'macAddress' ? parseMac(value, internal) : parseAddressCidr(value, internal);
    if (given[name] === undefined) out[wire] = parsed;
    else if (given[name] !== parsed) throw internal(`${name} ${parsed} but the engine set ${given[name]}`);
  }
  return Object.keys(out).length > 0 ? { Interface: out } : {};
}

/** The reply to Join: gateways as bare IPs, routes as RouteType 0/1. */
export function joinReply(result: JoinResult): api.JoinResponse {
  const internal = (why: string) => new PluginError('bad-driver-reply', 'internal', `driver returned ${why}`);
  const bareIp = (v: string) => parseIp(v.replace(/\/\d+$/, ''), (why) => internal(`gateway ${JSON.stringify(v)}: ${why}`));
  const reply: api.JoinResponse = {};
  if (result.interfaceName) {
    reply.InterfaceName = {
      SrcName: parseIfName(result.interfaceName.srcName, (why) => internal(`SrcName ${why}`)),
      DstPrefix: parseIfName(result.interfaceName.dstPrefix, (why) => internal(`DstPrefix ${why}`), 12),
    };
  }
  if (result.gateway) reply.Gateway = bareIp(result.gateway);
  if (result.gatewayIPv6) reply.GatewayIPv6 = bareIp(result.gatewayIPv6);
  if (result.staticRoutes?.length) {
    reply.StaticRoutes = result.staticRoutes.map((r) => ({
      Destination: parseNetworkCidr(r.destination, (why) => internal(`route ${why}`)),
      RouteType: r.type === 'connected' ? 1 : 0,
      ...(r.type === 'nexthop' && r.nextHop ? { NextHop: bareIp(r.nextHop) } : {}),
    }));
  }
  if (result.disableGatewayService) reply.DisableGatewayService = true;
  return reply;
}

function parseDiscovery(body: Record<string, unknown>): DiscoveryInput {
  const discoveryType = bodyField(body, 'DiscoveryType', (v, fail) => {
    if (typeof v !== 'number' || !Number.isInteger(v)) throw fail('must be an integer');
    return v;
  });
  const data = asRecord(body.DiscoveryData, (why) => badField('DiscoveryData', body.DiscoveryData, why));
  if (discoveryType !== 1 || !data) return { discoveryType };
  const address = bodyField(data, 'Address', parseIp);
  return { discoveryType, node: { address, self: data.self === true } };
}

function stringMap(body: Record<string, unknown>, name: string): Record<string, string> {
  const raw = asRecord(body[name], (why) => badField(name, body[name], why)) ?? {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v !== 'string') throw badField(`${name}.${k}`, v, 'must be a string');
    out[k] = v;
  }
  return out;
}

/** The /NetworkDriver.* method table for one driver backend. */
export function networkHandlers(backend: NetworkDriverBackend): Record<api.NetworkMethod, MethodHandler> {
  return { ...networkLevel(backend), ...endpointLevel(backend) };
}

type NetworkLevel = 'GetCapabilities' | 'CreateNetwork' | 'DeleteNetwork' | 'AllocateNetwork' | 'FreeNetwork' | 'DiscoverNew' | 'DiscoverDelete';

function networkLevel(backend: NetworkDriverBackend): Record<NetworkLevel, MethodHandler> {
  return {
    GetCapabilities: async () => {
      const caps = backend.capabilities;
      const reply: api.NetworkCapabilitiesResponse = { Scope: caps.scope };
      if (caps.connectivityScope) reply.ConnectivityScope = caps.connectivityScope;
      return reply;
    },
    CreateNetwork: async (body, ctx) => {
      const networkId = bodyField(body, 'NetworkID', parseObjectId);
      const { value: options, unknown } = parseNetworkOptions(body.Options);
      logUnknown(ctx, 'CreateNetwork', unknown);
      const ipv4 = parseIpamList(body, 'IPv4Data', 4);
      const ipv6 = parseIpamList(body, 'IPv6Data', 6);
      await backend.createNetwork({ networkId, options, ipv4, ipv6 }, ctx);
      return EMPTY;
    },
    DeleteNetwork: async (body, ctx) => {
      await backend.deleteNetwork({ networkId: bodyField(body, 'NetworkID', parseObjectId) }, ctx);
      return EMPTY;
    },
    AllocateNetwork: async (body, ctx) => {
      const networkId = bodyField(body, 'NetworkID', parseObjectId);
      const options = stringMap(body, 'Options');
      const ipv4 = parseIpamList(body, 'IPv4Data', 4);
      const ipv6 = parseIpamList(body, 'IPv6Data', 6);
      const out = backend.allocateNetwork ? await backend.allocateNetwork({ networkId, options, ipv4, ipv6 }, ctx) : {};
      const reply: api.AllocateNetworkResponse = { Options: out ?? {} };
      return reply;
    },
    FreeNetwork: async (body, ctx) => {
      const networkId = bodyField(body, 'NetworkID', parseObjectId);
      if (backend.freeNetwork) await backend.freeNetwork({ networkId }, ctx);
      return EMPTY;
    },
    DiscoverNew: async (body, ctx) => {
      const input = parseDiscovery(body);
      if (backend.discoverNew) await backend.discoverNew(input, ctx);
      return EMPTY;
    },
    DiscoverDelete: async (body, ctx) => {
      const input = parseDiscovery(body);
      if (backend.discoverDelete) await backend.discoverDelete(input, ctx);
      return EMPTY;
    },
  };
}

function endpointLevel(backend: NetworkDriverBackend): Record<Exclude<api.NetworkMethod, NetworkLevel>, MethodHandler> {
  return {
    CreateEndpoint: async (body, ctx) => {
      const iface = parseInterface(body.Interface);
      const { value: options, unknown } = parseEndpointOptions(body.Options);
      logUnknown(ctx, 'CreateEndpoint', unknown);
      const result = await backend.createEndpoint({ ...ref(body), interface: iface, options }, ctx);
      return endpointReply(iface, result);
    },
    EndpointOperInfo: async (body, ctx) => {
      const value = await backend.endpointOperInfo(ref(body), ctx);
      const reply: api.EndpointOperInfoResponse = { Value: value ?? {} };
      return reply;
    },
    DeleteEndpoint: async (body, ctx) => {
      await backend.deleteEndpoint(ref(body), ctx);
      return EMPTY;
    },
    Join: async (body, ctx) => {
      const sandboxKey = bodyField(body, 'SandboxKey', (v, fail) => {
        if (typeof v !== 'string' || !v.startsWith('/') || v.includes('\0') || v.length > 4096) {
          throw fail('must be an absolute path');
        }
        return v;
      });
      const { value: options, unknown } = parseEndpointOptions(body.Options);
      logUnknown(ctx, 'Join', unknown);
      return joinReply(await backend.join({ ...ref(body), sandboxKey, options }, ctx));
    },
    Leave: async (body, ctx) => {
      await backend.leave(ref(body), ctx);
      return EMPTY;
    },
    ProgramExternalConnectivity: async (body, ctx) => {
      const { value: options, unknown } = parseEndpointOptions(body.Options);
      logUnknown(ctx, 'ProgramExternalConnectivity', unknown);
      await backend.programExternalConnectivity({ ...ref(body), options }, ctx);
      return EMPTY;
    },
    RevokeExternalConnectivity: async (body, ctx) => {
      await backend.revokeExternalConnectivity(ref(body), ctx);
      return EMPTY;
    },
  };
}
