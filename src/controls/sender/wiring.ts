/**
 * How the gateway wires the `sender` control's DPoP settings into the `identity` control of the
 * same API (the pattern of ../transport/wiring.ts and ../network/wiring.ts): identity answers a
 * request without credentials, before the sender stage runs, and RFC 9449 §7.1 wants that 401 to
 * offer the `DPoP` scheme with the accepted proof algorithms (`algs`) when the API takes
 * DPoP-bound tokens. The identity control gets them as its internal `dpop_algs` setting.
 */
import type { RampartConfig } from '../../config/schema.ts';
import { DEFAULT_DPOP_ALGORITHMS, type SenderConfigInput } from './index.ts';

/**
 * Returns a copy of `config` in which every API that has an `identity` control and accepts DPoP
 * (the `sender` control is on by default, `dpop.enabled` defaults to true) carries the sender's
 * proof algorithms as `identity.dpop_algs`. `config` itself is not changed; when no API qualifies
 * it is returned as is.
 */
export function prepareSender(config: RampartConfig): RampartConfig {
  let changed = false;
  const apis = config.apis.map((api) => {
    const controls = api.controls as Record<string, unknown>;
    const identity = controls.identity;
    const sender = controls.sender as SenderConfigInput | false | undefined;
    if (typeof identity !== 'object' || identity === null) return api; // absent or `identity: false`
    if (sender === false || sender?.dpop?.enabled === false) return api;
    changed = true;
    const algs = sender?.dpop?.algorithms ?? DEFAULT_DPOP_ALGORITHMS;
    return { ...api, controls: { ...api.controls, identity: { ...(identity as object), dpop_algs: [...algs] } } };
  });
  return changed ? { ...config, apis } : config;
}
