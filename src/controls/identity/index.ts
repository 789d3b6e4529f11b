/**
 * `identity` control: who is calling? OAuth 2.0 bearer access tokens (RFC 6750) as JWTs
 * (RFC 7519 / RFC 9068, keys from the issuer's JWKS via OpenID Connect Discovery) or opaque
 * tokens checked by introspection (RFC 7662), and Rampart API keys; then scope and claim
 * requirements. Sets `ctx.identity`, forwards the identity to the upstream in configured headers
 * and strips (or forwards) the credential.
 *
 * With `openapi`, the document decides per operation which providers accept a request
 * (`operations.ts`: `security` and `securitySchemes`, `security: []` public, `{}` optional); the
 * `operations` map overrides it. Unmatched paths keep the API-wide behaviour.
 *
 * OWASP API Security Top 10 2023 API2 (broken authentication); JWT BCP RFC 8725.
 */
import { createHash, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { LRUCache } from 'lru-cache';
import type { JWTPayload } from 'jose';
import { z } from 'zod';
import type { Identity, RequestContext } from '../../pipeline/context.ts';
import { defineControl, type ControlEnv } from '../../pipeline/control.ts';
import { deny, type Verdict } from '../../pipeline/verdict.ts';
import { ApiKeyAuthenticator } from './apikeys.ts';
import { compileRouting } from '../../openapi/compile.ts';
import { loadOpenApi } from '../../openapi/load.ts';
import { IdentityError, invalidToken, type KeyLocation, toProblem } from './errors.ts';
import { isAcceptableProviderUrl } from './http.ts';
import { Introspector } from './introspection.ts';
import { JwksCache } from './jwks.ts';
import { JwtVerifier } from './jwt.ts';
import { ApiKeyStore, loadPepper } from './keys/store.ts';
import { type AccessPolicy, compileAccess, PROVIDER_NAMES } from './operations.ts';
import { compileRequirement, scopesOf } from './policy.ts';

/** Asymmetric JWS algorithms (RFC 7518 §3, RFC 8037). Symmetric (HS*) and `none` are never accepted. */
export const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;
/** Default accepted algorithms. */
export const DEFAULT_ALGORITHMS = ['RS256', 'PS256', 'ES256', 'ES384', 'EdDSA'];

/** Store key of a revoked `jti` (value `1`; TTL at least the token's remaining lifetime). */
export function revokedJtiKey(jti: string): string {
  return `identity:revoked-jti:${jti}`;
}

const providerUrl = z.string().refine(isAcceptableProviderUrl, 'expected an https URL (http only on 127.0.0.1/localhost)');
const headerName = z
  .string()
  .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'expected an HTTP header field name')
  .transform((s) => s.toLowerCase());
const maybeHeader = z.union([headerName, z.literal(false)]);

const jwtSchema = z.strictObject({
  /** Expected `iss`; also the base of OIDC discovery when `jwks_uri` is absent. */
  issuer: providerUrl,
  /** Explicit JWKS URL (skips discovery). */
  jwks_uri: providerUrl.optional(),
  /** Accepted `aud` values (RFC 9068 §4: the resource indicator of this API). */
  audiences: z.array(z.string().min(1)).min(1),
  /** Accepted JWS algorithms; asymmetric only. */
  algorithms: z
    .array(z.enum(ASYMMETRIC_ALGORITHMS))
    .min(1)
    .default(DEFAULT_ALGORITHMS as (typeof ASYMMETRIC_ALGORITHMS)[number][]),
  /** Clock tolerance for `exp`/`nbf`, seconds. */
  clock_skew_seconds: z.number().int().min(0).max(300).default(30),
  /** Claims that must be present besides `exp` (e.g. `jti`, `sub`). */
  required_claims: z.array(z.string().min(1)).default([]),
  /** Required `typ` header; `at+jwt` enforces RFC 9068 access tokens. */
  typ: z.string().optional(),
  /** Maximum decoded protected-header size, bytes. */
  max_header_bytes: z.number().int().positive().default(8192),
  /** Maximum token length, bytes. */
  max_token_bytes: z.number().int().positive().default(16384),
  jwks: z
    .strictObject({
      timeout_ms: z.number().int().positive().default(5000),
      /** Minimum interval between refetches caused by unknown `kid`s, ms. */
      cooldown_ms: z.number().int().nonnegative().default(30000),
      refresh_ms: z.number().int().positive().default(300000),
      /** How long the last good key set keeps working while the provider is down, ms. */
      max_stale_ms: z.number().int().positive().default(86400000),
    })
    .prefault({}),
  /** Accept JWE-wrapped (nested) tokens, decrypted with this private key (PEM, PKCS#8). Off by default. */
  decryption: z
    .strictObject({
      key_file: z.string().min(1),
      key_management_algorithms: z.array(z.string()).min(1).default(['RSA-OAEP-256', 'ECDH-ES', 'ECDH-ES+A256KW']),
      content_encryption_algorithms: z.array(z.string()).min(1).default(['A256GCM', 'A128GCM']),
    })
    .optional(),
});

