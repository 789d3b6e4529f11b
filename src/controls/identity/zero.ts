/**
 * Zero-config identity: `rampart serve --upstream URL --issuer URL --audience AUD` protects the
 * upstream with JWT access tokens from that issuer, keys found by OpenID Connect Discovery
 * (`{issuer}/.well-known/openid-configuration` → `jwks_uri`), default algorithms (asymmetric
 * only), 30 s clock skew, the credential stripped before the upstream.
 */
import type { IdentityConfigInput } from './index.ts';

/** Options of {@link identityZeroConfig}. */
export interface IdentityZeroOptions {
  /** Issuer URL (https, or http on loopback); exactly the `iss` of its tokens. */
  issuer: string;
  /** Accepted audience(s): the resource indicator of the protected API (RFC 8707, RFC 9068 §4). */
  audience: string | string[];
  /** Scopes every request must carry (none by default). */
  scopes?: string[];
}

/**
 * The `identity` control configuration (input form, to be placed under an API's
 * `controls.identity`) for zero-config mode. Pure: no network access; discovery happens when the
 * control is created, and a provider that is down then only makes `/readyz` report it.
 * @throws {Error} when `issuer` or `audience` is empty.
 */
export function identityZeroConfig(opts: IdentityZeroOptions): IdentityConfigInput {
  const audiences = Array.isArray(opts.audience) ? opts.audience : [opts.audience];
  if (!opts.issuer) throw new Error('--issuer is required for token protection');
  if (audiences.length === 0 || audiences.some((a) => a === '')) throw new Error('--audience is required with --issuer');
  return {
    providers: { jwt: { issuer: opts.issuer, audiences } },
    require: { scopes: opts.scopes ?? [] },
  };
}
