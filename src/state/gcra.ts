/**
 * GCRA (generic cell rate algorithm, the "virtual scheduling" form of ITU-T I.371 §4.4.2):
 * a rate limit with a burst tolerance, equivalent to a token bucket without a refill timer.
 * One value per key: the theoretical arrival time (TAT) of the next request, in ms.
 */
import type { GcraLimit, GcraResult } from './store.ts';

/**
 * Decides one request of `cost` cells at time `now` (ms) for a cell whose TAT is `tat` (ms).
 * A TAT in the past counts as `now` (an idle client has its full burst back); a clock that goes
 * backwards never grants extra requests, because the stored TAT only moves forward.
 *
 * @returns the result and the new TAT to store when allowed.
 */
export function gcraDecide(now: number, tat: number, limit: GcraLimit, cost = 1): { result: GcraResult; newTat: number } {
  const T = limit.emissionIntervalMs;
  const tau = limit.burstToleranceMs;
  const base = Math.max(tat, now);
  const newTat = base + T * cost;
  const allowAt = newTat - (tau + T);
  if (now < allowAt) {
    const remaining = Math.max(0, Math.floor((tau + T - (base - now)) / T));
    return { result: { allowed: false, remaining, retryAfterMs: Math.ceil(allowAt - now), resetAfterMs: Math.ceil(base - now) }, newTat: tat };
  }
  const remaining = Math.max(0, Math.floor((tau + T - (newTat - now)) / T));
  return { result: { allowed: true, remaining, retryAfterMs: 0, resetAfterMs: Math.ceil(newTat - now) }, newTat };
}

/**
 * The GCRA limit for `count` requests per `periodMs` with a burst of `burst` requests
 * (default `count`): T = periodMs / count, τ = (burst − 1) × T.
 * @throws {RangeError} when `count`, `periodMs` or `burst` is not positive.
 */
export function gcraLimit(count: number, periodMs: number, burst = count): GcraLimit {
  if (!(count > 0) || !(periodMs > 0) || !(burst >= 1)) throw new RangeError(`invalid GCRA limit ${count}/${periodMs}ms burst ${burst}`);
  const T = periodMs / count;
  return { emissionIntervalMs: T, burstToleranceMs: (Math.floor(burst) - 1) * T };
}

/** Burst size (requests admitted at once by a fresh cell) of a limit: τ / T + 1. */
export function gcraBurst(limit: GcraLimit): number {
  return Math.round(limit.burstToleranceMs / limit.emissionIntervalMs) + 1;
}

/**
 * A `share` (0 < share ≤ 1) of a limit, for one of several processes that each enforce a part
 * of one budget without shared state (memory store in N workers, Redis fail-open fallback):
 * the rate is multiplied by `share` (T / share) and the burst becomes max(1, ⌊burst × share⌋),
 * so the processes together never admit more than the whole budget (except bursts below N).
 * Returns `limit` itself when `share` is 1.
 */
export function scaleLimit(limit: GcraLimit, share: number): GcraLimit {
  if (share >= 1) return limit;
  const T = limit.emissionIntervalMs / share;
  const burst = Math.max(1, Math.floor(gcraBurst(limit) * share + 1e-9));
  return { emissionIntervalMs: T, burstToleranceMs: (burst - 1) * T };
}