const introspectionSchema = z
  .strictObject({
    endpoint: providerUrl,
    /** Expected `iss` of introspection responses that carry one. */
    issuer: z.string().optional(),
    /** Accepted `aud` values (not checked when empty). */
    audiences: z.array(z.string().min(1)).default([]),
    client_id: z.string().min(1),
    /** The gateway's client secret; prefer `client_secret_env`. */
    client_secret: z.string().min(1).optional(),
    /** Name of the environment variable holding the client secret. */
    client_secret_env: z.string().min(1).optional(),
    auth_method: z.enum(['client_secret_basic', 'client_secret_post']).default('client_secret_basic'),
    /** Maximum caching of an active answer, ms (never beyond the token's `exp`). */
    cache_ttl_ms: z.number().int().nonnegative().default(60000),
    /** Caching of an inactive answer, ms. */
    negative_cache_ttl_ms: z.number().int().nonnegative().default(10000),
    timeout_ms: z.number().int().positive().default(5000),
  })
  .refine((o) => o.client_secret !== undefined || o.client_secret_env !== undefined, 'set client_secret_env (or client_secret)');

const apiKeySchema = z.strictObject({
  /**
   * Request header carrying the key (default `x-api-key`). Set explicitly (or `query`), it overrides
   * the location of the document's `apiKey` security schemes.
   */
  header: headerName.optional(),
  /** Query parameter carrying the key. Discouraged: URLs end up in logs and Referer headers. */
  query: z.string().min(1).optional(),
  /** SQLite database of the keys (relative to the configuration file). */
  database: z.string().min(1).default('rampart-keys.db'),
  /** Environment variable holding the pepper (>= 32 bytes). */
  pepper_env: z.string().min(1).default('RAMPART_API_KEY_PEPPER'),
  /** File holding the pepper instead of an environment variable. */
  pepper_file: z.string().min(1).optional(),
  /** How long a key lookup is reused, ms: a revocation takes effect within this time. */
  cache_ttl_ms: z.number().int().nonnegative().default(5000),
});

/** Default header of API keys. */
export const DEFAULT_API_KEY_HEADER = 'x-api-key';

const operationOverride = z.union([
  /** A public operation: no credentials required (a credential sent anyway is verified). */
  z.strictObject({ public: z.literal(true) }),
  /** Only these providers are accepted (`mtls`: the transport control's certificate identity). */
  z.strictObject({ providers: z.array(z.enum(PROVIDER_NAMES)).min(1) }),
]);

