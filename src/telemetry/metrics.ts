/**
 * Prometheus metrics (prom-client), one set per process, registered on the default registry so
 * that the cluster primary can aggregate every worker's values on the admin listener.
 */
import client from 'prom-client';

let metrics: GatewayMetrics | undefined;

/** The gateway's metrics. Durations are in seconds (Prometheus convention). */
export interface GatewayMetrics {
  /** Requests by API, status code and verdict (`allow`, `deny`, `challenge`, `error`). */
  requests: client.Counter<'api' | 'status' | 'verdict'>;
  /** Whole-request latency by API, in seconds. */
  requestDuration: client.Histogram<'api'>;
  /** Upstream latency (headers received) by API, in seconds. */
  upstreamDuration: client.Histogram<'api'>;
  /** Security events by control and reason. */
  events: client.Counter<'control' | 'reason'>;
  /** Configuration reloads by result (`ok`, `error`). */
  reloads: client.Counter<'result'>;
  /** Requests in flight (set from {@link trackInFlight} when scraped). */
  inFlight: client.Gauge;
}

const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Returns the process's metrics, creating them on first use. */
export function gatewayMetrics(): GatewayMetrics {
  if (metrics) return metrics;
  client.collectDefaultMetrics({ prefix: 'rampart_' });
  metrics = {
    requests: new client.Counter({ name: 'rampart_requests_total', help: 'Requests by API, status and verdict.', labelNames: ['api', 'status', 'verdict'] }),
    requestDuration: new client.Histogram({ name: 'rampart_request_duration_seconds', help: 'Whole request latency.', labelNames: ['api'], buckets: BUCKETS }),
    upstreamDuration: new client.Histogram({
      name: 'rampart_upstream_duration_seconds',
      help: 'Upstream latency to response headers.',
      labelNames: ['api'],
      buckets: BUCKETS,
    }),
    events: new client.Counter({ name: 'rampart_security_events_total', help: 'Security events by control and reason.', labelNames: ['control', 'reason'] }),
    reloads: new client.Counter({ name: 'rampart_config_reloads_total', help: 'Configuration reloads by result.', labelNames: ['result'] }),
    inFlight: new client.Gauge({
      name: 'rampart_requests_in_flight',
      help: 'Requests in flight.',
      collect() {
        this.set(inFlightNow);
      },
    }),
  };
  // Export both results from the start (0), so dashboards and alerts see the series before the first reload.
  metrics.reloads.inc({ result: 'ok' }, 0);
  metrics.reloads.inc({ result: 'error' }, 0);
  return metrics;
}

/** Requests in flight in this process; read into the gauge at scrape time (no per-request gauge update). */
let inFlightNow = 0;

/** Adds `delta` (+1 when a request starts, -1 when it ends) to the in-flight gauge. */
export function trackInFlight(delta: number): void {
  inFlightNow += delta;
}

const requestChildren = new Map<string, client.Counter.Internal>();
const durationChildren = new Map<string, client.Histogram.Internal<'api'>>();
const upstreamChildren = new Map<string, client.Histogram.Internal<'api'>>();

/**
 * Counts one finished request. Label children are cached (bounded: APIs × status codes ×
 * verdicts, capped at 4,096 combinations), so the hot path skips prom-client's label hashing.
 */
export function countRequest(m: GatewayMetrics, api: string, status: number, verdict: string, seconds: number): void {
  const key = `${api}\u0000${status}\u0000${verdict}`;
  let c = requestChildren.get(key);
  if (c === undefined) {
    c = m.requests.labels(api, String(status), verdict);
    if (requestChildren.size < 4096) requestChildren.set(key, c);
  }
  c.inc();
  let h = durationChildren.get(api);
  if (h === undefined) {
    h = m.requestDuration.labels(api);
    if (durationChildren.size < 1024) durationChildren.set(api, h);
  }
  h.observe(seconds);
}

/** Observes one upstream exchange (seconds to response headers). */
export function observeUpstream(m: GatewayMetrics, api: string, seconds: number): void {
  let h = upstreamChildren.get(api);
  if (h === undefined) {
    h = m.upstreamDuration.labels(api);
    if (upstreamChildren.size < 1024) upstreamChildren.set(api, h);
  }
  h.observe(seconds);
}

/** Prometheus text exposition of this process's registry. */
export async function metricsText(): Promise<{ contentType: string; body: string }> {
  return { contentType: client.register.contentType, body: await client.register.metrics() };
}

export { client as promClient };
