/**
 * `sender` control: sender-constrained access tokens. Runs in the `identity` phase right after
 * the `identity` control (registry order) and reads `ctx.identity.cnf`:
 *
 * - certificate-bound tokens (RFC 8705 §3): a token with `cnf["x5t#S256"]` is accepted only over
 *   a TLS connection whose client certificate has that thumbprint (`ctx.tls.peerCertificate`);
 * - DPoP (RFC 9449): `Authorization: DPoP <token>` with a `DPoP` proof (see `dpop.ts`); a token
 *   with `cnf.jkt` is accepted only that way (§7.1: no downgrade to `Bearer`, §7.2);
 * - `require: true` refuses bearer-only credentials (no verified DPoP or mTLS binding).
 *
 * On by default: a bound token is always checked against its binding (secure by default); a
 * plain bearer token passes unless `require` is set. Verified methods are appended to
 * `ctx.identity.methods` (`dpop`, `mtls`) and the DPoP proof is removed before the upstream.
 *
 * OWASP API Security Top 10 2023 API2 (broken authentication: stolen tokens replayed).
 */
import { z } from 'zod';
import type { RequestContext } from '../../pipeline/context.ts';
import { defineControl, type ControlEnv, type ControlInstance } from '../../pipeline/control.ts';
import { deny, type Verdict } from '../../pipeline/verdict.ts';
import { DPOP_ALGORITHMS, DpopVerifier, normalizeHtu, sameThumbprint } from './dpop.ts';
import { SenderError, invalidBinding, toProblem } from './errors.ts';
import { DpopNonces } from './nonce.ts';

/** Default accepted DPoP proof algorithms (RFC 9449 §4.2 requires asymmetric ones). */
export const DEFAULT_DPOP_ALGORITHMS: DpopAlgorithm[] = ['ES256', 'ES384', 'EdDSA', 'Ed25519', 'PS256', 'RS256'];
type DpopAlgorithm = (typeof DPOP_ALGORITHMS)[number];

export const senderSchema = z.strictObject({
  /** Refuse credentials that are not sender-constrained (bearer-only tokens, API keys). */
  require: z.boolean().default(false),
  /** Which bindings satisfy `require`. */
  accept: z
    .array(z.enum(['dpop', 'mtls']))
    .min(1)
    .default(['dpop', 'mtls']),
  dpop: z
    .strictObject({
      /** Accept the `DPoP` authorization scheme with proofs; when false a DPoP-bound token is refused. */
      enabled: z.boolean().default(true),
      algorithms: z.array(z.enum(DPOP_ALGORITHMS)).min(1).default(DEFAULT_DPOP_ALGORITHMS),
      /** Maximum age of a proof (`iat`), seconds. */
      max_age_seconds: z.number().int().positive().max(3600).default(60),
      /** Clock tolerance for `iat`, seconds. */
      clock_skew_seconds: z.number().int().nonnegative().max(300).default(5),
      /** Maximum proof length, bytes. */
      max_proof_bytes: z.number().int().positive().default(8192),
      /**
       * The external origin clients address (e.g. `https://api.example.com`) when it differs from
       * what the gateway sees (`Host`, `X-Forwarded-Proto/Host` from trusted proxies). `htu` is
       * compared with this origin plus the request path.
       */
      public_origin: z.url({ protocol: /^https?$/ }).optional(),
      /** Server nonces (RFC 9449 §9): proofs must carry a nonce from `DPoP-Nonce`. */
      nonce: z
        .strictObject({
          required: z.boolean().default(false),
          /** Window length, ms; a nonce is accepted for one to two windows. */
          window_ms: z.number().int().min(1000).default(300000),
        })
        .prefault({}),
      /** When the replay cache (state store) fails: `closed` answers 503, `open` skips the check. */
      on_store_error: z.enum(['closed', 'open']).default('closed'),
      /** Forward the `DPoP` proof header to the upstream (removed by default). */
      forward_proof: z.boolean().default(false),
    })
    .prefault({}),
  /** `realm` of the challenges (default: the API name). */
  realm: z.string().optional(),
});
export type SenderConfig = z.output<typeof senderSchema>;
export type SenderConfigInput = z.input<typeof senderSchema>;

