/**
 * How the gateway wires the top-level, gateway-wide `network` block into the APIs (the pattern of
 * ../transport/wiring.ts for the listener's `tls.client_auth`): every API gets a `network` control
 * whose `gateway` rules are the top-level block, checked before the API's own rules. An API cannot
 * opt out: `network: false` becomes a control with only the gateway rules.
 *
 * Deny anywhere wins (a gateway-wide deny refuses the client whatever the API allows); a client
 * must pass every allow list that applies (gateway, API, route), so an API's allow list narrows
 * the gateway's. Relative list-file paths resolve against the configuration directory, like the
 * API's own. The API listener is the gateway's only one (HTTP, or HTTPS with `tls`), so
 * gateway-wide rules are the per-listener rules.
 */
import type { RampartConfig } from '../../config/schema.ts';
import type { GatewayNetworkConfig, NetworkConfigInput } from './index.ts';

/** Whether the block has any rule (an empty block changes nothing). */
function hasRules(n: Partial<GatewayNetworkConfig> | undefined): n is GatewayNetworkConfig {
  if (!n) return false;
  return (
    (n.allow?.length ?? 0) > 0 ||
    (n.deny?.length ?? 0) > 0 ||
    (n.allow_files?.length ?? 0) > 0 ||
    (n.deny_files?.length ?? 0) > 0 ||
    (n.allow_countries?.length ?? 0) > 0 ||
    (n.deny_countries?.length ?? 0) > 0
  );
}

/**
 * The top-level `network` block when it has any rule, as the `network` control configuration that
 * enforces it alone (`{ gateway: block }`); `undefined` otherwise. The gateway runs this control
 * for requests that match no API, so a denied client gets 403 there too, not a 404 that tells it
 * which paths are routed.
 */
export function gatewayFloor(config: RampartConfig): NetworkConfigInput | undefined {
  const floor = (config as { network?: GatewayNetworkConfig }).network;
  return hasRules(floor) ? { gateway: floor } : undefined;
}

/**
 * Returns a copy of `config` with the top-level `network` block set as the `gateway` rules of each
 * API's `network` control (replacing any `gateway` an API set itself). `config` itself is not
 * changed; without a top-level block (or with an empty one) `config` is returned as is.
 */
export function prepareNetwork(config: RampartConfig): RampartConfig {
  const floor = gatewayFloor(config);
  if (floor === undefined) return config;
  const apis = config.apis.map((api) => {
    const mine = (api.controls as Record<string, unknown>).network as NetworkConfigInput | false | undefined;
    const merged: NetworkConfigInput = { ...(mine === false || mine === undefined ? {} : mine), ...floor };
    return { ...api, controls: { ...api.controls, network: merged } };
  });
  return { ...config, apis };
}
