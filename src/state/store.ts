/**
 * Store: the shared-state interface behind every per-client structure (rate-limit cells, replay
 * caches, revocation lists, travel history, enumeration windows). Every entry has a TTL and every
 * implementation has a bound, so no per-client table grows without limit.
 *
 * Implementations: `MemoryStore` (one process, bounded LRU) and `RedisStore` (shared by a cluster).
 * All methods may reject when the backing service fails; callers decide fail-open or fail-closed.
 */

/** Parameters of one GCRA limit (generic cell rate algorithm, ITU-T I.371 / RFC 2475-style policing). */
export interface GcraLimit {
  /** Emission interval T in milliseconds: the time one request "costs" (period / rate). */
  emissionIntervalMs: number;
  /** Burst tolerance τ in milliseconds: how far ahead of schedule a client may run ((burst - 1) × T). */
  burstToleranceMs: number;
}

/** Result of a GCRA check. */
export interface GcraResult {
  allowed: boolean;
  /** Requests that could still be admitted right now (after this one, when allowed). */
  remaining: number;
  /** When not allowed: milliseconds until a request of this cost would be admitted. */
  retryAfterMs: number;
  /** Milliseconds until the cell is back to a full burst (the bucket is "empty"). */
  resetAfterMs: number;
}

export interface Store {
  /** Backend name for metrics and events: `memory` or `redis`. */
  readonly kind: string;
  /**
   * Atomically applies GCRA to `key` for a request of `cost` cells (default 1) at the store's clock.
   * The key expires once its theoretical arrival time is in the past.
   */
  gcra(key: string, limit: GcraLimit, cost?: number): Promise<GcraResult>;
  /** Adds `by` to a counter that expires `ttlMs` after it was created; returns the new value. */
  incr(key: string, by: number, ttlMs: number): Promise<number>;
  /** Sets `key` only if absent, with a TTL; true when it was set (replay caches: DPoP `jti`). */
  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean>;
  /** Reads a value, `null` when absent or expired. */
  get(key: string): Promise<string | null>;
  /** Writes a value with a TTL in milliseconds. */
  set(key: string, value: string, ttlMs: number): Promise<void>;
  del(key: string): Promise<void>;
  /**
   * Adds `member` to a set that expires `ttlMs` after its last write; returns the set's size
   * (distinct object ids per identity, distinct sensitive values). Sets are capped at
   * `maxMembers` (default 10,000): beyond that the size keeps growing but members are not stored.
   */
  addToSet(key: string, member: string, ttlMs: number, maxMembers?: number): Promise<number>;
  /** Releases connections and timers. */
  close(): Promise<void>;
}
