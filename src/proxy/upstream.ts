/**
 * Upstream groups: one undici Pool per target (keep-alive), round-robin over healthy targets,
 * passive health (a target failing `failures` times in a row is skipped for `cooldown_ms`).
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Pool } from 'undici';
import type { UpstreamConfig, UpstreamTlsConfig } from '../config/schema.ts';

/**
 * TLS options of the upstream connections from `upstream.tls`: the certificate is always
 * verified (`rejectUnauthorized`), against `ca` when given; `cert`/`key` are presented as the
 * gateway's client certificate. Paths must be absolute (the gateway resolves them).
 * @throws {Error} naming the file when one cannot be read.
 */
export function upstreamTlsOptions(t: UpstreamTlsConfig | undefined): ConnectionOptions {
  if (t === undefined) return {};
  const read = (p: string): string => {
    try {
      return readFileSync(p, 'utf8');
    } catch (e) {
      throw new Error(`upstream.tls: cannot read ${p}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  };
  const o: ConnectionOptions = { rejectUnauthorized: true, minVersion: t.min_version };
  if (t.ca) o.ca = t.ca.map(read);
  if (t.cert && t.key) {
    o.cert = read(t.cert);
    o.key = read(t.key);
  }
  if (t.server_name) o.servername = t.server_name;
  return o;
}

/** One upstream target and its passive health state. */
export interface Target {
  /** Origin, e.g. `http://127.0.0.1:3000`. */
  readonly origin: string;
  /** Base path of the target URL without trailing slash ('' for `/`). */
  readonly basePath: string;
  readonly pool: Pool;
  consecutiveFailures: number;
  /** `Date.now()` ms until which the target is skipped. */
  downUntil: number;
}

export class UpstreamGroup {
  readonly targets: Target[];
  private next = 0;
  private readonly failures: number;
  private readonly cooldownMs: number;

  /** Opens a pool per target (no connection is made until the first request). */
  constructor(cfg: UpstreamConfig) {
    this.failures = cfg.health.failures;
    this.cooldownMs = cfg.health.cooldown_ms;
    const tls = upstreamTlsOptions(cfg.tls);
    this.targets = cfg.targets.map((t) => {
      const u = new URL(t);
      return {
        origin: u.origin,
        basePath: u.pathname.replace(/\/+$/, ''),
        pool: new Pool(u.origin, {
          connections: cfg.connections,
          pipelining: 1,
          keepAliveTimeout: 4_000,
          connect: u.protocol === 'https:' ? { timeout: cfg.timeouts.connect_ms, ...tls } : { timeout: cfg.timeouts.connect_ms },
          headersTimeout: cfg.timeouts.headers_ms,
          bodyTimeout: cfg.timeouts.body_idle_ms,
        }),
        consecutiveFailures: 0,
        downUntil: 0,
      };
    });
  }

  /** Next healthy target round-robin, or `undefined` when all are cooling down. `exclude` skips one. */
  pick(exclude?: Target): Target | undefined {
    const n = this.targets.length;
    const now = Date.now();
    for (let i = 0; i < n; i++) {
      const t = this.targets[(this.next + i) % n] as Target;
      if (t === exclude) continue;
      if (t.downUntil <= now) {
        this.next = (this.next + i + 1) % n;
        return t;
      }
    }
    return undefined;
  }

  /** Records a successful exchange with `t`. */
  success(t: Target): void {
    t.consecutiveFailures = 0;
  }

  /** Records a failure; after `failures` in a row the target cools down. */
  failure(t: Target): void {
    t.consecutiveFailures++;
    if (t.consecutiveFailures >= this.failures) {
      t.downUntil = Date.now() + this.cooldownMs;
      t.consecutiveFailures = 0;
    }
  }

  /** Closes the pools once their in-flight requests finish. */
  async close(): Promise<void> {
    await Promise.allSettled(this.targets.map((t) => t.pool.close()));
  }

  /** Destroys the pools at once (drain deadline passed). */
  async destroy(): Promise<void> {
    await Promise.allSettled(this.targets.map((t) => t.pool.destroy()));
  }
}