const AUTH_SCHEME = /^([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*) +([A-Za-z0-9\-._~+/]+=*) *$/;

/** The sender-constraint check for one API, usable without the pipeline (tests, benches). */
export interface SenderEngine {
  run(ctx: RequestContext): Promise<Verdict>;
}

/**
 * Builds the sender-constraint check for one API.
 * @throws {Error} never for a schema-valid configuration.
 */
export function createSender(cfg: SenderConfig, env: ControlEnv): SenderEngine {
  const info = { realm: cfg.realm ?? env.apiName, algs: cfg.dpop.algorithms.join(' ') };
  const dp = cfg.dpop;
  const storeFailure = (err: Error): void => {
    env.log.warn('sender: state store failed', { api: env.apiName, error: err.message });
  };
  const nonces = dp.nonce.required
    ? new DpopNonces({ store: env.store, scope: env.apiName, windowMs: dp.nonce.window_ms, onStoreError: storeFailure })
    : undefined;
  const verifier = new DpopVerifier({
    algorithms: dp.algorithms,
    maxAgeSeconds: dp.max_age_seconds,
    clockSkewSeconds: dp.clock_skew_seconds,
    maxProofBytes: dp.max_proof_bytes,
    store: env.store,
    scope: env.apiName,
    onStoreError: dp.on_store_error,
    nonces,
    onStoreFailure: storeFailure,
  });
  const origin = dp.public_origin !== undefined ? new URL(dp.public_origin).origin : undefined;
  const acceptDpop = cfg.accept.includes('dpop') && dp.enabled;
  const acceptMtls = cfg.accept.includes('mtls');
  const requiredChallenge = acceptDpop ? (acceptMtls ? 'both' : 'dpop') : 'bearer';

  async function check(ctx: RequestContext): Promise<void> {
    if (!dp.forward_proof) ctx.upstreamHeaders.set('dpop', null);
    const identity = ctx.identity;
    if (identity === undefined) {
      if (cfg.require)
        throw new SenderError(401, 'sender-constraint-required', 'Authentication required', 'Send a sender-constrained access token (DPoP or mutual TLS).', {
          challenge: requiredChallenge,
          severity: 'low',
        });
      return;
    }
    const cnf = identity.cnf;
    const jkt = typeof cnf?.jkt === 'string' ? cnf.jkt : undefined;
    const x5t = cnf?.['x5t#S256'];
    const authz = ctx.headers.authorization;
    const m = typeof authz === 'string' ? AUTH_SCHEME.exec(authz) : null;
    const scheme = m ? (m[1] as string).toLowerCase() : undefined;

    // DPoP (RFC 9449 §7.1).
    if (scheme === 'dpop') {
      if (!dp.enabled) throw invalidBinding('dpop-not-accepted', 'DPoP-bound access tokens are not accepted by this API.', 'bearer', 'medium');
      if (jkt === undefined) throw invalidBinding('token-not-dpop-bound', 'The access token is not bound to a DPoP key (no cnf.jkt).', 'dpop', 'medium');
      // HTTP/2 requests carry the authority in `:authority` (RFC 9113 §8.3.1), not always in Host.
      const authority = ctx.host !== '' ? ctx.host : String(ctx.headers[':authority'] ?? '');
      const uri = normalizeHtu(origin !== undefined ? origin + ctx.path : `${ctx.scheme}://${authority}${ctx.path}`);
      if (uri === undefined) throw invalidBinding('dpop-request-uri-invalid', 'The request URI cannot be determined (Host header).', 'dpop', 'low');
      const r = await verifier.verify({ proof: ctx.headers.dpop, method: ctx.method, uri, accessToken: m?.[2] as string, jkt });
      if (r.freshNonce !== undefined) ctx.responseHeaders.set('dpop-nonce', r.freshNonce);
      if (!identity.methods.includes('dpop')) identity.methods.push('dpop');
    } else if (jkt !== undefined) {
      // A DPoP-bound token without its proof: a stolen token replayed as a bearer token (§7.2).
      throw invalidBinding('dpop-proof-required', 'This access token is DPoP-bound: send it with the DPoP scheme and a proof.', 'dpop', 'high');
    }

    // Certificate-bound tokens (RFC 8705 §3).
    if (x5t !== undefined) {
      const cert = ctx.tls?.peerCertificate;
      if (typeof x5t !== 'string') throw invalidBinding('certificate-binding-invalid', 'The token\'s cnf "x5t#S256" is not a string.', 'bearer', 'medium');
      if (cert === undefined) {
        throw invalidBinding(
          'certificate-binding-missing',
          'This access token is bound to a client certificate; connect with that certificate (mutual TLS).',
          'bearer',
          'high',
        );
      }
      if (!sameThumbprint(cert.x5tS256, x5t)) {
        throw invalidBinding('certificate-binding-mismatch', 'The client certificate is not the one the access token is bound to.', 'bearer', 'high');
      }
      if (!identity.methods.includes('mtls')) identity.methods.push('mtls');
    }

    if (cfg.require) {
      const ok = (acceptDpop && identity.methods.includes('dpop')) || (acceptMtls && identity.methods.includes('mtls'));
      if (!ok) {
        throw invalidBinding(
          'sender-constraint-required',
          `This API accepts only sender-constrained access tokens (${cfg.accept.join(' or ')}); bearer-only credentials are refused.`,
          requiredChallenge,
          'medium',
        );
      }
    }
  }

  return {
    async run(ctx) {
      try {
        await check(ctx);
        return undefined;
      } catch (err) {
        if (err instanceof SenderError) return deny(toProblem(err, info), err.severity, err.details);
        throw err;
      }
    },
  };
}

export const senderControl = defineControl({
  name: 'sender',
  schema: senderSchema,
  defaultConfig: {},
  create(cfg, env): ControlInstance {
    const engine = createSender(cfg, env);
    return { request: [{ control: 'sender', phase: 'identity', run: (ctx) => engine.run(ctx) }] };
  },
});
