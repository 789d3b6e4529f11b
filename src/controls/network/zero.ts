/**
 * Zero-config network rules: `rampart serve --upstream URL --allow-ip CIDR --deny-ip CIDR
 * --geo-allow CC --geo-deny CC` (each repeatable) become the API's `controls.network`.
 */
import type { NetworkConfigInput } from './index.ts';

/** Flags of {@link networkZeroConfig}; every list may be empty or absent. */
export interface NetworkZeroOptions {
  /** `--allow-ip`: addresses/CIDRs that may call (nothing else may). */
  allowIp?: readonly string[];
  /** `--deny-ip`: addresses/CIDRs that may not call. */
  denyIp?: readonly string[];
  /** `--geo-allow`: ISO 3166-1 alpha-2 countries that may call (unknown locations are refused). */
  geoAllow?: readonly string[];
  /** `--geo-deny`: countries that may not call. */
  geoDeny?: readonly string[];
}

/**
 * The `network` control configuration (input form, validated later by the loader like a file),
 * or `undefined` when no flag was given. Country codes are upper-cased; nothing else is checked
 * here, so a bad value is reported by the configuration loader with the setting's path.
 */
export function networkZeroConfig(o: NetworkZeroOptions): NetworkConfigInput | undefined {
  const cfg: NetworkConfigInput = {};
  if (o.allowIp?.length) cfg.allow = [...o.allowIp];
  if (o.denyIp?.length) cfg.deny = [...o.denyIp];
  if (o.geoAllow?.length) cfg.allow_countries = o.geoAllow.map((c) => c.toUpperCase());
  if (o.geoDeny?.length) cfg.deny_countries = o.geoDeny.map((c) => c.toUpperCase());
  return Object.keys(cfg).length ? cfg : undefined;
}
