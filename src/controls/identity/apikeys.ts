/**
 * API key authentication on the request path: format and checksum check first (a typo or a
 * random string never reaches the database), then the SQLite store behind a short-lived bounded
 * cache, with last-used times written in batches off the request path.
 */
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Identity } from '../../pipeline/context.ts';
import { IdentityError } from './errors.ts';
import { isRampartApiKey } from './keys/format.ts';
import type { ApiKeyStore, LookupResult } from './keys/store.ts';

/** Options of {@link ApiKeyAuthenticator}. */
export interface ApiKeyAuthOptions {
  store: ApiKeyStore;
  /** Only keys created for this API are accepted. */
  api: string;
  /** How long a lookup result is reused, ms (bounds how late a revocation takes effect). */
  cacheTtlMs: number;
  cacheMaxEntries: number;
  /** Period of the batched last-used writes, ms. */
  flushMs: number;
  now?: () => number;
}

function apiKeyError(code: string, detail: string, severity: 'low' | 'medium' | 'high' = 'medium', details?: Record<string, unknown>): IdentityError {
  return new IdentityError(401, code, 'Invalid API key', detail, { bearerError: 'invalid_token', severity, details });
}

export class ApiKeyAuthenticator {
  private readonly o: ApiKeyAuthOptions;
  private readonly cache: LRUCache<string, LookupResult>;
  private readonly pendingUses = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;
  private readonly now: () => number;

  constructor(o: ApiKeyAuthOptions) {
    this.o = o;
    this.now = o.now ?? Date.now;
    this.cache = new LRUCache({ max: o.cacheMaxEntries, ttl: o.cacheTtlMs });
    this.timer = setInterval(() => this.flush(), o.flushMs);
    this.timer.unref();
  }

  /**
   * Authenticates `key`.
   * @throws {IdentityError} 401 `api-key-malformed` (format/checksum), `api-key-invalid`
   *   (unknown or for another API), `api-key-revoked`, `api-key-expired`.
   */
  authenticate(key: string): Identity {
    if (!isRampartApiKey(key)) throw apiKeyError('api-key-malformed', 'The API key is malformed (bad prefix, length or checksum).', 'low');
    const h = createHash('sha256').update(key).digest('base64url');
    let r = this.cache.get(h);
    if (r === undefined) {
      r = this.o.store.lookup(key, this.now());
      this.cache.set(h, r);
    }
    const now = this.now();
    if (!r.ok) {
      if (r.reason === 'revoked') throw apiKeyError('api-key-revoked', 'The API key has been revoked.', 'high', { key_id: r.record?.id });
      if (r.reason === 'expired') throw apiKeyError('api-key-expired', 'The API key has expired.', 'low', { key_id: r.record?.id });
      throw apiKeyError('api-key-invalid', 'The API key is not valid.', 'medium');
    }
    const rec = r.record;
    if (rec.api !== this.o.api) throw apiKeyError('api-key-invalid', 'The API key is not valid.', 'medium', { key_id: rec.id });
    // A cached record can outlive its expiry or a scheduled revocation: check the times again.
    if (rec.expiresAt !== null && rec.expiresAt <= now) throw apiKeyError('api-key-expired', 'The API key has expired.', 'low', { key_id: rec.id });
    if (rec.revokedAt !== null && rec.revokedAt <= now) throw apiKeyError('api-key-revoked', 'The API key has been revoked.', 'high', { key_id: rec.id });
    this.pendingUses.set(rec.id, now);
    return {
      subject: rec.subject,
      clientId: rec.id,
      scopes: rec.scopes,
      methods: ['api_key'],
      tokenId: rec.id,
      expiresAt: rec.expiresAt === null ? undefined : Math.floor(rec.expiresAt / 1000),
      claims: { key_id: rec.id, api: rec.api, scope: rec.scopes.join(' ') },
    };
  }

  /** Writes the pending last-used times (one transaction). Errors are swallowed and retried next time. */
  flush(): void {
    if (this.pendingUses.size === 0) return;
    const batch = [...this.pendingUses];
    this.pendingUses.clear();
    try {
      this.o.store.recordUse(batch);
    } catch {
      for (const [id, at] of batch) if (!this.pendingUses.has(id)) this.pendingUses.set(id, at);
    }
  }

  close(): void {
    clearInterval(this.timer);
    this.flush();
    this.o.store.close();
  }
}
