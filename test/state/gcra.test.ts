/**
 * GCRA against a reference schedule (ITU-T I.371 virtual scheduling): emission interval,
 * burst tolerance, cost, idle refill, clock going backwards, worker shares.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gcraBurst, gcraDecide, gcraLimit, scaleLimit } from '../../src/state/gcra.ts';
import { MemoryStore } from '../../src/state/memory.ts';

// 10 requests per second (T = 100 ms) with a burst of 3 (τ = 200 ms).
const LIMIT = gcraLimit(10, 1000, 3);

test('gcraLimit computes T and τ', () => {
  assert.deepEqual(LIMIT, { emissionIntervalMs: 100, burstToleranceMs: 200 });
  assert.deepEqual(gcraLimit(20, 1000, 40), { emissionIntervalMs: 50, burstToleranceMs: 1950 });
  assert.deepEqual(gcraLimit(10_000, 86_400_000), { emissionIntervalMs: 8640, burstToleranceMs: 9999 * 8640 });
  assert.equal(gcraBurst(gcraLimit(20, 1000, 40)), 40);
  assert.throws(() => gcraLimit(0, 1000), RangeError);
  assert.throws(() => gcraLimit(1, 0), RangeError);
});

test('reference schedule: burst, emission interval, retry-after, reset', () => {
  let now = 0;
  const store = new MemoryStore({ now: () => now });
  const seq: [number, boolean, number, number, number][] = [
    // t, allowed, remaining, retryAfterMs, resetAfterMs
    [0, true, 2, 0, 100],
    [0, true, 1, 0, 200],
    [0, true, 0, 0, 300],
    [0, false, 0, 100, 300],
    [50, false, 0, 50, 250],
    [100, true, 0, 0, 300],
    [150, false, 0, 50, 250],
    [200, true, 0, 0, 300],
    [400, true, 1, 0, 200],
    [1000, true, 2, 0, 100],
  ];
  for (const [t, allowed, remaining, retryAfterMs, resetAfterMs] of seq) {
    now = t;
    assert.deepEqual(store.gcraSync('k', LIMIT), { allowed, remaining, retryAfterMs, resetAfterMs }, `at t=${t}`);
  }
});

test('steady overload admits exactly burst + elapsed / T', () => {
  let now = 0;
  const store = new MemoryStore({ now: () => now });
  let admitted = 0;
  for (now = 0; now <= 10_000; now += 10) if (store.gcraSync('k', LIMIT).allowed) admitted++;
  assert.equal(admitted, 3 + 10_000 / 100);
});

test('cost counts several cells; a request too big is refused without consuming', () => {
  const r1 = gcraDecide(0, 0, LIMIT, 2);
  assert.deepEqual(r1.result, { allowed: true, remaining: 1, retryAfterMs: 0, resetAfterMs: 200 });
  assert.equal(r1.newTat, 200);
  const r2 = gcraDecide(0, r1.newTat, LIMIT, 2);
  assert.equal(r2.result.allowed, false);
  assert.equal(r2.result.retryAfterMs, 100);
  assert.equal(r2.newTat, 200);
  assert.equal(gcraDecide(0, 0, LIMIT, 4).result.allowed, false);
});

test('clock going backwards never grants extra requests', () => {
  let now = 1000;
  const store = new MemoryStore({ now: () => now });
  for (let i = 0; i < 3; i++) assert.equal(store.gcraSync('k', LIMIT).allowed, true);
  assert.equal(store.gcraSync('k', LIMIT).allowed, false);
  now = 500; // clock jumps back 500 ms
  const r = store.gcraSync('k', LIMIT);
  assert.deepEqual(r, { allowed: false, remaining: 0, retryAfterMs: 600, resetAfterMs: 800 });
  now = 0;
  assert.equal(store.gcraSync('k', LIMIT).allowed, false);
  now = 1100; // back to the original timeline: exactly one emission interval later
  assert.equal(store.gcraSync('k', LIMIT).allowed, true);
  assert.equal(store.gcraSync('k', LIMIT).allowed, false);
});

test('keys are independent and expire once their TAT is past', () => {
  let now = 0;
  const store = new MemoryStore({ now: () => now });
  for (let i = 0; i < 3; i++) store.gcraSync('a', LIMIT);
  assert.equal(store.gcraSync('a', LIMIT).allowed, false);
  assert.equal(store.gcraSync('b', LIMIT).allowed, true);
  now = 400;
  store.gcraSync('c', LIMIT); // touch
  assert.equal(store.size, 3);
  now = 10_000;
  assert.equal(store.gcraSync('a', LIMIT).remaining, 2);
});

test('scaleLimit: each of N workers gets 1/N of rate and burst', () => {
  const l = gcraLimit(20, 1000, 40);
  assert.equal(scaleLimit(l, 1), l);
  assert.deepEqual(scaleLimit(l, 0.5), { emissionIntervalMs: 100, burstToleranceMs: 1900 });
  const third = scaleLimit(l, 1 / 3);
  assert.equal(gcraBurst(third), 13);
  assert.equal(third.emissionIntervalMs, 150);
  assert.equal(gcraBurst(scaleLimit(gcraLimit(1, 1000, 1), 0.25)), 1);
  // A memory store with share 1/4 admits a quarter of the burst.
  const store = new MemoryStore({ now: () => 0, gcraShare: 0.25 });
  let admitted = 0;
  for (let i = 0; i < 100; i++) if (store.gcraSync('k', l).allowed) admitted++;
  assert.equal(admitted, 10);
  assert.throws(() => new MemoryStore({ gcraShare: 0 }), RangeError);
});
