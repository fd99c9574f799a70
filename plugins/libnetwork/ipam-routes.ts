// Translates /IpamDriver.* bodies into typed IpamBackend calls and results into wire replies.

import type * as api from './api.js';
import type { IpamBackend, IpamCapabilities, RequestContext } from './backend.js';
import { badField, badRequest, PluginError } from './errors.js';
import type { MethodHandler, NotFoundPolicy } from './network-routes.js';
import { parseAddressOptions, parsePoolOptions } from './options.js';
import {
  bodyField,
  cidrContains,
  familyOf,
  optionalField,
  parseAddressCidr,
  parseIp,
  parseNetworkCidr,
  type Fail,
} from './values.js';

/** Releases are idempotent: releasing what is not held succeeds. */
export const IPAM_NOT_FOUND_POLICY: Readonly<Partial<Record<api.IpamMethod, NotFoundPolicy>>> = {
  ReleasePool: 'success',
  ReleaseAddress: 'success',
};

/** See IpamCapabilities for why both default to false. */
export const DEFAULT_IPAM_CAPABILITIES: IpamCapabilities = { requiresMacAddress: false, requiresRequestReplay: false };

function parsePoolId(value: unknown, fail: Fail): string {
  if (typeof value !== 'string' || !/^[\x21-\x7e]{1,256}$/.test(value)) throw fail('must be 1..256 printable characters');
  return value;
}

function parseAddressSpace(value: unknown, fail: Fail): string {
  if (typeof value !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(value)) {
    throw fail('must be 1..64 characters of [A-Za-z0-9_.-]');
  }
  return value;
}

function logUnknown(ctx: RequestContext, method: string, unknown: string[]): void {
  if (unknown.length > 0) ctx.log.info({ requestId: ctx.requestId, method, keys: unknown }, 'option keys not known to the plugin layer');
}

function dataOf(data: Record<string, string> | undefined): Record<string, string> {
  return data ?? {};
}

const badReply = (what: string) => (why: string) => new PluginError('bad-ipam-reply', 'internal', `IPAM returned ${what}: ${why}`);

/** The /IpamDriver.* method table for an IPAM backend. */
export function ipamHandlers(backend: IpamBackend): Record<api.IpamMethod, MethodHandler> {
  const caps = { ...DEFAULT_IPAM_CAPABILITIES, ...backend.capabilities };
  return {
    GetCapabilities: async () => {
      const reply: api.IpamCapabilitiesResponse = {
        RequiresMACAddress: caps.requiresMacAddress,
        RequiresRequestReplay: caps.requiresRequestReplay,
      };
      return reply;
    },
    GetDefaultAddressSpaces: async (_body, ctx) => {
      const spaces = await backend.getDefaultAddressSpaces(ctx);
      const reply: api.DefaultAddressSpacesResponse = {
        LocalDefaultAddressSpace: spaces.local,
        GlobalDefaultAddressSpace: spaces.global,
      };
      return reply;
    },
    RequestPool: async (body, ctx) => {
      const addressSpace = bodyField(body, 'AddressSpace', parseAddressSpace);
      const pool = optionalField(body, 'Pool', parseNetworkCidr);
      const subPool = optionalField(body, 'SubPool', parseNetworkCidr);
      if (subPool && !pool) throw badRequest('invalid-field', `SubPool ${subPool} given without Pool`);
      if (subPool && pool && !cidrContains(pool, subPool)) {
        throw badField('SubPool', subPool, `must lie inside Pool ${pool}`);
      }
      if (body.V6 !== undefined && body.V6 !== null && typeof body.V6 !== 'boolean') throw badField('V6', body.V6, 'must be a boolean');
      const v6 = pool ? familyOf(pool.split('/')[0]) === 6 : body.V6 === true;
      const { value: options, unknown } = parsePoolOptions(body.Options);
      logUnknown(ctx, 'RequestPool', unknown);
      const result = await backend.requestPool({ addressSpace, pool, subPool, options, v6 }, ctx);
      const reply: api.RequestPoolResponse = {
        PoolID: parsePoolId(result.poolId, badReply('PoolID')),
        Pool: parseNetworkCidr(result.pool, badReply('Pool')),
        Data: dataOf(result.data),
      };
      return reply;
    },
    ReleasePool: async (body, ctx) => {
      await backend.releasePool({ poolId: bodyField(body, 'PoolID', parsePoolId) }, ctx);
      return {};
    },
    RequestAddress: async (body, ctx) => {
      const poolId = bodyField(body, 'PoolID', parsePoolId);
      const address = optionalField(body, 'Address', parseIp);
      const { value: options, unknown } = parseAddressOptions(body.Options);
      logUnknown(ctx, 'RequestAddress', unknown);
      const result = await backend.requestAddress({ poolId, address, options }, ctx);
      const reply: api.RequestAddressResponse = {
        Address: parseAddressCidr(result.address, badReply('Address')),
        Data: dataOf(result.data),
      };
      return reply;
    },
    ReleaseAddress: async (body, ctx) => {
      const poolId = bodyField(body, 'PoolID', parsePoolId);
      const address = bodyField(body, 'Address', parseIp);
      await backend.releaseAddress({ poolId, address }, ctx);
      return {};
    },
  };
}
