/**
 * RedisStore against the real Redis at 127.0.0.1:6379 (unique key prefix per run).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { RedisStore } from '../../src/state/redis.ts';
import { gcraLimit } from '../../src/state/gcra.ts';
import { createStore, MemoryStore, ResilientStore } from '../../src/state/index.ts';

const REDIS_URL = 'redis://127.0.0.1:6379';
const PREFIX = `rampart-test:${process.pid}:${randomUUID()}:`;
let store: RedisStore;
let admin: Redis;

before(async () => {
  store = new RedisStore(REDIS_URL, { keyPrefix: PREFIX });
  admin = new Redis(REDIS_URL);
});

after(async () => {
  const keys = await admin.keys(`${PREFIX}*`);
  if (keys.length) await admin.del(...keys);
  await store.close();
  await admin.quit();
});

test('gcra: a fresh key admits exactly the burst, then refuses with Retry-After ≈ T', async () => {
  const limit = gcraLimit(5, 3_600_000, 5); // T = 720 s
  const remaining: number[] = [];
  for (let i = 0; i < 5; i++) {
    const r = await store.gcra('burst', limit);
    assert.equal(r.allowed, true);
    remaining.push(r.remaining);
  }
  assert.deepEqual(remaining, [4, 3, 2, 1, 0]);
  const denied = await store.gcra('burst', limit);
  assert.equal(denied.allowed, false);
  assert.equal(denied.remaining, 0);
  assert.ok(denied.retryAfterMs > 719_000 && denied.retryAfterMs <= 720_000, String(denied.retryAfterMs));
  assert.ok(denied.resetAfterMs > 3_599_000 && denied.resetAfterMs <= 3_600_000, String(denied.resetAfterMs));
  // The cell carries a TTL equal to its reset time (+1 ms), under the Cluster hash-tagged name.
  const pttl = await admin.pttl(`${PREFIX}{burst}`);
  assert.ok(pttl > 3_599_000 && pttl <= 3_600_001, String(pttl));
});

test('keys use a Cluster hash tag; braces in caller keys cannot move the tag', () => {
  assert.equal(store.redisKey('rl:api:ip:10.0.0.1'), `${PREFIX}{rl:api:ip:10.0.0.1}`);
  assert.equal(store.redisKey('a{b}c', ':n'), `${PREFIX}{a_b_c}:n`);
});

test('incr, setIfAbsent, get, set, del with TTLs', async () => {
  assert.equal(await store.incr('n', 2, 60_000), 2);
  assert.equal(await store.incr('n', 3, 60_000), 5);
  const pttl = await admin.pttl(`${PREFIX}{n}`);
  assert.ok(pttl > 59_000 && pttl <= 60_000);
  assert.equal(await store.setIfAbsent('jti', 'x', 60_000), true);
  assert.equal(await store.setIfAbsent('jti', 'y', 60_000), false);
  assert.equal(await store.get('jti'), 'x');
  await store.set('v', 'hello', 60_000);
  assert.equal(await store.get('v'), 'hello');
  await store.del('v');
  assert.equal(await store.get('v'), null);
  assert.equal(await store.get('never'), null);
});

test('addToSet counts distinct members and caps what it stores', async () => {
  assert.equal(await store.addToSet('s', 'a', 60_000, 3), 1);
  assert.equal(await store.addToSet('s', 'a', 60_000, 3), 1);
  assert.equal(await store.addToSet('s', 'b', 60_000, 3), 2);
  assert.equal(await store.addToSet('s', 'c', 60_000, 3), 3);
  assert.equal(await store.addToSet('s', 'd', 60_000, 3), 4);
  assert.equal(await store.addToSet('s', 'e', 60_000, 3), 5);
  assert.equal(await store.addToSet('s', 'a', 60_000, 3), 5);
  assert.equal(await admin.scard(`${PREFIX}{s}`), 3);
  await store.del('s');
  assert.equal(await store.addToSet('s', 'z', 60_000, 3), 1);
});

test('three processes sharing one key admit exactly the GCRA allowance (±1%)', async () => {
  // Allowance over the few seconds of the test: the burst (300); T = 12 s, so no refill happens.
  const perHour = 300;
  const burst = 300;
  const fixture = fileURLToPath(new URL('./fixtures/gcra-client.ts', import.meta.url));
  const startAt = Date.now() + 1500;
  const run = promisify(execFile);
  const outs = await Promise.all(
    [0, 1, 2].map(() => run(process.execPath, [fixture, REDIS_URL, PREFIX, 'shared', String(burst), String(perHour), String(burst), String(startAt)])),
  );
  const admitted = outs.map((o) => Number(o.stdout.trim()));
  const total = admitted.reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(total - burst) <= burst * 0.01, `admitted ${admitted.join('+')} = ${total}, expected ${burst}`);
  assert.equal(total, burst);
  // Every process got some of the budget: they really raced for it.
  for (const a of admitted) assert.ok(a > 0, `admitted ${admitted.join('+')}`);
});

test('createStore: memory, redis with options, bad input', async () => {
  const m = createStore('memory', { memoryMaxKeys: 10, workers: 4 });
  assert.ok(m instanceof MemoryStore);
  assert.equal((m as MemoryStore).gcraShare, 0.25);
  const r = createStore(`${REDIS_URL}?fail=closed&instances=3&prefix=${encodeURIComponent(PREFIX)}`, { workers: 2 });
  assert.ok(r instanceof ResilientStore);
  assert.equal(r.kind, 'redis');
  assert.equal((r as ResilientStore).failMode, 'fail_closed');
  assert.equal((r as ResilientStore).fallback.gcraShare, 1 / 6);
  await r.set('factory', 'ok', 10_000);
  assert.equal(await admin.get(`${PREFIX}{factory}`), 'ok');
  await r.close();
  assert.throws(() => createStore('etcd://x:1'), /unsupported scheme/);
  assert.throws(() => createStore('redis://127.0.0.1:6379?fail=maybe'), /fail must be/);
  assert.throws(() => createStore('redis://127.0.0.1:6379?instances=0'), /instances/);
  assert.throws(() => createStore('nonsense'), /expected "memory"/);
});
