/**
 * Webhook sink: POSTs each security event as JSON to the security team's endpoint, signed with
 * HMAC-SHA-256, retried with exponential backoff and full jitter, from a bounded queue (the
 * request path never waits on it; when the queue is full the oldest event is dropped and counted).
 *
 * Signature (Stripe/Standard-Webhooks style, so a receiver can reject replays):
 *
 *     X-Rampart-Signature: t=<unix seconds>,v1=<hex HMAC-SHA-256(secret, "<t>.<raw body>")>
 *     X-Rampart-Event-Id:  <uuid>   (the same on every retry: receivers de-duplicate on it)
 *
 * Retries: network errors, timeouts, 408, 429 and 5xx; `Retry-After` (seconds) is honoured up to
 * the maximum backoff. Other 4xx answers drop the event (the receiver refused it).
 */
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import type { SecurityEvent } from '../event.ts';

/** Options of {@link WebhookSink}. */
export interface WebhookSinkOptions {
  /** Receiver URL (https in production). */
  url: string;
  /** HMAC key shared with the receiver (at least 16 characters). */
  secret: string;
  /** Extra request headers (e.g. an `Authorization` the receiver expects). */
  headers?: Record<string, string>;
  /** Per-attempt timeout in ms (default 5000). */
  timeoutMs?: number;
  /** Attempts per event, the first included (default 5). */
  maxAttempts?: number;
  /** First backoff in ms (default 500); doubles per attempt. */
  backoffMs?: number;
  /** Largest backoff in ms (default 30000). */
  maxBackoffMs?: number;
  /** Queue bound in events (default 1000); the oldest is dropped when full. */
  maxQueue?: number;
  /** Deliveries in flight at once (default 2). */
  concurrency?: number;
  /** Random source in [0, 1) for jitter (tests pass a fixed one). */
  random?: () => number;
  /** Called for operational problems (drops, failures); never with event contents. */
  onError?: (msg: string, data?: object) => void;
}

/** Counters of a {@link WebhookSink}. */
export interface WebhookStats {
  delivered: number;
  /** Events dropped because the queue was full. */
  dropped: number;
  /** Events given up after the last attempt or refused with a 4xx. */
  failed: number;
  retries: number;
}

interface Item {
  id: string;
  body: string;
  attempt: number;
}

/** Name of the signature header. */
export const SIGNATURE_HEADER = 'x-rampart-signature';

/**
 * Computes the signature header value for `body` at `timestamp` (unix seconds).
 */
export function signWebhook(secret: string, body: string, timestamp: number): string {
  const mac = createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
  return `t=${timestamp},v1=${mac}`;
}

/**
 * Verifies a signature header for a receiver: the MAC (constant-time) and the timestamp within
 * `toleranceSec` (default 300) of `now` (unix seconds).
 */
export function verifyWebhookSignature(
  secret: string,
  header: string | undefined,
  body: string,
  toleranceSec = 300,
  now = Math.floor(Date.now() / 1000),
): boolean {
  if (header === undefined) return false;
  const parts = new Map(header.split(',').map((p) => p.split('=', 2) as [string, string]));
  const t = Number(parts.get('t'));
  const v1 = parts.get('v1');
  if (!Number.isInteger(t) || v1 === undefined || Math.abs(now - t) > toleranceSec) return false;
  const expected = Buffer.from(createHmac('sha256', secret).update(`${t}.${body}`).digest('hex'));
  const got = Buffer.from(v1);
  return got.length === expected.length && timingSafeEqual(got, expected);
}

