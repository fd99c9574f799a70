// `-o key=value` of `tsoverlay network create`: the driver's own keys (plugins/drivers/*/config.ts)
// and the Docker spellings a `docker network create` user types, mapped onto them. A key neither
// knows is refused naming it (the drivers themselves only warn and ignore).
import { BRIDGE_OPTION_KEYS } from '../plugins/drivers/bridge/config.js';
import { HOST_OPTION_KEYS } from '../plugins/drivers/host/config.js';
import { OVERLAY_OPTION_KEYS } from '../plugins/drivers/overlay/config.js';
import { CodedError } from '../store/errors.js';

/** The drivers `--driver` names (the plugin names Docker and CNI know them by). */
export const DRIVERS = ['tsbridge', 'tsoverlay', 'tshost'] as const;
export type CliDriver = (typeof DRIVERS)[number];

/** Docker's option spellings → the driver keys (each only where that driver has the key). */
const DOCKER_SPELLINGS: Readonly<Record<string, string>> = {
  'com.docker.network.bridge.name': 'bridge',
  'com.docker.network.driver.mtu': 'mtu',
  'com.docker.network.bridge.enable_icc': 'icc',
  'com.docker.network.bridge.enable_ip_masquerade': 'masquerade',
  'com.docker.network.bridge.host_binding_ipv4': 'hostBindingIpv4',
  'com.docker.network.driver.overlay.vxlanid_list': 'vni',
};

/** The driver keys `-o` may set for each driver. */
export function optionKeys(driver: CliDriver): readonly string[] {
  return driver === 'tsbridge' ? BRIDGE_OPTION_KEYS : driver === 'tsoverlay' ? OVERLAY_OPTION_KEYS : HOST_OPTION_KEYS;
}

/** A `-o` the driver does not have. */
export class OptionError extends CodedError<'invalid-argument'> {
  constructor(message: string) {
    super('OptionError', 'invalid-argument', 'bad-request', message, false);
  }
}

/** `-o` pairs as driver options; an unknown key (or one given twice under two spellings) names itself. */
export function mapOptions(driver: CliDriver, given: Readonly<Record<string, string>>): Record<string, string> {
  const keys = optionKeys(driver);
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(given)) {
    const k = keys.includes(key) ? key : DOCKER_SPELLINGS[key];
    if (k === undefined || !keys.includes(k)) {
      throw new OptionError(`-o ${JSON.stringify(`${key}=${value}`)}: not an option of the ${driver} driver (known: ${keys.join(', ')})`);
    }
    if (k in out) throw new OptionError(`-o ${JSON.stringify(`${key}=${value}`)}: ${k} is given twice`);
    out[k] = value;
  }
  return out;
}
