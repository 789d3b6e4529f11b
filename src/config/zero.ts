/**
 * Zero-configuration mode (`rampart serve --upstream URL`): builds a configuration object with
 * secure defaults and no file, the way `caddy reverse-proxy --to` does. Every control that needs
 * no site-specific settings is on (through its default configuration); flags of later controls
 * add their settings here.
 */
import { CONTROLS } from '../controls/index.ts';
import { type NetworkZeroOptions, networkZeroConfig } from '../controls/network/zero.ts';

/** Flags of `rampart serve` that shape a zero-config configuration. */
export interface ZeroConfigOptions {
  upstream: string;
  listen?: string;
  admin?: string;
  trustedProxies?: string[];
  workers?: number | 'auto';
  /** Turn every control off (benchmark baseline only). */
  noControls?: boolean;
  /** Extra per-API controls from later flags (`--openapi`, `--issuer`, `--rate-limit`, ...). */
  controls?: Record<string, unknown>;
  /** Extra top-level settings from later flags (e.g. `state.store`). */
  extra?: Record<string, unknown>;
  /** `--allow-ip`, `--deny-ip`, `--geo-allow`, `--geo-deny`: the `network` control. */
  network?: NetworkZeroOptions;
}

/** Returns the configuration object (unvalidated; the loader validates it like a file). */
export function zeroConfig(o: ZeroConfigOptions): Record<string, unknown> {
  const controls: Record<string, unknown> = { ...(o.controls ?? {}) };
  if (o.noControls) for (const c of CONTROLS) if (c.defaultConfig !== undefined) controls[c.name] = false;
  const network = o.network ? networkZeroConfig(o.network) : undefined;
  if (network) controls.network = network;
  return {
    listen: o.listen ?? '127.0.0.1:8080',
    admin: { listen: o.admin ?? '127.0.0.1:9901' },
    trusted_proxies: o.trustedProxies ?? [],
    workers: o.workers ?? 1,
    ...(o.extra ?? {}),
    apis: [{ name: 'default', upstream: { targets: [o.upstream] }, controls }],
  };
}