export const identitySchema = z.strictObject({
  /**
   * The OpenAPI document (file relative to the configuration file, or an https URL; the same one
   * as the `contract` control): each operation's `security` and the `securitySchemes` select the
   * accepted providers; `security: []` makes an operation public.
   */
  openapi: z.string().min(1).optional(),
  /** Prefix of the document's paths in request paths (as the `contract` control's `base_path`). */
  base_path: z
    .string()
    .regex(/^\/([^?#]*[^/?#])?$/, 'a path starting with "/" and not ending with "/"')
    .default('/'),
  /** Per-operation overrides of the document, by `operationId`: `{ public: true }` or `{ providers: [...] }`. */
  operations: z.record(z.string().min(1), operationOverride).default({}),
  providers: z
    .strictObject({
      jwt: jwtSchema.optional(),
      introspection: introspectionSchema.optional(),
      api_key: apiKeySchema.optional(),
    })
    .refine((p) => p.jwt !== undefined || p.introspection !== undefined || p.api_key !== undefined, 'configure at least one of jwt, introspection, api_key'),
  require: z
    .strictObject({
      /** Scopes that must all be granted. */
      scopes: z.array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, 'scope token (RFC 6749 §3.3)')).default([]),
      /** CEL expression over `claims`, `scopes`, `subject`, `client_id`, `issuer`, `methods`, `request`; must be true. */
      claims: z.string().min(1).optional(),
    })
    .prefault({}),
  forward: z
    .strictObject({
      /** `strip` removes the credential (Authorization / API key header) before the upstream; `forward` keeps it. */
      token: z.enum(['strip', 'forward']).default('strip'),
      /** Upstream headers carrying the identity (`false` to omit). Client-sent values are always removed. */
      headers: z
        .strictObject({
          subject: maybeHeader.default('x-rampart-subject'),
          client_id: maybeHeader.default('x-rampart-client-id'),
          scopes: maybeHeader.default('x-rampart-scopes'),
          issuer: maybeHeader.default(false),
          methods: maybeHeader.default('x-rampart-auth-method'),
          token_id: maybeHeader.default(false),
        })
        .prefault({}),
      /** Extra headers from claims: header name → claim name (top-level claim). */
      claims: z.record(headerName, z.string().min(1)).default({}),
    })
    .prefault({}),
  /** `realm` of the challenges (default: the API name). */
  realm: z.string().optional(),
  /**
   * DPoP proof algorithms the API accepts: set by the gateway from the `sender` control (see
   * `controls/sender/wiring.ts`), so a 401 without credentials also offers the `DPoP` scheme with
   * `algs` (RFC 9449 §7.1). Not meant to be set by hand.
   */
  dpop_algs: z.array(z.string().min(1)).optional(),
  /** Verified-token cache (by SHA-256 of the token, until `exp`). */
  cache: z.strictObject({ max_entries: z.number().int().nonnegative().default(10000) }).prefault({}),
  revocation: z
    .strictObject({
      /** Check every token's `jti` against the deny list in the state store. */
      check: z.boolean().default(true),
      /** When the state store fails: `closed` answers 503, `open` lets the request through. */
      on_store_error: z.enum(['closed', 'open']).default('closed'),
    })
    .prefault({}),
});
export type IdentityConfig = z.output<typeof identitySchema>;
export type IdentityConfigInput = z.input<typeof identitySchema>;

/** Header values must be visible ASCII: anything else is percent-encoded (no header injection). */
function headerValue(v: string): string {
  return /^[\x20-\x7e]*$/.test(v) ? v : encodeURIComponent(v);
}

/**
 * Token credentials: `Bearer` (RFC 6750 §2.1) or `DPoP` (RFC 9449 §7.1), token68 syntax. A DPoP
 * token is only a carrier here: its proof is verified by the `sender` control, which appends
 * `dpop` to the identity's methods once the proof checks out.
 */
const BEARER = /^(?:bearer|dpop) +([A-Za-z0-9\-._~+/]+=*) *$/i;

/** Builds the identity of a verified JWT payload. */
function identityFromJwt(p: JWTPayload): Identity {
  const clientId = typeof p.client_id === 'string' ? p.client_id : typeof p.azp === 'string' ? p.azp : undefined;
  const subject = typeof p.sub === 'string' ? p.sub : clientId;
  if (subject === undefined) throw invalidToken('token-claims-invalid', 'The access token has no "sub" or "client_id" claim.', 'medium', { claim: 'sub' });
  return {
    subject,
    clientId,
    issuer: p.iss,
    scopes: scopesOf(p as Record<string, unknown>),
    methods: ['jwt'],
    tokenId: typeof p.jti === 'string' ? p.jti : undefined,
    expiresAt: p.exp,
    claims: p as Record<string, unknown>,
    cnf: p.cnf !== null && typeof p.cnf === 'object' ? (p.cnf as Record<string, unknown>) : undefined,
  };
}

/** Builds the identity of an active introspection response (RFC 7662 §2.2). */
function identityFromIntrospection(r: Record<string, unknown>): Identity {
  const clientId = typeof r.client_id === 'string' ? r.client_id : undefined;
  const subject = typeof r.sub === 'string' ? r.sub : typeof r.username === 'string' ? r.username : clientId;
  if (subject === undefined) throw invalidToken('token-claims-invalid', 'The introspection response has no "sub" or "client_id".', 'medium');
  return {
    subject,
    clientId,
    issuer: typeof r.iss === 'string' ? r.iss : undefined,
    scopes: scopesOf(r),
    methods: ['introspection'],
    tokenId: typeof r.jti === 'string' ? r.jti : undefined,
    expiresAt: typeof r.exp === 'number' ? r.exp : undefined,
    claims: r,
    cnf: r.cnf !== null && typeof r.cnf === 'object' ? (r.cnf as Record<string, unknown>) : undefined,
  };
}

/** The per-API identity engine, also usable without the pipeline (tests, benches). */
export interface IdentityEngine {
  run(ctx: RequestContext): Promise<Verdict>;
  /**
   * Writes the forwarded authentication-methods header from the final identity. Runs in the
   * passport phase, after controls of later phases (sender: `dpop`, `mtls`) added their methods.
   */
  finalize(ctx: RequestContext): Verdict;
  notReady(): string | undefined;
  close(): void;
  /** Introspection of internals for tests. */
  readonly jwks: JwksCache | undefined;
  readonly introspector: Introspector | undefined;
}

/**
 * Builds the identity engine for one API.
 * @throws {Error} naming the setting when the configuration cannot work (bad CEL expression,
 *   missing pepper or client secret, unreadable decryption key, an OpenAPI document that cannot be
 *   loaded, or one whose operations the configured providers cannot serve: see `compileAccess`).
 */
export async function createIdentity(cfg: IdentityConfig, env: ControlEnv): Promise<IdentityEngine> {
  const requirement = compileRequirement(cfg.require, 'require');
  const realm = cfg.realm ?? env.apiName;
  const dpopAlgs = cfg.dpop_algs?.join(' ');

  // The document's access policies first: a configuration error must not leave providers running.
  const pk = cfg.providers.api_key;
  const keyHeader = pk === undefined ? undefined : (pk.header ?? DEFAULT_API_KEY_HEADER);
  const cfgKeys: KeyLocation[] | undefined =
    pk === undefined ? undefined : [{ in: 'header', name: keyHeader as string }, ...(pk.query === undefined ? [] : [{ in: 'query' as const, name: pk.query }])];
  let doc: ReturnType<typeof compileRouting> | undefined;
  if (cfg.openapi !== undefined) {
    try {
      doc = compileRouting(await loadOpenApi(cfg.openapi, env.configDir));
    } catch (e) {
      throw new Error(`openapi: ${(e as Error).message}`);
    }
  }
  const access = compileAccess({
    doc,
    docName: cfg.openapi ?? '',
    basePath: cfg.base_path,
    overrides: cfg.operations,
    providers: {
      jwt: cfg.providers.jwt !== undefined,
      introspection: cfg.providers.introspection !== undefined,
      apiKey: cfgKeys,
      apiKeyExplicit: pk !== undefined && (pk.header !== undefined || pk.query !== undefined),
    },
    realm,
    scope: requirement.scopeString || undefined,
    warn: (m) => env.log.warn(m, { api: env.apiName }),
  });

  let jwks: JwksCache | undefined;
  let jwt: JwtVerifier | undefined;
  const pj = cfg.providers.jwt;
  if (pj) {
    jwks = new JwksCache({
      issuer: pj.issuer,
      jwksUri: pj.jwks_uri,
      timeoutMs: pj.jwks.timeout_ms,
      cooldownMs: pj.jwks.cooldown_ms,
      refreshMs: pj.jwks.refresh_ms,
      maxStaleMs: pj.jwks.max_stale_ms,
      onError: (message) => {
        env.log.warn('identity: JWKS refresh failed', { api: env.apiName, error: message });
        env.emit({ control: 'identity', reason: 'jwks-refresh-failed', action: 'alert', severity: 'high', api: env.apiName, details: { error: message } });
      },
      onRecover: () => env.log.info('identity: JWKS refresh recovered', { api: env.apiName }),
    });
    // First fetch now (bounded by the timeout, never fatal: the gateway starts and /readyz says why).
    await jwks.start();
    let decryption: ConstructorParameters<typeof JwtVerifier>[0]['decryption'];
    if (pj.decryption) {
      try {
        decryption = {
          key: createPrivateKey(readFileSync(resolve(env.configDir, pj.decryption.key_file))),
          keyManagementAlgorithms: pj.decryption.key_management_algorithms,
          contentEncryptionAlgorithms: pj.decryption.content_encryption_algorithms,
        };
      } catch (err) {
        throw new Error(`providers.jwt.decryption.key_file: ${(err as Error).message}`);
      }
    }
    jwt = new JwtVerifier({
      issuer: pj.issuer,
      audiences: pj.audiences,
      algorithms: pj.algorithms,
      clockSkewSeconds: pj.clock_skew_seconds,
      requiredClaims: pj.required_claims,
      typ: pj.typ,
      maxHeaderBytes: pj.max_header_bytes,
      maxTokenBytes: pj.max_token_bytes,
      jwks,
      decryption,
    });
  }

  let introspector: Introspector | undefined;
  const pi = cfg.providers.introspection;
  if (pi) {
    const secret = pi.client_secret ?? process.env[pi.client_secret_env as string];
    if (secret === undefined || secret === '') throw new Error(`providers.introspection: environment variable ${pi.client_secret_env} is not set`);
    introspector = new Introspector({
      endpoint: pi.endpoint,
      clientId: pi.client_id,
      clientSecret: secret,
      authMethod: pi.auth_method,
      cacheTtlMs: pi.cache_ttl_ms,
      negativeTtlMs: pi.negative_cache_ttl_ms,
      cacheMaxEntries: Math.max(1, cfg.cache.max_entries),
      timeoutMs: pi.timeout_ms,
      issuer: pi.issuer,
      audiences: pi.audiences,
    });
  }

  let apiKeys: ApiKeyAuthenticator | undefined;
  if (pk) {
    let pepper: Buffer;
    try {
      pepper = loadPepper(pk.pepper_file ? { file: resolve(env.configDir, pk.pepper_file) } : { env: pk.pepper_env });
    } catch (err) {
      throw new Error(`providers.api_key: ${(err as Error).message}`);
    }
    const dbPath = pk.database === ':memory:' ? ':memory:' : resolve(env.configDir, pk.database);
    let store: ApiKeyStore;
    try {
      store = new ApiKeyStore(dbPath, pepper);
    } catch (err) {
      throw new Error(`providers.api_key.database: ${(err as Error).message}`);
    }
    apiKeys = new ApiKeyAuthenticator({ store, api: env.apiName, cacheTtlMs: Math.max(1, pk.cache_ttl_ms), cacheMaxEntries: 10000, flushMs: 5000 });
    if (pk.query !== undefined) {
      env.log.warn(
        `identity: API keys accepted in the query parameter "${pk.query}": URLs are logged by proxies and leak via Referer; prefer the ${keyHeader} header`,
        { api: env.apiName },
      );
    }
  }

  const verified = cfg.cache.max_entries > 0 ? new LRUCache<string, Identity>({ max: cfg.cache.max_entries }) : undefined;

  // Forwarding, compiled once.
  const fwd: [string, (i: Identity) => string | undefined][] = [];
  const h = cfg.forward.headers;
  if (h.subject) fwd.push([h.subject, (i) => i.subject]);
  if (h.client_id) fwd.push([h.client_id, (i) => i.clientId]);
  if (h.scopes) fwd.push([h.scopes, (i) => i.scopes.join(' ')]);
  if (h.issuer) fwd.push([h.issuer, (i) => i.issuer]);
  if (h.methods) fwd.push([h.methods, (i) => i.methods.join(' ')]);
  if (h.token_id) fwd.push([h.token_id, (i) => i.tokenId]);
  for (const [header, claim] of Object.entries(cfg.forward.claims)) {
    fwd.push([
      header,
      (i) => {
        const v = i.claims[claim];
        return v === undefined || v === null ? undefined : typeof v === 'string' ? v : JSON.stringify(v);
      },
    ]);
  }
  const stripToken = cfg.forward.token === 'strip';
  const revocation = cfg.revocation;

  const anyBearer = jwt !== undefined || introspector !== undefined;

  /** Where the policy's accepted credentials are, in words (problem details). */
  function accepted(pol: AccessPolicy): string {
    const parts: string[] = [];
    if (pol.jwt || pol.introspection) parts.push('an access token in the Authorization header (Bearer)');
    for (const k of pol.keys) parts.push(`an API key in the ${k.name} ${k.in === 'header' ? 'header' : 'query parameter'}`);
    if (pol.mtls) parts.push('a TLS client certificate');
    return parts.join(' or ');
  }

  function notAccepted(pol: AccessPolicy, what: string): IdentityError {
    if (!pol.jwt && !pol.introspection && pol.keys.length === 0) {
      // mutualTLS only: no HTTP authentication scheme to challenge with (RFC 9110 §11.6.1), so 403.
      return new IdentityError(
        403,
        'credentials-not-accepted',
        'Forbidden',
        `This operation does not accept ${what}; it requires a TLS client certificate (mutual TLS).`,
        {
          severity: 'low',
          details: pol.operation === undefined ? undefined : { operation: pol.operation },
        },
      );
    }
    return new IdentityError(401, 'credentials-not-accepted', 'Authentication required', `This operation does not accept ${what}; send ${accepted(pol)}.`, {
      severity: 'low',
      details: pol.operation === undefined ? undefined : { operation: pol.operation },
    });
  }

  /**
   * Finds and verifies the request's credential under `pol`.
   * @returns the identity and the credential used, or `undefined` when the request carries none.
   * @throws {IdentityError} 400 for two credentials, 401 for an invalid one or one `pol` does not accept.
   */
  async function authenticate(ctx: RequestContext, pol: AccessPolicy): Promise<{ identity: Identity; via: 'bearer' | KeyLocation } | undefined> {
    const headers = ctx.headers;
    const authz = headers.authorization;
    // Node keeps the first of repeated Authorization fields; the upstream or another hop may read
    // the last. Two credentials are ambiguous (RFC 6750 §3.1 `invalid_request`).
    if (authz !== undefined && countField(ctx.req.rawHeaders ?? [], 'authorization') > 1)
      throw new IdentityError(400, 'credentials-ambiguous', 'Ambiguous credentials', 'Send one Authorization header field.', {
        bearerError: 'invalid_request',
        severity: 'medium',
      });
    // API keys are looked for where the policy accepts them; when it accepts none, wherever the
    // API takes keys (so that a key sent to the wrong operation is refused clearly).
    let key: string | string[] | undefined;
    let loc: KeyLocation | undefined;
    const where = pol.keys.length > 0 ? pol.keys : access.allKeys;
    for (let i = 0; i < where.length && key === undefined; i++) {
      const l = where[i] as KeyLocation;
      key = l.in === 'header' ? headers[l.name] : (ctx.query.get(l.name) ?? undefined);
      if (key !== undefined) loc = l;
    }
    const bearerMatch = typeof authz === 'string' && anyBearer ? BEARER.exec(authz) : null;
    if (key !== undefined) {
      if (bearerMatch)
        throw new IdentityError(400, 'credentials-ambiguous', 'Ambiguous credentials', 'Send either an access token or an API key, not both.', {
          bearerError: 'invalid_request',
          severity: 'low',
        });
      if (pol.keys.length === 0) throw notAccepted(pol, 'API keys');
      if (typeof key !== 'string')
        throw new IdentityError(401, 'api-key-malformed', 'Invalid API key', 'More than one API key was sent.', {
          bearerError: 'invalid_token',
          severity: 'low',
        });
      return { identity: (apiKeys as ApiKeyAuthenticator).authenticate(key), via: loc as KeyLocation };
    }
    if (bearerMatch === null) {
      if (typeof authz === 'string' && anyBearer && /^(?:bearer|dpop)(\s|$)/i.test(authz)) {
        throw invalidToken('token-malformed', 'The Authorization header is not a valid Bearer credential (RFC 6750 §2.1).', 'low');
      }
      return undefined;
    }
    if (!pol.jwt && !pol.introspection) throw notAccepted(pol, 'access tokens');
    const token = bearerMatch[1] as string;
    const hash = createHash('sha256').update(token).digest('base64url');
    // Only JWT identities are cached here: a hit stands for the jwt provider.
    const hit = pol.jwt ? verified?.get(hash) : undefined;
    if (hit !== undefined) return { identity: { ...hit, methods: [...hit.methods], scopes: [...hit.scopes] }, via: 'bearer' };
    let identity: Identity;
    if (pol.jwt && (!pol.introspection || looksLikeJwt(token))) {
      const { payload } = await (jwt as JwtVerifier).verify(token);
      identity = identityFromJwt(payload);
    } else {
      identity = identityFromIntrospection(await (introspector as Introspector).introspect(token, hash));
      // The introspector has its own cache (bounded by its TTL); do not keep the answer longer here.
      return { identity, via: 'bearer' };
    }
    if (verified !== undefined && identity.expiresAt !== undefined) {
      const ttl = identity.expiresAt * 1000 - Date.now();
      if (ttl > 0) verified.set(hash, identity, { ttl });
    }
    return { identity: { ...identity, methods: [...identity.methods], scopes: [...identity.scopes] }, via: 'bearer' };
  }

  /** No credential sent: what `pol` answers (`undefined`: let the request through). */
  function noCredential(ctx: RequestContext, pol: AccessPolicy): IdentityError | 'mtls' | undefined {
    if (pol.mtls && ctx.identity?.methods.includes('mtls')) return 'mtls';
    if (pol.auth !== 'required') return undefined;
    if (!pol.jwt && !pol.introspection && pol.keys.length === 0) {
      // mutualTLS only: no HTTP authentication scheme can fix this (the transport control's 403).
      return new IdentityError(403, 'client-certificate-required', 'Forbidden', 'This operation requires a TLS client certificate (mutual TLS).', {
        severity: 'low',
        details: pol.operation === undefined ? undefined : { operation: pol.operation },
      });
    }
    const legacy = pol.operation === undefined && !pol.mtls;
    const detail =
      legacy && pk && !jwt && !introspector
        ? `Send an API key in the ${keyHeader} header.`
        : legacy && (pol.jwt || pol.introspection)
          ? 'Send an access token in the Authorization header (Bearer).'
          : `Send ${accepted(pol)}.`;
    return new IdentityError(401, 'credentials-missing', 'Authentication required', detail, { severity: 'low' });
  }

  async function checkRevoked(identity: Identity): Promise<void> {
    if (!revocation.check || identity.tokenId === undefined || identity.methods[0] === 'api_key') return;
    let v: string | null;
    try {
      v = await env.store.get(revokedJtiKey(identity.tokenId));
    } catch (err) {
      if (revocation.on_store_error === 'open') return;
      throw new IdentityError(503, 'revocation-check-unavailable', 'Service unavailable', 'The token revocation list cannot be checked; try again later.', {
        severity: 'high',
        details: { error: (err as Error).message },
      });
    }
    if (v !== null) throw invalidToken('token-revoked', 'The access token has been revoked.', 'high', { jti: identity.tokenId });
  }

  const methodsHeader = h.methods || undefined;
  return {
    jwks,
    introspector,
    finalize(ctx) {
      if (methodsHeader !== undefined && ctx.identity !== undefined) ctx.upstreamHeaders.set(methodsHeader, headerValue(ctx.identity.methods.join(' ')));
      return undefined;
    },
    async run(ctx) {
      const pol = access.lookup(ctx.method, ctx.path);
      try {
        const found = await authenticate(ctx, pol);
        const up = ctx.upstreamHeaders;
        let identity: Identity;
        if (found === undefined) {
          const r = noCredential(ctx, pol);
          if (r instanceof IdentityError) throw r;
          if (r === undefined) {
            // Public (or optional) and anonymous: client-sent identity headers still never reach the upstream.
            for (const [name] of fwd) up.set(name, null);
            return undefined;
          }
          identity = ctx.identity as Identity; // the transport control's certificate identity
        } else {
          identity = found.identity;
          await checkRevoked(identity);
        }
        // The API-wide requirement applies where the operation requires authentication.
        if (pol.auth === 'required') requirement.check(identity, ctx);
        ctx.identity = identity;
        for (const [name, get] of fwd) {
          const v = get(identity);
          up.set(name, v === undefined ? null : headerValue(v));
        }
        if (stripToken && found !== undefined) {
          if (found.via === 'bearer') up.set('authorization', null);
          else if (found.via.in === 'header') up.set(found.via.name, null);
          else {
            // The upstream must not see the key either (the same rule as a stripped bearer token).
            const rest = new URLSearchParams(ctx.upstreamQuery ?? ctx.rawQuery);
            rest.delete(found.via.name);
            ctx.upstreamQuery = rest.toString();
          }
        }
        return undefined;
      } catch (err) {
        if (err instanceof IdentityError) {
          const dpop = typeof ctx.headers.authorization === 'string' && /^dpop\s/i.test(ctx.headers.authorization);
          return deny(toProblem(err, dpop ? pol.dpopChallenge : pol.challenge, dpopAlgs), err.severity, err.details);
        }
        throw err;
      }
    },
    notReady() {
      const r = jwks?.notReady();
      return r === undefined ? undefined : `identity (${env.apiName}): ${r}`;
    },
    close() {
      jwks?.close();
      apiKeys?.close();
    },
  };
}

/** Two or four dots: compact JWS or JWE. */
function looksLikeJwt(token: string): boolean {
  let dots = 0;
  for (let i = 0; i < token.length; i++) if (token.charCodeAt(i) === 46) dots++;
  return dots === 2 || dots === 4;
}

export const identityControl = defineControl({
  name: 'identity',
  schema: identitySchema,
  async create(cfg, env) {
    const engine = await createIdentity(cfg, env);
    return {
      request: [
        { control: 'identity', phase: 'identity', run: (ctx) => engine.run(ctx) },
        { control: 'identity', phase: 'passport', run: (ctx) => engine.finalize(ctx) },
      ],
      notReady: () => engine.notReady(),
      close: () => engine.close(),
    };
  },
});

export { identityZeroConfig } from './zero.ts';

/** How many times the field `lowerName` occurs in a raw header list (`[name, value, ...]`). */
function countField(raw: readonly string[], lowerName: string): number {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i] as string;
    if (k.length === lowerName.length && k.toLowerCase() === lowerName) n++;
  }
  return n;
}