/** Signed JSON webhook sink (see the module comment for the wire format). */
export class WebhookSink {
  readonly name: string;
  readonly stats: WebhookStats = { delivered: 0, dropped: 0, failed: 0, retries: 0 };
  private readonly url: string;
  private readonly secret: string;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;
  private readonly maxAttempts: number;
  private readonly backoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly maxQueue: number;
  private readonly concurrency: number;
  private readonly random: () => number;
  private readonly onError: (msg: string, data?: object) => void;
  private readonly queue: Item[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly controllers = new Set<AbortController>();
  private inFlight = 0;
  private waiting = 0;
  private closed = false;
  private idle: (() => void)[] = [];

  /** @throws {Error} when the URL is not http(s) or the secret is shorter than 16 characters. */
  constructor(opts: WebhookSinkOptions) {
    const u = new URL(opts.url);
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error('webhook sink: url must be http(s)');
    if (opts.secret.length < 16) throw new Error('webhook sink: secret must be at least 16 characters');
    this.name = `webhook:${u.origin}`;
    this.url = opts.url;
    this.secret = opts.secret;
    this.headers = opts.headers ?? {};
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.maxAttempts = opts.maxAttempts ?? 5;
    this.backoffMs = opts.backoffMs ?? 500;
    this.maxBackoffMs = opts.maxBackoffMs ?? 30_000;
    this.maxQueue = opts.maxQueue ?? 1000;
    this.concurrency = opts.concurrency ?? 2;
    this.random = opts.random ?? Math.random;
    this.onError = opts.onError ?? (() => {});
  }

  /** Queues `event` for delivery; never blocks or throws. */
  write(event: SecurityEvent): void {
    if (this.closed) return;
    if (this.queue.length + this.waiting >= this.maxQueue) {
      if (this.queue.length > 0) {
        this.queue.shift();
        this.stats.dropped++;
      } else {
        this.stats.dropped++;
        return;
      }
    }
    this.queue.push({ id: randomUUID(), body: JSON.stringify(event), attempt: 0 });
    this.pump();
  }

  private pump(): void {
    while (this.inFlight < this.concurrency && this.queue.length > 0) {
      const item = this.queue.shift() as Item;
      this.inFlight++;
      void this.deliver(item).finally(() => {
        this.inFlight--;
        this.pump();
        this.checkIdle();
      });
    }
  }

  private checkIdle(): void {
    if (this.inFlight === 0 && this.queue.length === 0 && this.waiting === 0) {
      const w = this.idle;
      this.idle = [];
      for (const f of w) f();
    }
  }

  private async deliver(item: Item): Promise<void> {
    item.attempt++;
    const ac = new AbortController();
    this.controllers.add(ac);
    const timer = setTimeout(() => ac.abort(), this.timeoutMs);
    let retryAfterMs: number | undefined;
    let retry = false;
    try {
      const t = Math.floor(Date.now() / 1000);
      const r = await fetch(this.url, {
        method: 'POST',
        headers: {
          ...this.headers,
          'content-type': 'application/json',
          'user-agent': 'rampart-webhook/1',
          'x-rampart-event-id': item.id,
          [SIGNATURE_HEADER]: signWebhook(this.secret, item.body, t),
        },
        body: item.body,
        signal: ac.signal,
      });
      await r.body?.cancel().catch(() => {});
      if (r.ok) {
        this.stats.delivered++;
        return;
      }
      retry = r.status === 408 || r.status === 429 || r.status >= 500;
      const ra = Number(r.headers.get('retry-after'));
      if (Number.isFinite(ra) && ra >= 0) retryAfterMs = ra * 1000;
      if (!retry) this.onError('webhook receiver refused the event', { status: r.status });
    } catch (e) {
      retry = true;
      if (this.closed && ac.signal.aborted) retry = false;
      else this.onError('webhook delivery failed', { error: (e as Error).message });
    } finally {
      clearTimeout(timer);
      this.controllers.delete(ac);
    }
    if (!retry || item.attempt >= this.maxAttempts || this.closed) {
      this.stats.failed++;
      return;
    }
    this.stats.retries++;
    // Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff and Jitter").
    const cap = Math.min(this.maxBackoffMs, this.backoffMs * 2 ** (item.attempt - 1));
    const delay = Math.min(this.maxBackoffMs, retryAfterMs ?? Math.floor(this.random() * cap));
    this.waiting++;
    const t = setTimeout(() => {
      this.timers.delete(t);
      this.waiting--;
      if (this.closed) {
        this.stats.failed++;
        this.checkIdle();
        return;
      }
      this.queue.unshift(item);
      this.pump();
    }, delay);
    this.timers.add(t);
  }

  /**
   * Waits until the queue has drained (in-flight deliveries and pending retries), at most
   * `timeoutMs` (default 5000), then stops: remaining events are counted as failed.
   */
  async close(timeoutMs = 5000): Promise<void> {
    if (this.inFlight > 0 || this.queue.length > 0 || this.waiting > 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, timeoutMs);
        this.idle.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.stats.failed += this.queue.length + this.timers.size;
    this.timers.clear();
    this.queue.length = 0;
    this.waiting = 0;
    for (const ac of this.controllers) ac.abort();
  }
}
