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
