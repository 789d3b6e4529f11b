/**
 * Load generation for the benchmarks: a thin wrapper over `autocannon` (run in this process)
 * that returns the handful of numbers the reports print.
 *
 * Run the system under test in another process (see `bench/run.ts`): autocannon needs a core of
 * its own, and a server sharing its event loop would measure the load generator, not itself.
 */
import autocannon from 'autocannon';

/** HTTP method accepted by {@link runLoad}. */
export type LoadMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'OPTIONS';

/** Options of {@link runLoad}. */
export interface LoadOptions {
  /** Full target URL including path and query, e.g. `http://127.0.0.1:8080/health`. */
  url: string;
  /** Concurrent keep-alive connections. */
  connections: number;
  /** Measurement length in seconds (fractions allowed). */
  durationSec: number;
  /** Request method; default `GET`. */
  method?: LoadMethod;
  /** Request body sent with every request. */
  body?: string | Buffer;
  /** Request headers sent with every request (lower-case names recommended). */
  headers?: Record<string, string>;
  /** Requests in flight per connection; default 1 (no pipelining). */
  pipelining?: number;
  /** Per-request timeout in seconds; default 10. */
  timeoutSec?: number;
}

/**
 * Outcome of one {@link runLoad}. Latencies are in milliseconds with autocannon's 1 ms
 * resolution (its histogram records whole ms), over responses of every status; rates per second.
 */
export interface LoadResult {
  /** Mean completed requests per second over the run. */
  rps: number;
  /** Median response latency, ms. */
  p50Ms: number;
  /** 99th percentile response latency, ms. */
  p99Ms: number;
  /** Mean response latency, ms. */
  meanMs: number;
  /** Connection errors, timeouts included. */
  errors: number;
  /** Of which timeouts. */
  timeouts: number;
  /** Responses with a status outside 200..299. */
  non2xx: number;
  /** Responses received (any status). */
  totalRequests: number;
  /** Actual run length in seconds. */
  durationSec: number;
}

/**
 * Runs autocannon against `opts.url` for `opts.durationSec` seconds with `opts.connections`
 * connections and resolves with the summary. Rejects when autocannon cannot start (bad URL);
 * connection failures during the run are counted in `errors` instead.
 */
export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  const result = await autocannon({
    url: opts.url,
    connections: opts.connections,
    duration: opts.durationSec,
    method: opts.method ?? 'GET',
    body: opts.body,
    headers: opts.headers,
    pipelining: opts.pipelining ?? 1,
    timeout: opts.timeoutSec ?? 10,
  });
  return {
    rps: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    meanMs: result.latency.average,
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    totalRequests: result.requests.total,
    durationSec: result.duration,
  };
}
