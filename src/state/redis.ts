/**
 * RedisStore: the {@link Store} shared by a cluster of gateway processes, on `ioredis`.
 *
 * - GCRA runs as one atomic Lua script on the Redis server's own clock (`TIME`), so N gateway
 *   processes share one exact budget whatever their local clocks say.
 * - Scripts run with `EVALSHA`; on a `NOSCRIPT` reply (Redis restarted, `SCRIPT FLUSH`, failover)
 *   the script is loaded again with `SCRIPT LOAD` and the call retried once.
 * - Keys are `<prefix>{<key>}<suffix>`: the Redis Cluster hash tag `{...}` keeps every key of one
 *   logical entry (a set and its overflow counter) in one slot, so multi-key scripts are
 *   Cluster-safe. A `{` or `}` inside a caller's key is replaced so it cannot move the tag.
 * - Every entry has a TTL (`PEXPIRE`/`PX`); sets are capped at `maxMembers`.
 * - When Redis is unreachable, calls reject at once (no offline queue), so a caller such as
 *   {@link ResilientStore} can decide fail-open or fail-closed quickly.
 */
import { createHash } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import type { GcraLimit, GcraResult, Store } from './store.ts';

/**
 * GCRA, virtual-scheduling form (ITU-T I.371 §4.4.2), same arithmetic as `gcraDecide` in gcra.ts.
 * KEYS[1] cell key. ARGV: emission interval T (ms), burst tolerance τ (ms), cost (cells).
 * TAT is stored in ms with 3 decimals (a Lua double keeps µs precision for epoch ms).
 * Returns {allowed 0|1, remaining, retryAfterMs, resetAfterMs}.
 */
const GCRA_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local T = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local base = tat
if base < now then base = now end
local newTat = base + T * cost
local allowAt = newTat - (tau + T)
if now < allowAt then
  local remaining = math.floor((tau + T - (base - now)) / T)
  if remaining < 0 then remaining = 0 end
  return {0, remaining, math.ceil(allowAt - now), math.ceil(base - now)}
end
local remaining = math.floor((tau + T - (newTat - now)) / T)
if remaining < 0 then remaining = 0 end
local ttl = math.ceil(newTat - now) + 1
redis.call('SET', KEYS[1], string.format('%.3f', newTat), 'PX', ttl)
return {1, remaining, 0, math.ceil(newTat - now)}
`;

/** INCRBY with a TTL set when the counter is created. KEYS[1]; ARGV: by, ttlMs. */
const INCR_LUA = `
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if v == tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return v
`;

/**
 * Capped set: KEYS[1] members, KEYS[2] overflow count (same hash tag, same slot).
 * ARGV: member, ttlMs, maxMembers. Returns members stored + members counted but not stored.
 */
const SET_LUA = `
local over = tonumber(redis.call('GET', KEYS[2]) or '0')
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then
  if redis.call('SCARD', KEYS[1]) < tonumber(ARGV[3]) then
    redis.call('SADD', KEYS[1], ARGV[1])
  else
    over = redis.call('INCR', KEYS[2])
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if over > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
return redis.call('SCARD', KEYS[1]) + over
`;

interface Script {
  source: string;
  sha: string;
}

function script(source: string): Script {
  return { source, sha: createHash('sha1').update(source).digest('hex') };
}

const SCRIPTS = { gcra: script(GCRA_LUA), incr: script(INCR_LUA), set: script(SET_LUA) } as const;

/** Raised when a command is issued while Redis is not connected (after the first connection attempt). */
export class StoreUnavailableError extends Error {
  readonly code = 'STORE_UNAVAILABLE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

/** Options of {@link RedisStore}. */
export interface RedisStoreOptions {
  /** Prefix of every key (default `rampart:`); tests use a unique one per run. */
  keyPrefix?: string;
  /** How long the very first connection may take before calls fail, in ms (default 2000). */
  connectTimeoutMs?: number;
  /** Extra ioredis options (e.g. `password`, `tls`, `db`). */
  redis?: RedisOptions;
}

/**
 * A {@link Store} on one Redis server (`redis://host:port[/db]`, `rediss://` for TLS).
 * Methods reject with {@link StoreUnavailableError} while disconnected and with the Redis error
 * on a command failure; they never hang longer than `connectTimeoutMs` (first connect) or the
 * ioredis `commandTimeout` (default 1000 ms).
 */
