/**
 * Lets an expired test timeout fire. node:test cannot interrupt synchronous code: a test whose
 * synchronous body overruns its `timeout` is still reported as passing unless the event loop gets
 * a turn before the test settles. Awaiting a 1 ms timer after each piece of synchronous work gives
 * it one: timers run in expiry order, so the (already expired) timeout fires first and fails the
 * test. Linear-time tests use it after every pathological input.
 */
export function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 1));
}
