/**
 * How the gateway wires transport settings that span the listener and the APIs:
 *
 * - the listener's `tls.client_auth` is a floor for every API: each API gets a `transport`
 *   control whose mode is the stricter of the two, with the listener's CRLs, denied serials and
 *   client CAs (as CRL issuers) added — an API cannot opt out of listener-level mutual TLS;
 * - the listener requests a client certificate when the listener or any API uses one, and
 *   trusts the union of the listener's and the APIs' client CAs in the handshake;
 * - relative file paths of upstream TLS settings are resolved against the configuration directory.
 */
import { resolve } from 'node:path';
import type { RampartConfig } from '../../config/schema.ts';
import type { TransportConfig } from './index.ts';
import { MODE_RANK } from './index.ts';

type TransportRaw = Partial<TransportConfig> & Record<string, unknown>;

function transportOf(api: RampartConfig['apis'][number]): TransportRaw | false | undefined {
  return (api.controls as Record<string, unknown>).transport as TransportRaw | false | undefined;
}

/**
 * Returns a copy of `config` with the listener's client authentication merged into each API's
 * `transport` control and upstream TLS paths made absolute. `config` itself is not changed.
 */
export function prepareTransport(config: RampartConfig, dir: string): RampartConfig {
  const ca = config.tls?.client_auth;
  const floor = ca && (ca.mode !== 'off' || ca.crl.length > 0 || ca.deny_serials.length > 0) ? ca : undefined;
  const apis = config.apis.map((api) => {
    let out = api;
    if (floor) {
      const t = transportOf(api);
      const mine: TransportRaw = t === false || t === undefined ? {} : t;
      const mode = mine.mtls && MODE_RANK[mine.mtls] > MODE_RANK[floor.mode] ? mine.mtls : floor.mode;
      const merged: TransportRaw = {
        ...mine,
        mtls: mode,
        crl: [...floor.crl, ...(mine.crl ?? [])],
        crl_ca: [...floor.ca, ...(mine.crl_ca ?? [])],
        deny_serials: [...floor.deny_serials, ...(mine.deny_serials ?? [])],
      };
      out = { ...out, controls: { ...api.controls, transport: merged } };
    }
    const ut = api.upstream.tls;
    if (ut) {
      const abs = (p: string | undefined) => (p === undefined ? undefined : resolve(dir, p));
      out = { ...out, upstream: { ...out.upstream, tls: { ...ut, ca: ut.ca?.map((p) => resolve(dir, p)), cert: abs(ut.cert), key: abs(ut.key) } } };
    }
    return out;
  });
  return { ...config, apis };
}

/**
 * Whether the listener should request a client certificate, and which extra CA bundles
 * (absolute paths) it trusts in the handshake, for a prepared configuration.
 */
export function listenerClientAuth(prepared: RampartConfig, dir: string): { requestCert: boolean; extraClientCa: string[] } {
  let requestCert = (prepared.tls?.client_auth.mode ?? 'off') !== 'off';
  const extra = new Set<string>();
  for (const api of prepared.apis) {
    const t = transportOf(api);
    if (!t) continue;
    if (
      (t.mtls ?? 'off') !== 'off' ||
      (t.allow_spiffe_ids?.length ?? 0) > 0 ||
      (t.rules?.length ?? 0) > 0 ||
      (t.pins?.cert_sha256.length ?? 0) > 0 ||
      (t.pins?.spki_sha256.length ?? 0) > 0 ||
      (t.identity ?? 'none') !== 'none'
    ) {
      requestCert = true;
    }
    for (const f of t.ca ?? []) extra.add(resolve(dir, f));
  }
  return { requestCert, extraClientCa: [...extra] };
}
