/**
 * JWKS cache (RFC 7517 key sets, fetched from `jwks_uri` of RFC 8414 / OIDC Discovery metadata).
 *
 * - Keys are fetched at start-up (bounded by a timeout, never fatal: the gateway starts even when
 *   the provider is down, and {@link JwksCache.notReady} says why) and refreshed in the background.
 * - A token whose `kid` is unknown triggers at most one refetch, shared by every concurrent
 *   request (single flight), and then no other refetch for `cooldownMs`: a flood of tokens with
 *   random `kid`s cannot turn the gateway into a load generator against the provider.
 * - When the provider is down, the last good key set keeps working until `maxStaleMs` after its
 *   last successful fetch; after that verification fails closed.
 * - Key selection (kid, alg, kty, use, key_ops, crv) is jose's `createLocalJWKSet`. Keys named by
 *   the token itself (`jku`, `x5u`, `jwk`, `x5c`) are never used: only this set is consulted.
 */
import { createLocalJWKSet, errors as joseErrors, type CryptoKey, type JSONWebKeySet, type JWSHeaderParameters, type FlattenedJWSInput } from 'jose';
import { discover, fetchJson, ProviderError } from './http.ts';

/** Options of {@link JwksCache}. */
export interface JwksCacheOptions {
  /** Explicit key set URL; otherwise discovered from `issuer`. */
  jwksUri?: string;
  /** Issuer for OIDC discovery when `jwksUri` is absent. */
  issuer?: string;
  /** Timeout of each fetch, ms. */
  timeoutMs: number;
  /** Minimum time between two refetches triggered by unknown `kid`s, ms. */
  cooldownMs: number;
  /** Background refresh period, ms. */
  refreshMs: number;
  /** How long after the last successful fetch the key set may still be used, ms. */
  maxStaleMs: number;
  /** Maximum size of the JWKS document, bytes. */
  maxBytes?: number;
  /** Called on each refresh failure / recovery (operational events). */
  onError?: (message: string) => void;
  onRecover?: () => void;
  now?: () => number;
}

type KeyResolver = (header: JWSHeaderParameters, token: FlattenedJWSInput) => Promise<CryptoKey>;

/** Raised when no usable key set is available (never fetched, or older than `maxStaleMs`). */
export class JwksUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JwksUnavailableError';
  }
}

export class JwksCache {
  private readonly opts: JwksCacheOptions;
  private readonly now: () => number;
  private resolver: KeyResolver | undefined;
  private jwksUri: string | undefined;
  private fetchedAt = Number.NEGATIVE_INFINITY;
  private lastOnDemandAt = Number.NEGATIVE_INFINITY;
  private inflight: Promise<boolean> | undefined;
  private lastError: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private kids: string[] = [];
  private closed = false;
  /** Incremented on every successful fetch. */
  private generation = 0;
  /** Number of fetches of the key set made so far (for tests and metrics). */
  fetchCount = 0;

  constructor(opts: JwksCacheOptions) {
    if (opts.jwksUri === undefined && opts.issuer === undefined) throw new Error('JwksCache needs jwksUri or issuer');
    this.opts = opts;
    this.now = opts.now ?? Date.now;
    this.jwksUri = opts.jwksUri;
  }

  /** First fetch (awaited, never throws), then background refreshes. */
  async start(): Promise<void> {
    await this.refresh();
    this.schedule();
  }

  /** Next background refresh: every `refreshMs`, or every `cooldownMs` while failing. */
  private schedule(): void {
    if (this.closed) return;
    this.timer = setTimeout(
      () => {
        void this.refresh().then(() => this.schedule());
      },
      this.lastError === undefined ? this.opts.refreshMs : Math.min(this.opts.refreshMs, this.opts.cooldownMs),
    );
    this.timer.unref();
  }