export class RedisStore implements Store {
  readonly kind = 'redis';
  readonly client: Redis;
  private readonly prefix: string;
  private readonly firstReady: Promise<void>;
  private everReady = false;
  private closed = false;

  /** @param url `redis://[user:pass@]host:port[/db]` or `rediss://...`. */
  constructor(url: string, opts: RedisStoreOptions = {}) {
    this.prefix = opts.keyPrefix ?? 'rampart:';
    this.client = new Redis(url, {
      enableOfflineQueue: false,
      // Batches the commands of one event-loop turn into one write (fewer syscalls under load).
      enableAutoPipelining: true,
      maxRetriesPerRequest: 0,
      commandTimeout: 1000,
      connectTimeout: opts.connectTimeoutMs ?? 2000,
      // Reconnect quickly so the circuit breaker sees recovery within a second or so.
      retryStrategy: (times) => Math.min(50 * times, 500),
      ...opts.redis,
    });
    // Errors surface through rejected calls; an unhandled 'error' event would crash the process.
    this.client.on('error', () => {});
    const timeout = opts.connectTimeoutMs ?? 2000;
    this.firstReady = new Promise<void>((resolve) => {
      const t = setTimeout(resolve, timeout);
      t.unref();
      this.client.once('ready', () => {
        clearTimeout(t);
        resolve();
      });
    }).then(() => {
      this.everReady = true;
    });
    this.firstReady.catch(() => {});
  }

  /** The Redis key for a logical key, with the Cluster hash tag around the caller's key. */
  redisKey(key: string, suffix = ''): string {
    const k = key.indexOf('{') === -1 && key.indexOf('}') === -1 ? key : key.replace(/[{}]/g, '_');
    return `${this.prefix}{${k}}${suffix}`;
  }

  private async ready(): Promise<void> {
    if (this.client.status === 'ready') return;
    if (this.closed) throw new StoreUnavailableError('redis store is closed');
    if (!this.everReady) {
      await this.firstReady;
      if ((this.client.status as string) === 'ready') return;
    }
    throw new StoreUnavailableError(`redis not connected (${this.client.status})`);
  }

  /** Runs a script by SHA; on `NOSCRIPT` loads it and retries once (Redis restarted or flushed). */
  private async evalScript(s: Script, keys: string[], args: (string | number)[]): Promise<unknown> {
    await this.ready();
    try {
      return await this.client.evalsha(s.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (err instanceof Error && err.message.startsWith('NOSCRIPT')) {
        await this.client.script('LOAD', s.source);
        return await this.client.evalsha(s.sha, keys.length, ...keys, ...args);
      }
      throw err;
    }
  }

  async gcra(key: string, limit: GcraLimit, cost = 1): Promise<GcraResult> {
    const r = (await this.evalScript(SCRIPTS.gcra, [this.redisKey(key)], [limit.emissionIntervalMs, limit.burstToleranceMs, cost])) as number[];
    return { allowed: r[0] === 1, remaining: Number(r[1]), retryAfterMs: Number(r[2]), resetAfterMs: Number(r[3]) };
  }

  async incr(key: string, by: number, ttlMs: number): Promise<number> {
    return Number(await this.evalScript(SCRIPTS.incr, [this.redisKey(key)], [by, Math.max(1, Math.ceil(ttlMs))]));
  }

  async setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    await this.ready();
    const r = await this.client.set(this.redisKey(key), value, 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX');
    return r === 'OK';
  }

  async get(key: string): Promise<string | null> {
    await this.ready();
    return this.client.get(this.redisKey(key));
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    await this.ready();
    await this.client.set(this.redisKey(key), value, 'PX', Math.max(1, Math.ceil(ttlMs)));
  }

  async del(key: string): Promise<void> {
    await this.ready();
    await this.client.del(this.redisKey(key), this.redisKey(key, ':n'));
  }

  async addToSet(key: string, member: string, ttlMs: number, maxMembers = 10_000): Promise<number> {
    return Number(await this.evalScript(SCRIPTS.set, [this.redisKey(key), this.redisKey(key, ':n')], [member, Math.max(1, Math.ceil(ttlMs)), maxMembers]));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
  }
}
