/**
 * Store factory: turns the configuration's `state.store` string into a {@link Store}.
 *
 * - `memory` → a bounded {@link MemoryStore}. With several worker processes (env
 *   `RAMPART_WORKERS`, set by the gateway's process manager) each worker enforces
 *   1 / RAMPART_WORKERS of every GCRA budget; use Redis for exact cluster-wide limits.
 * - `redis://[user:pass@]host:port[/db]` (or `rediss://`) → a {@link RedisStore} behind a
 *   {@link ResilientStore} circuit breaker. Query parameters (removed before connecting):
 *   - `fail=open|closed` (default `open`): behaviour while Redis is unreachable;
 *   - `instances=N` (default 1): gateway processes sharing this Redis; in fail-open each process
 *     (and each of its workers) falls back to 1 / (N × RAMPART_WORKERS) of every budget;
 *   - `timeout_ms` (default 100): per-call decision deadline; `cooldown_ms` (default 1000):
 *     breaker open time before a probe; `prefix` (default `rampart:`): key prefix.
 */
import type { EventInput } from '../events/event.ts';
import { MemoryStore } from './memory.ts';
import { RedisStore } from './redis.ts';
import { type FailMode, ResilientStore } from './resilient.ts';
import type { Store } from './store.ts';

export type { Store, GcraLimit, GcraResult } from './store.ts';
export { MemoryStore } from './memory.ts';
export { RedisStore, StoreUnavailableError } from './redis.ts';
export { ResilientStore, type FailMode, type BreakerState, type BreakerTransition } from './resilient.ts';

/** Options of {@link createStore}; URL query parameters override them. */
export interface CreateStoreOptions {
  /** Bound of the memory store (config `state.memory_max_keys`, default 100,000). */
  memoryMaxKeys?: number;
  /** Worker processes of this gateway (default: env `RAMPART_WORKERS`, else 1). */
  workers?: number;
  /** Redis only: behaviour while Redis is unreachable (default `fail_open`). */
  failMode?: FailMode;
  /** Redis only: gateway processes sharing the Redis budget (default 1). */
  instances?: number;
  /** Redis only: per-call deadline in ms (default 100). */
  timeoutMs?: number;
  /** Redis only: breaker cooldown in ms (default 1000). */
  cooldownMs?: number;
  /** Redis only: key prefix (default `rampart:`). */
  keyPrefix?: string;
  /** Receives a security event on each circuit-breaker transition (`control: 'state'`). */
  emit?: (event: EventInput) => void;
}

/** Worker count from env `RAMPART_WORKERS` (a positive integer), else 1. */
export function workerCount(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number(env.RAMPART_WORKERS);
  return Number.isInteger(n) && n >= 1 ? n : 1;
}

function positiveInt(v: string | null, name: string): number | undefined {
  if (v === null) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`state.store: ${name} must be a positive integer, got "${v}"`);
  return n;
}

/**
 * Builds the store named by `url` (config `state.store`).
 * @throws {Error} on an unknown scheme or a bad query parameter (message names the setting).
 */
export function createStore(url: string, opts: CreateStoreOptions = {}): Store {
  const workers = opts.workers ?? workerCount();
  if (url === 'memory' || url === '' || url === 'memory://') {
    return new MemoryStore({ maxKeys: opts.memoryMaxKeys ?? 100_000, gcraShare: 1 / workers });
  }
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`state.store: expected "memory" or "redis://host:port", got "${url}"`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw new Error(`state.store: unsupported scheme "${u.protocol}" (expected memory, redis:// or rediss://)`);
  }
  const q = u.searchParams;
  let failMode = opts.failMode ?? 'fail_open';
  const fail = q.get('fail');
  if (fail !== null) {
    if (fail === 'open' || fail === 'fail_open') failMode = 'fail_open';
    else if (fail === 'closed' || fail === 'fail_closed') failMode = 'fail_closed';
    else throw new Error(`state.store: fail must be "open" or "closed", got "${fail}"`);
  }
  const instances = positiveInt(q.get('instances'), 'instances') ?? opts.instances ?? 1;
  const timeoutMs = positiveInt(q.get('timeout_ms'), 'timeout_ms') ?? opts.timeoutMs ?? 100;
  const cooldownMs = positiveInt(q.get('cooldown_ms'), 'cooldown_ms') ?? opts.cooldownMs ?? 1000;
  const keyPrefix = q.get('prefix') ?? opts.keyPrefix ?? 'rampart:';
  for (const k of ['fail', 'instances', 'timeout_ms', 'cooldown_ms', 'prefix']) q.delete(k);
  const redisUrl = u.toString();
  const primary = new RedisStore(redisUrl, { keyPrefix });
  const emit = opts.emit;
  const endpoint = `${u.hostname}:${u.port || '6379'}`;
  return new ResilientStore(primary, {
    failMode,
    share: 1 / (instances * workers),
    timeoutMs,
    cooldownMs,
    fallbackMaxKeys: opts.memoryMaxKeys ?? 100_000,
    onTransition: emit
      ? (t) =>
          emit({
            control: 'state',
            reason: t.to === 'open' ? 'store-unavailable' : t.to === 'closed' ? 'store-recovered' : 'store-probe',
            action: 'alert',
            severity: t.to === 'open' ? 'high' : 'info',
            details: { store: 'redis', endpoint, from: t.from, to: t.to, fail_mode: failMode, ...(t.error ? { error: t.error } : {}) },
          })
      : undefined,
  });
}