  /** Stops the background refresh. */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** `undefined` when a usable key set is loaded; otherwise why not (for `/readyz`). */
  notReady(): string | undefined {
    if (this.resolver === undefined) return `JWKS not loaded${this.lastError ? `: ${this.lastError}` : ' yet'}`;
    if (this.now() - this.fetchedAt > this.opts.maxStaleMs)
      return `JWKS older than ${this.opts.maxStaleMs} ms and refresh failing: ${this.lastError ?? 'unknown error'}`;
    return undefined;
  }

  /** `kid`s of the current key set. */
  get keyIds(): readonly string[] {
    return this.kids;
  }

  /**
   * Fetches the key set now unless a fetch is in flight (then shares it). Resolves true when a new
   * key set was loaded; never rejects.
   */
  refresh(): Promise<boolean> {
    if (this.inflight) return this.inflight;
    this.inflight = this.doFetch().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private async doFetch(): Promise<boolean> {
    try {
      if (this.jwksUri === undefined) {
        const meta = await discover(this.opts.issuer as string, this.opts.timeoutMs);
        if (typeof meta.jwks_uri !== 'string') throw new ProviderError('discovery document has no jwks_uri');
        this.jwksUri = meta.jwks_uri;
      }
      this.fetchCount++;
      const { body } = await fetchJson(this.jwksUri, {
        timeoutMs: this.opts.timeoutMs,
        maxBytes: this.opts.maxBytes ?? 512 * 1024,
        init: { headers: { accept: 'application/jwk-set+json, application/json' } },
      });
      if (!Array.isArray(body.keys)) throw new ProviderError(`${this.jwksUri}: not a JWK Set (no "keys" array)`);
      // Only public signature keys: drop symmetric keys and private members a broken provider might publish.
      const keys = (body.keys as Record<string, unknown>[]).filter(
        (k) => k && typeof k === 'object' && k.kty !== 'oct' && (k.use === undefined || k.use === 'sig') && k.d === undefined,
      );
      this.resolver = createLocalJWKSet({ keys } as JSONWebKeySet) as KeyResolver;
      this.kids = keys.map((k) => String(k.kid ?? ''));
      this.fetchedAt = this.now();
      this.generation++;
      if (this.lastError !== undefined) {
        this.lastError = undefined;
        this.opts.onRecover?.();
      }
      return true;
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      const first = this.lastError === undefined;
      this.lastError = msg;
      if (first) this.opts.onError?.(msg);
      return false;
    }
  }

  /**
   * jose key resolver: the key for a JWS protected header. On an unknown `kid`, refetches once
   * (shared, subject to the cool-down) and tries again.
   * @throws {JwksUnavailableError} when no usable key set is loaded.
   * @throws {joseErrors.JWKSNoMatchingKey} when no key matches, even after a refetch.
   */
  getKey = async (header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey> => {
    if (!this.usable()) {
      await this.refreshOnDemand();
      if (!this.usable()) throw new JwksUnavailableError(this.notReady() ?? 'JWKS unavailable');
    }
    const generation = this.generation;
    try {
      return await (this.resolver as KeyResolver)(header, token);
    } catch (err) {
      if (!(err instanceof joseErrors.JWKSNoMatchingKey)) throw err;
      // A refetch that completed while this lookup ran counts as this request's refetch.
      if (this.generation === generation && !(await this.refreshOnDemand())) throw err;
      return await (this.resolver as KeyResolver)(header, token);
    }
  };

  private usable(): boolean {
    return this.resolver !== undefined && this.now() - this.fetchedAt <= this.opts.maxStaleMs;
  }

  /**
   * A refetch asked for by a request (unknown kid, no usable keys): joins the one in flight, or
   * starts one unless another on-demand refetch started less than `cooldownMs` ago. Scheduled
   * refreshes do not count against the cool-down. Resolves whether a refetch happened.
   */
  private async refreshOnDemand(): Promise<boolean> {
    if (this.inflight) {
      await this.inflight;
      return true;
    }
    const now = this.now();
    if (now - this.lastOnDemandAt < this.opts.cooldownMs) return false;
    this.lastOnDemandAt = now;
    await this.refresh();
    return true;
  }
}
