/**
 * Zero-config flags of the HTTPS listener: `rampart serve --upstream URL --tls-cert FILE
 * --tls-key FILE [--mtls require|optional --client-ca FILE]` → the top-level `tls` block.
 */
import { resolve } from 'node:path';

/** The TLS flags of `rampart serve`. */
export interface TlsZeroOptions {
  tlsCert?: string;
  tlsKey?: string;
  /** `off`, `optional` or `require`. */
  mtls?: string;
  /** Client CA bundles (repeatable). */
  clientCa?: string[];
}

/**
 * The `tls` block for the flags, or undefined when none is given. Paths become absolute
 * (against the working directory).
 * @throws {Error} when the flags are incomplete or contradictory.
 */
export function transportZeroTls(o: TlsZeroOptions, cwd = process.cwd()): Record<string, unknown> | undefined {
  const ca = o.clientCa ?? [];
  if (o.tlsCert === undefined && o.tlsKey === undefined && o.mtls === undefined && ca.length === 0) return undefined;
  if (o.tlsCert === undefined || o.tlsKey === undefined) throw new Error('--tls-cert and --tls-key go together (and --mtls / --client-ca need them)');
  const mode = o.mtls ?? (ca.length ? 'require' : 'off');
  if (mode !== 'off' && mode !== 'optional' && mode !== 'require') throw new Error(`--mtls must be require, optional or off (got "${mode}")`);
  if (mode !== 'off' && ca.length === 0) throw new Error('--mtls needs --client-ca FILE (the CA bundle trusted for client certificates)');
  return {
    cert: resolve(cwd, o.tlsCert),
    key: resolve(cwd, o.tlsKey),
    client_auth: { mode, ca: ca.map((f) => resolve(cwd, f)) },
  };
}
