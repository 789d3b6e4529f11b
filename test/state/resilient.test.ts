/**
 * ResilientStore with a real, throwaway redis-server that is killed mid-test and started again:
 * fail_open falls back to a local share of the budget, fail_closed refuses, both within the
 * decision deadline; the breaker recovers by itself and reports each transition.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { RedisStore, StoreUnavailableError } from '../../src/state/redis.ts';
import { ResilientStore, type BreakerTransition } from '../../src/state/resilient.ts';
import { gcraLimit } from '../../src/state/gcra.ts';
import { freePort, ThrowawayRedis } from './fixtures/redis-server.ts';

let server: ThrowawayRedis;

before(async () => {
  server = new ThrowawayRedis(await freePort());
  await server.start();
});

after(async () => {
  await server.stop();
});

async function untilClosed(store: ResilientStore, op: () => Promise<unknown>): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (store.state !== 'closed') {
    if (Date.now() > deadline) throw new Error(`breaker still ${store.state}`);
    await op().catch(() => {});
    await new Promise((r) => setTimeout(r, 50));
  }
}

const LIMIT = gcraLimit(30, 3_600_000, 30); // burst 30, no refill during the test

/**
 * Resolves with `p`'s outcome, or rejects when it takes longer than `guardMs`. The guard is far
 * above the store's 100 ms deadline: it proves a decision is cut off (a hung or dead primary
 * would otherwise never answer) without turning machine load into failures. The 100 ms figure
 * itself is configuration, measured in bench/abuse.
 */
async function decided<T>(p: Promise<T>, guardMs = 2000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_r, reject) => {
    timer = setTimeout(() => reject(new Error(`no decision within ${guardMs} ms`)), guardMs);
  });
  try {
    return await Promise.race([p, guard]);
  } finally {
    clearTimeout(timer);
  }
}

test('EVALSHA reloads scripts after SCRIPT FLUSH', async () => {
  const store = new RedisStore(server.url, { keyPrefix: 'noscript:' });
  const admin = new Redis(server.url);
  try {
    assert.equal((await store.gcra('k', gcraLimit(2, 3_600_000, 2))).allowed, true);
    await admin.script('FLUSH');
    assert.equal((await store.gcra('k', gcraLimit(2, 3_600_000, 2))).allowed, true);
    assert.equal((await store.gcra('k', gcraLimit(2, 3_600_000, 2))).allowed, false);
    await admin.script('FLUSH');
    assert.equal(await store.addToSet('s', 'a', 60_000), 1);
    assert.equal(await store.incr('n', 1, 60_000), 1);
  } finally {
    await store.close();
    await admin.quit();
  }
});

test('fail_open: Redis killed → local 1/3 share of the budget within the deadline; recovery closes the breaker', async () => {
  const transitions: BreakerTransition[] = [];
  const store = new ResilientStore(new RedisStore(server.url, { keyPrefix: 'open:' }), {
    failMode: 'fail_open',
    share: 1 / 3,
    timeoutMs: 100,
    cooldownMs: 200,
    onTransition: (t) => transitions.push(t),
  });
  try {
    for (let i = 0; i < 5; i++) assert.equal((await store.gcra('k', LIMIT)).remaining, 29 - i);
    assert.equal(store.state, 'closed');

    await server.stop();
    let admitted = 0;
    for (let i = 0; i < 30; i++) {
      if ((await decided(store.gcra('k', LIMIT))).allowed) admitted++;
    }
    // The fallback enforces a third of the burst: ⌊30 / 3⌋ = 10.
    assert.equal(admitted, 10);
    assert.equal(store.state, 'open');
    assert.deepEqual(transitions[0] && { from: transitions[0].from, to: transitions[0].to }, { from: 'closed', to: 'open' });
    assert.equal(typeof transitions[0]?.error, 'string');

    await server.start(); // empty: no persistence, and an empty script cache (NOSCRIPT path)
    await untilClosed(store, () => store.gcra('recovery', LIMIT));
    const last = transitions.at(-1);
    assert.deepEqual(last && { from: last.from, to: last.to }, { from: 'half_open', to: 'closed' });
    for (const t of transitions) assert.ok(['closed>open', 'open>half_open', 'half_open>open', 'half_open>closed'].includes(`${t.from}>${t.to}`));
    // Back on Redis: the key is fresh on the restarted server.
    assert.equal((await store.gcra('k', LIMIT)).remaining, 29);
  } finally {
    await store.close();
  }
});

test('fail_closed: Redis killed → StoreUnavailableError within the deadline; recovery', async () => {
  const transitions: string[] = [];
  const store = new ResilientStore(new RedisStore(server.url, { keyPrefix: 'closed:' }), {
    failMode: 'fail_closed',
    timeoutMs: 100,
    cooldownMs: 200,
    onTransition: (t) => transitions.push(`${t.from}>${t.to}`),
  });
  try {
    assert.equal((await store.gcra('k', LIMIT)).allowed, true);
    await server.stop();
    for (let i = 0; i < 5; i++) {
      await assert.rejects(decided(store.gcra('k', LIMIT)), StoreUnavailableError);
    }
    await assert.rejects(store.setIfAbsent('x', '1', 1000), StoreUnavailableError);
    assert.equal(store.state, 'open');
    await server.start();
    await untilClosed(store, () => store.get('probe'));
    assert.equal(transitions[0], 'closed>open');
    assert.equal(transitions.at(-1), 'half_open>closed');
    assert.equal((await store.gcra('k', LIMIT)).allowed, true);
  } finally {
    await store.close();
  }
});

test('a hung primary is cut off at the deadline (timeout counts as a failure)', async () => {
  // A TCP server that accepts and never answers: ioredis connects, but commands never return.
  const { createServer } = await import('node:net');
  const sockets: import('node:net').Socket[] = [];
  const hung = createServer((s) => sockets.push(s));
  await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
  const port = (hung.address() as { port: number }).port;
  const primary = new RedisStore(`redis://127.0.0.1:${port}`, { connectTimeoutMs: 5000 });
  const store = new ResilientStore(primary, { failMode: 'fail_open', timeoutMs: 100, failureThreshold: 2 });
  try {
    for (let i = 0; i < 3; i++) {
      assert.equal((await decided(store.gcra('k', LIMIT))).allowed, true);
    }
    assert.equal(store.state, 'open');
  } finally {
    await store.close();
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => hung.close(() => r()));
  }
});
