/**
 * Process-wide load signals for load shedding (Stripe, "Scaling your API with rate limiters":
 * fleet usage and worker utilisation load shedders), and the in-process concurrency table.
 */
import { monitorEventLoopDelay, type ELDHistogram } from 'node:perf_hooks';

/** Histogram resolution of the event-loop delay monitor, in ms. */
const RESOLUTION_MS = 10;
/** The delay reading is refreshed at most this often, in ms (a window of ~10 samples). */
const WINDOW_MS = 100;

/**
 * Event-loop delay (p99 of `perf_hooks.monitorEventLoopDelay` over the last 100–200 ms) and
 * the number of in-flight requests that passed an `abuse` stage in this process. One per process,
 * shared by every API and configuration generation; the histograms run while any user holds them.
 *
 * Two histograms run staggered: `reset()` makes a histogram skip its next sample, so a stall
 * that starts right after a reset would be lost by a single histogram. Readings alternate
 * between the two (each covers the last two windows and is then reset), so a stall missed by
 * one is seen by the other at the next reading, at most one window later.
 */
export class LoadMonitor {
  /** Requests admitted by an `abuse` network stage and not yet done. */
  inFlight = 0;
  private histograms: [ELDHistogram, ELDHistogram] | undefined;
  private turn = 0;
  private users = 0;
  private delay = 0;
  private sampledAt = 0;

  /** Starts the histograms for one more user (a control instance). */
  acquire(): void {
    if (this.users++ === 0) {
      const a = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
      const b = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
      a.enable();
      b.enable();
      this.histograms = [a, b];
      this.sampledAt = performance.now();
      this.delay = 0;
    }
  }

  /** Stops the histograms when their last user is gone. */
  release(): void {
    if (this.users > 0 && --this.users === 0) {
      this.histograms?.[0].disable();
      this.histograms?.[1].disable();
      this.histograms = undefined;
    }
  }

  /** p99 event-loop delay in ms over the latest windows (0 while no user holds the monitor). */
  delayMs(): number {
    const hs = this.histograms;
    if (hs === undefined) return 0;
    const now = performance.now();
    if (now - this.sampledAt >= WINDOW_MS) {
      const h = hs[this.turn] as ELDHistogram;
      this.turn ^= 1;
      this.delay = h.count > 0 ? h.percentile(99) / 1e6 : 0;
      h.reset();
      this.sampledAt = now;
    }
    return this.delay;
  }
}

/** The process's load monitor. */
export const loadMonitor = new LoadMonitor();

/**
 * In-flight request counts per key, in this process. An entry exists only while its count is
 * above zero, so the table is bounded by the number of in-flight requests.
 */
export class ConcurrencyTable {
  private readonly counts = new Map<string, number>();

  /** Takes a slot for `key` if fewer than `max` are taken; true when taken. */
  tryAcquire(key: string, max: number): boolean {
    const n = this.counts.get(key) ?? 0;
    if (n >= max) return false;
    this.counts.set(key, n + 1);
    return true;
  }

  /** Gives back one slot of `key`. */
  release(key: string): void {
    const n = this.counts.get(key);
    if (n === undefined) return;
    if (n <= 1) this.counts.delete(key);
    else this.counts.set(key, n - 1);
  }

  /** Slots taken for `key`. */
  count(key: string): number {
    return this.counts.get(key) ?? 0;
  }

  /** Keys with at least one slot taken. */
  get size(): number {
    return this.counts.size;
  }
}

/** The process's concurrency table (shared by configuration generations, so a reload leaks nothing). */
export const concurrencyTable = new ConcurrencyTable();
