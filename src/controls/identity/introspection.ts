/**
 * OAuth 2.0 Token Introspection (RFC 7662) client, for opaque access tokens.
 *
 * - The gateway authenticates to the endpoint as a client (`client_secret_basic`, RFC 6749
 *   §2.3.1, or `client_secret_post`).
 * - Answers are cached by SHA-256 of the token in a bounded LRU: an active token until the
 *   earlier of its `exp` and `cacheTtlMs`; an inactive one for `negativeTtlMs`.
 * - Concurrent introspections of the same token share one call (single flight).
 * - `active: false` → 401 `token-inactive`; endpoint unreachable → 503 (fail closed).
 */
import { LRUCache } from 'lru-cache';
import { IdentityError, invalidToken } from './errors.ts';
import { fetchJson } from './http.ts';

/** Options of {@link Introspector}. */
export interface IntrospectorOptions {
  endpoint: string;
  clientId: string;
  clientSecret: string;
  authMethod: 'client_secret_basic' | 'client_secret_post';
  /** Maximum time an active answer is cached, ms. */
  cacheTtlMs: number;
  /** Time an inactive answer is cached, ms. */
  negativeTtlMs: number;
  cacheMaxEntries: number;
  timeoutMs: number;
  /** Accepted `iss` (checked when the response carries one). */
  issuer?: string;
  /** Accepted audiences (checked when non-empty). */
  audiences: string[];
  now?: () => number;
}

/** An active introspection response (RFC 7662 §2.2). */
export type IntrospectionResult = Record<string, unknown> & { active: true };

type Cached = { active: true; claims: IntrospectionResult } | { active: false };

export class Introspector {
  private readonly o: IntrospectorOptions;
  private readonly cache: LRUCache<string, Cached>;
  private readonly inflight = new Map<string, Promise<Cached>>();
  private readonly authHeader: string | undefined;
  /** Number of calls made to the endpoint (tests, metrics). */
  calls = 0;

  constructor(o: IntrospectorOptions) {
    this.o = o;
    this.cache = new LRUCache<string, Cached>({ max: o.cacheMaxEntries, ttlAutopurge: false, perf: { now: o.now ?? Date.now } });
    if (o.authMethod === 'client_secret_basic') {
      // RFC 6749 §2.3.1: form-urlencode id and secret before base64.
      const enc = (s: string): string => encodeURIComponent(s).replace(/%20/g, '+');
      this.authHeader = `Basic ${Buffer.from(`${enc(o.clientId)}:${enc(o.clientSecret)}`).toString('base64')}`;
    }
  }

  /**
   * Introspects `token` (whose SHA-256 is `hash`).
   * @throws {IdentityError} 401 `token-inactive` / `token-issuer-invalid` / `token-audience-invalid`
   *   / `token-expired`; 503 `identity-provider-unavailable` when the endpoint fails.
   */
  async introspect(token: string, hash: string): Promise<IntrospectionResult> {
    let entry = this.cache.get(hash);
    if (entry === undefined) {
      let p = this.inflight.get(hash);
      if (p === undefined) {
        p = this.call(token, hash).finally(() => this.inflight.delete(hash));
        this.inflight.set(hash, p);
      }
      entry = await p;
    }
    if (!entry.active) throw invalidToken('token-inactive', 'The access token is not active.', 'low');
    const exp = entry.claims.exp;
    if (typeof exp === 'number' && exp * 1000 <= (this.o.now ?? Date.now)()) throw invalidToken('token-expired', 'The access token has expired.', 'low');
    return entry.claims;
  }

  private async call(token: string, hash: string): Promise<Cached> {
    const o = this.o;
    const form = new URLSearchParams({ token, token_type_hint: 'access_token' });
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
    if (this.authHeader) headers.authorization = this.authHeader;
    else {
      form.set('client_id', o.clientId);
      form.set('client_secret', o.clientSecret);
    }
    this.calls++;
    let body: Record<string, unknown>;
    try {
      ({ body } = await fetchJson(o.endpoint, { init: { method: 'POST', headers, body: form.toString() }, timeoutMs: o.timeoutMs, maxBytes: 64 * 1024 }));
    } catch (err) {
      throw new IdentityError(
        503,
        'identity-provider-unavailable',
        'Identity provider unavailable',
        'The token introspection endpoint is unavailable; try again later.',
        {
          severity: 'high',
          details: { error: (err as Error).message },
        },
      );
    }
    const now = (o.now ?? Date.now)();
    if (body.active !== true) {
      const e: Cached = { active: false };
      this.cache.set(hash, e, { ttl: o.negativeTtlMs });
      return e;
    }
    if (o.issuer !== undefined && body.iss !== undefined && body.iss !== o.issuer) {
      const e: Cached = { active: false };
      this.cache.set(hash, e, { ttl: o.negativeTtlMs });
      throw invalidToken('token-issuer-invalid', 'The access token was not issued by the accepted issuer.', 'medium');
    }
    if (o.audiences.length > 0) {
      const aud = body.aud;
      const auds = Array.isArray(aud) ? aud : typeof aud === 'string' ? [aud] : [];
      if (!auds.some((a) => o.audiences.includes(a as string)))
        throw invalidToken('token-audience-invalid', 'The access token is not meant for this API.', 'medium');
    }
    const claims = body as IntrospectionResult;
    let ttl = o.cacheTtlMs;
    if (typeof body.exp === 'number') ttl = Math.min(ttl, body.exp * 1000 - now);
    const e: Cached = { active: true, claims };
    if (ttl > 0) this.cache.set(hash, e, { ttl });
    return e;
  }
}
