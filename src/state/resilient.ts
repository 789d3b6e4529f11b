/**
 * ResilientStore: a circuit breaker around a remote {@link Store} (Redis).
 *
 * Each call to the primary store is bounded by `timeoutMs` (default 100 ms), so a request never
 * waits longer than that for a decision. After `failureThreshold` consecutive failures the
 * breaker opens and calls skip the primary entirely; after `cooldownMs` one probe call goes to
 * the primary (half-open): success closes the breaker, failure opens it again. Each transition
 * is reported through `onTransition` (the store factory turns it into a security event).
 *
 * While the primary is failing or the breaker is open:
 * - `fail_open`: calls go to a local {@link MemoryStore} whose GCRA budgets are `share` of the
 *   configured ones (share = 1 / number of processes sharing the Redis budget), so the cluster
 *   as a whole stays near its budget while Redis is away;
 * - `fail_closed`: calls reject with {@link StoreUnavailableError}; the caller denies.
 *
 * Pattern: Nygard, "Release It!" circuit breaker; Stripe's rate limiters fail open on Redis loss.
 */
import type { GcraLimit, GcraResult, Store } from './store.ts';
import { MemoryStore } from './memory.ts';
import { StoreUnavailableError } from './redis.ts';

/** What happens to store calls while the primary store is unavailable. */
export type FailMode = 'fail_open' | 'fail_closed';

/** Circuit breaker states. */
export type BreakerState = 'closed' | 'open' | 'half_open';

/** One breaker transition, as given to `onTransition`. */
export interface BreakerTransition {
  from: BreakerState;
  to: BreakerState;
  /** Message of the error that caused an opening (never contains secrets: Redis error text only). */
  error?: string;
}

/** Options of {@link ResilientStore}. */
export interface ResilientStoreOptions {
  /** Default `fail_open`. */
  failMode?: FailMode;
  /** Share (0 < share ≤ 1) of each GCRA budget enforced by the fail-open fallback (default 1). */
  share?: number;
  /** Maximum wait for the primary per call, in ms (default 100). */
  timeoutMs?: number;
  /** Consecutive failures that open the breaker (default 3). */
  failureThreshold?: number;
  /** Time the breaker stays open before a probe, in ms (default 1000). */
  cooldownMs?: number;
  /** Keys of the fail-open fallback store (default 100,000). */
  fallbackMaxKeys?: number;
  /** Called on each breaker transition. */
  onTransition?: (t: BreakerTransition) => void;
  /** Clock in ms (default `performance.now`). */
  now?: () => number;
}

const TIMEOUT = Symbol('timeout');

/** A {@link Store} that guards a remote primary with a circuit breaker and a fail mode. */
export class ResilientStore implements Store {
  readonly kind: string;
  readonly primary: Store;
  readonly fallback: MemoryStore;
  readonly failMode: FailMode;
  private readonly timeoutMs: number;
  private readonly threshold: number;
  private readonly cooldownMs: number;
  private readonly onTransition: ((t: BreakerTransition) => void) | undefined;
  private readonly now: () => number;
  private breaker: BreakerState = 'closed';
  private failures = 0;
  private openedAt = 0;
  private probing = false;

  constructor(primary: Store, opts: ResilientStoreOptions = {}) {
    this.primary = primary;
    this.kind = primary.kind;
    this.failMode = opts.failMode ?? 'fail_open';
    this.timeoutMs = opts.timeoutMs ?? 100;
    this.threshold = opts.failureThreshold ?? 3;
    this.cooldownMs = opts.cooldownMs ?? 1000;
    this.onTransition = opts.onTransition;
    this.now = opts.now ?? (() => performance.now());
    this.fallback = new MemoryStore({ maxKeys: opts.fallbackMaxKeys ?? 100_000, gcraShare: opts.share ?? 1 });
  }

  /** Current breaker state. */
  get state(): BreakerState {
    return this.breaker;
  }

  private transition(to: BreakerState, error?: unknown): void {
    const from = this.breaker;
    if (from === to) return;
    this.breaker = to;
    if (to === 'open') this.openedAt = this.now();
    if (this.onTransition) {
      const t: BreakerTransition = { from, to };
      if (error !== undefined) t.error = error instanceof Error ? error.message : String(error);
      try {
        this.onTransition(t);
      } catch {
        // A listener must never break the request path.
      }
    }
  }

  /** Runs `op` on the primary when the breaker allows, else (or on failure) per the fail mode. */
  private async call<R>(op: (s: Store) => Promise<R>): Promise<R> {
    let probe = false;
    if (this.breaker === 'open') {
      if (this.now() - this.openedAt >= this.cooldownMs && !this.probing) {
        this.transition('half_open');
      }
    }
    if (this.breaker === 'half_open') {
      if (this.probing) return this.degraded(op);
      probe = true;
      this.probing = true;
    } else if (this.breaker === 'open') {
      return this.degraded(op);
    }
    try {
      const r = await this.withTimeout(op(this.primary));
      this.failures = 0;
      if (probe) this.transition('closed');
      return r;
    } catch (err) {
      this.failures++;
      if (probe || this.failures >= this.threshold) this.transition('open', err);
      return this.degraded(op);
    } finally {
      if (probe) this.probing = false;
    }
  }

  /**
   * Races `p` against the deadline. When the deadline timer fires, the verdict waits for the
   * check phase of the same loop turn (setImmediate), after the poll phase has read replies that
   * arrived in time: a busy event loop must not turn a timely Redis reply into a false timeout.
   */
  private withTimeout<R>(p: Promise<R>): Promise<R> {
    let timer: NodeJS.Timeout | undefined;
    const t = new Promise<typeof TIMEOUT>((resolve) => {
      timer = setTimeout(() => setImmediate(resolve, TIMEOUT), this.timeoutMs);
    });
    p.catch(() => {}); // a late rejection after the timeout must not be unhandled
    return Promise.race([p, t]).then((r) => {
      clearTimeout(timer);
      if (r === TIMEOUT) throw new StoreUnavailableError(`store call exceeded ${this.timeoutMs} ms`);
      return r as R;
    });
  }

  private degraded<R>(op: (s: Store) => Promise<R>): Promise<R> {
    if (this.failMode === 'fail_closed') return Promise.reject(new StoreUnavailableError('shared store unavailable (fail_closed)'));
    return op(this.fallback);
  }

  gcra(key: string, limit: GcraLimit, cost = 1): Promise<GcraResult> {
    return this.call((s) => s.gcra(key, limit, cost));
  }
  incr(key: string, by: number, ttlMs: number): Promise<number> {
    return this.call((s) => s.incr(key, by, ttlMs));
  }
  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    return this.call((s) => s.setIfAbsent(key, value, ttlMs));
  }
  get(key: string): Promise<string | null> {
    return this.call((s) => s.get(key));
  }
  set(key: string, value: string, ttlMs: number): Promise<void> {
    return this.call((s) => s.set(key, value, ttlMs));
  }
  del(key: string): Promise<void> {
    return this.call((s) => s.del(key));
  }
  addToSet(key: string, member: string, ttlMs: number, maxMembers?: number): Promise<number> {
    return this.call((s) => s.addToSet(key, member, ttlMs, maxMembers));
  }
  async close(): Promise<void> {
    await Promise.allSettled([this.primary.close(), this.fallback.close()]);
  }
}
