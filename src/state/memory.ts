/**
 * MemoryStore: the default, single-process {@link Store}. A bounded LRU (default 100,000 keys)
 * with per-entry TTLs; the least recently used entry is evicted when full.
 *
 * With `gcraShare` < 1 every GCRA limit is scaled to that share of its budget (see
 * `scaleLimit`): N worker processes each holding a MemoryStore with share 1/N together admit
 * at most the configured budget. Exact cluster-wide limits need the Redis store.
 */
import type { GcraLimit, GcraResult, Store } from './store.ts';
import { gcraDecide, scaleLimit } from './gcra.ts';

interface Entry {
  value: string | number | Set<string> | { size: number; members: Set<string> };
  expiresAt: number;
}

/** Options of {@link MemoryStore}. */
export interface MemoryStoreOptions {
  /** Maximum number of keys (default 100,000). */
  maxKeys?: number;
  /** Clock in milliseconds (tests inject one). */
  now?: () => number;
  /** Share (0 < share ≤ 1, default 1) of every GCRA budget this store enforces. */
  gcraShare?: number;
}

export class MemoryStore implements Store {
  readonly kind = 'memory';
  private readonly map = new Map<string, Entry>();
  private readonly maxKeys: number;
  private readonly now: () => number;
  /** Share of every GCRA budget enforced here (1 = the whole budget). */
  readonly gcraShare: number;
  private readonly scaled = new WeakMap<GcraLimit, GcraLimit>();

  constructor(opts: MemoryStoreOptions = {}) {
    this.maxKeys = opts.maxKeys ?? 100_000;
    this.now = opts.now ?? Date.now;
    const share = opts.gcraShare ?? 1;
    if (!(share > 0 && share <= 1)) throw new RangeError(`gcraShare must be in (0, 1], got ${share}`);
    this.gcraShare = share;
  }

  /** Number of live-or-not-yet-swept keys (for tests and metrics). */
  get size(): number {
    return this.map.size;
  }

  private read(key: string, now: number): Entry | undefined {
    const e = this.map.get(key);
    if (e === undefined) return undefined;
    if (e.expiresAt <= now) {
      this.map.delete(key);
      return undefined;
    }
    // LRU: re-insert to move to the end.
    this.map.delete(key);
    this.map.set(key, e);
    return e;
  }

  private write(key: string, e: Entry): void {
    this.map.delete(key);
    this.map.set(key, e);
    if (this.map.size > this.maxKeys) {
      const oldest = this.map.keys().next();
      if (!oldest.done) this.map.delete(oldest.value);
    }
  }

  /** Synchronous {@link Store.gcra} (the memory store needs no I/O). */
  gcraSync(key: string, limit: GcraLimit, cost = 1): GcraResult {
    if (this.gcraShare < 1) {
      let s = this.scaled.get(limit);
      if (s === undefined) {
        s = scaleLimit(limit, this.gcraShare);
        this.scaled.set(limit, s);
      }
      limit = s;
    }
    const now = this.now();
    const e = this.read(key, now);
    const tat = e === undefined ? now : (e.value as number);
    const { result, newTat } = gcraDecide(now, tat, limit, cost);
    if (result.allowed) this.write(key, { value: newTat, expiresAt: newTat + 1 });
    return result;
  }

  async gcra(key: string, limit: GcraLimit, cost = 1): Promise<GcraResult> {
    return this.gcraSync(key, limit, cost);
  }

  async incr(key: string, by: number, ttlMs: number): Promise<number> {
    const now = this.now();
    const e = this.read(key, now);
    if (e === undefined) {
      this.write(key, { value: by, expiresAt: now + ttlMs });
      return by;
    }
    e.value = (e.value as number) + by;
    return e.value;
  }

  async setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    const now = this.now();
    if (this.read(key, now) !== undefined) return false;
    this.write(key, { value, expiresAt: now + ttlMs });
    return true;
  }

  async get(key: string): Promise<string | null> {
    const e = this.read(key, this.now());
    return e === undefined ? null : String(e.value);
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    this.write(key, { value, expiresAt: this.now() + ttlMs });
  }

  async del(key: string): Promise<void> {
    this.map.delete(key);
  }

  async addToSet(key: string, member: string, ttlMs: number, maxMembers = 10_000): Promise<number> {
    const now = this.now();
    const e = this.read(key, now);
    if (e === undefined) {
      this.write(key, { value: { size: 1, members: new Set([member]) }, expiresAt: now + ttlMs });
      return 1;
    }
    const s = e.value as { size: number; members: Set<string> };
    e.expiresAt = now + ttlMs;
    if (!s.members.has(member)) {
      s.size++;
      if (s.members.size < maxMembers) s.members.add(member);
    }
    return s.size;
  }

  async close(): Promise<void> {
    this.map.clear();
  }
}
