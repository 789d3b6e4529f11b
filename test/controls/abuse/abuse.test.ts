/**
 * `abuse` control, stage level: GCRA limits with RateLimit headers, read/write budgets, keys,
 * phases, one event per window (`quiet`), concurrency slots, load shedding, store failures.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { abuseSchema, parseRateSpec, zeroConfigAbuse } from '../../../src/controls/abuse/index.ts';
import { concurrencyTable, loadMonitor } from '../../../src/controls/abuse/load.ts';
import { MemoryStore } from '../../../src/state/memory.ts';
import { RedisStore } from '../../../src/state/redis.ts';
import { freePort } from '../../state/fixtures/redis-server.ts';
import { build, makeCtx } from './helpers.ts';

const NOW = 1_000_000;
const fixedStore = () => new MemoryStore({ now: () => NOW });

test('parseRateSpec accepts COUNT/UNIT for s, min, h, day', () => {
  assert.deepEqual(parseRateSpec('20/s'), { count: 20, periodMs: 1000 });
  assert.deepEqual(parseRateSpec('600/min'), { count: 600, periodMs: 60_000 });
  assert.deepEqual(parseRateSpec('1000/h'), { count: 1000, periodMs: 3_600_000 });
  assert.deepEqual(parseRateSpec('10000/day'), { count: 10_000, periodMs: 86_400_000 });
  assert.deepEqual(parseRateSpec(' 5 / Second '), { count: 5, periodMs: 1000 });
  assert.deepEqual(parseRateSpec('7/d'), { count: 7, periodMs: 86_400_000 });
  for (const bad of ['20', '0/s', '20/week', '-1/s', '1.5/s', '/s', '20/', 'abc']) {
    assert.throws(() => parseRateSpec(bad), /invalid rate/, bad);
  }
});

test('zeroConfigAbuse: one default limit keyed by identity, else IP', () => {
  const cfg = abuseSchema.parse(zeroConfigAbuse('20/s'));
  assert.equal(cfg.rate_limits.length, 1);
  assert.deepEqual({ ...cfg.rate_limits[0] }, { name: 'default', rate: '20/s', key: 'identity_or_ip', cost: 1, methods: 'all' });
  assert.throws(() => zeroConfigAbuse('20/fortnight'), /invalid rate/);
  assert.equal(abuseSchema.safeParse({ rate_limits: [{ name: 'x', rate: 'lots' }] }).success, false);
});

test('GCRA limit per IP: burst admitted with RateLimit headers, then 429 with Retry-After; one event per window', async () => {
  const b = await build({ rate_limits: [{ name: 'per-ip', rate: '3/h', key: 'ip' }] }, fixedStore());
  assert.deepEqual(
    b.stages.map((s) => s.phase),
    ['network'],
  );
  const seen: string[] = [];
  for (let i = 0; i < 3; i++) {
    const ctx = makeCtx();
    assert.equal(await b.run(ctx), undefined);
    assert.equal(ctx.responseHeaders.get('ratelimit-policy'), '"per-ip";q=3;w=3600');
    seen.push(ctx.responseHeaders.get('ratelimit') as string);
  }
  assert.deepEqual(seen, ['"per-ip";r=2;t=1200', '"per-ip";r=1;t=2400', '"per-ip";r=0;t=3600']);

  const r1 = await b.run(makeCtx());
  assert.ok(r1);
  assert.equal(r1.action, 'deny');
  assert.equal(r1.problem.status, 429);
  assert.equal(r1.problem.code, 'rate-limited');
  assert.deepEqual(r1.problem.headers, { 'retry-after': '1200', 'ratelimit-policy': '"per-ip";q=3;w=3600', ratelimit: '"per-ip";r=0;t=3600' });
  assert.equal(r1.quiet, undefined, 'first rejection in the window is reported');
  assert.deepEqual(r1.details, { limit: 'per-ip', key: ['ip'], quota: 3, window_s: 3600, retry_after_s: 1200, store: 'memory' });
  const r2 = await b.run(makeCtx());
  assert.equal(r2?.problem.status, 429);
  assert.equal(r2?.quiet, true, 'later rejections in the same window are quiet');
  // Another client has its own budget.
  assert.equal(await b.run(makeCtx({ ip: '192.0.2.2' })), undefined);
  assert.equal(b.events.length, 0, 'rejections are reported by the gateway, not emitted by the control');
});

test('separate read and write budgets', async () => {
  const b = await build(
    {
      rate_limits: [
        { name: 'reads', rate: '2/h', key: 'ip', methods: 'read' },
        { name: 'writes', rate: '1/h', key: 'ip', methods: 'write' },
      ],
    },
    fixedStore(),
  );
  const statuses = async (method: string, n: number) => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push((await b.run(makeCtx({ method })))?.problem.status ?? 200);
    return out;
  };
  assert.deepEqual(await statuses('GET', 3), [200, 200, 429]);
  assert.deepEqual(await statuses('POST', 2), [200, 429]);
  assert.deepEqual(await statuses('HEAD', 1), [429]);
  assert.deepEqual(await statuses('DELETE', 1), [429]);
  const ctx = makeCtx({ method: 'OPTIONS', ip: '192.0.2.9' });
  await b.run(ctx);
  assert.equal(ctx.responseHeaders.get('ratelimit-policy'), '"reads";q=2;w=3600');
});

test('identity_or_ip: budget follows the subject across IPs; anonymous clients are keyed by IP', async () => {
  const b = await build({ rate_limits: [{ name: 'default', rate: '2/h' }] }, fixedStore());
  assert.deepEqual(
    b.stages.map((s) => s.phase),
    ['abuse'],
  );
  const alice = { subject: 'alice' };
  assert.equal(await b.run(makeCtx({ identity: alice, ip: '198.51.100.1' })), undefined);
  assert.equal(await b.run(makeCtx({ identity: alice, ip: '198.51.100.2' })), undefined);
  assert.equal((await b.run(makeCtx({ identity: alice, ip: '198.51.100.3' })))?.problem.status, 429);
  assert.equal(await b.run(makeCtx({ identity: { subject: 'bob' }, ip: '198.51.100.1' })), undefined);
  assert.equal(await b.run(makeCtx({ ip: '198.51.100.1' })), undefined);
  assert.equal(await b.run(makeCtx({ ip: '198.51.100.1' })), undefined);
  assert.equal((await b.run(makeCtx({ ip: '198.51.100.1' })))?.problem.status, 429);
});

test('several limits per route: the short window refuses without spending the daily budget', async () => {
  let now = NOW;
  const store = new MemoryStore({ now: () => now });
  const b = await build(
    {
      rate_limits: [
        { name: 'daily', rate: '100/day', key: 'ip' },
        { name: 'burst', rate: '20/s', burst: 40, key: 'ip' },
      ],
    },
    store,
  );
  let ok = 0;
  for (let i = 0; i < 50; i++) if ((await b.run(makeCtx())) === undefined) ok++;
  assert.equal(ok, 40);
  now += 2000; // the per-second cell is full again
  const ctx = makeCtx();
  assert.equal(await b.run(ctx), undefined);
  assert.equal(ctx.responseHeaders.get('ratelimit-policy'), '"burst";q=40;w=2, "daily";q=100;w=86400');
  // 41 of the daily 100 spent: refusals by "burst" did not count.
  assert.equal(ctx.responseHeaders.get('ratelimit'), '"burst";r=39;t=1, "daily";r=59;t=35422');
});

test('limits scoped by path prefix and by operation; header and CEL keys', async () => {
  const b = await build(
    {
      rate_limits: [
        { name: 'login', rate: '1/h', key: 'ip', path_prefix: '/login' },
        { name: 'export', rate: '1/h', key: 'identity', operations: ['exportUsers'] },
        { name: 'tenant', rate: '1/h', key: 'header:X-Tenant' },
        { name: 'cel', rate: '1/h', key: 'cel:request.method + ":" + request.headers["x-team"]' },
      ],
    },
    fixedStore(),
  );
  assert.deepEqual(
    b.stages.map((s) => s.phase),
    ['network', 'abuse'],
  );
  assert.equal(await b.run(makeCtx({ target: '/login' })), undefined);
  assert.equal((await b.run(makeCtx({ target: '/login?x=1' })))?.problem.status, 429);
  assert.equal(await b.run(makeCtx({ target: '/items' })), undefined);
  const alice = { subject: 'alice' };
  assert.equal(await b.run(makeCtx({ identity: alice, operation: 'exportUsers' })), undefined);
  assert.equal((await b.run(makeCtx({ identity: alice, operation: 'exportUsers' })))?.problem.status, 429);
  assert.equal(await b.run(makeCtx({ identity: alice, operation: 'listUsers' })), undefined);
  assert.equal(await b.run(makeCtx({ headers: { 'x-tenant': 'acme' } })), undefined);
  const t = await b.run(makeCtx({ headers: { 'x-tenant': 'acme' }, ip: '203.0.113.5' }));
  assert.equal(t?.problem.status, 429);
  assert.equal((t?.details as { limit: string } | undefined)?.limit, 'tenant');
  assert.equal(await b.run(makeCtx({ headers: { 'x-team': 'red' } })), undefined);
  assert.equal((await b.run(makeCtx({ headers: { 'x-team': 'red' }, ip: '203.0.113.6' })))?.problem.status, 429);
  assert.equal(await b.run(makeCtx({ method: 'POST', headers: { 'x-team': 'red' } })), undefined);
});

test('bad configuration is refused at create with the setting named', async () => {
  await assert.rejects(build({ rate_limits: [{ name: 'a', rate: '1/s', key: 'cookie' }] }, fixedStore()), /rate_limits\[0\]\.key: invalid key "cookie"/);
  await assert.rejects(build({ rate_limits: [{ name: 'a', rate: '1/s', key: 'cel:(((' }] }, fixedStore()), /rate_limits\[0\]\.key/);
  await assert.rejects(
    build({ rate_limits: [{ name: 'a', rate: '1/s', key: 'identity', phase: 'network' }] }, fixedStore()),
    /phase network needs an identity-free key/,
  );
  await assert.rejects(
    build(
      {
        rate_limits: [
          { name: 'a', rate: '1/s' },
          { name: 'a', rate: '2/s' },
        ],
      },
      fixedStore(),
    ),
    /duplicate name "a"/,
  );
});

test('RateLimit headers can be turned off for admitted responses; 429 keeps them', async () => {
  const b = await build({ headers: false, rate_limits: [{ name: 'x', rate: '1/h', key: 'ip' }] }, fixedStore());
  const ctx = makeCtx();
  assert.equal(await b.run(ctx), undefined);
  assert.equal(ctx.responseHeaders.size, 0);
  const r = await b.run(makeCtx());
  assert.equal(r?.problem.headers['ratelimit'], '"x";r=0;t=3600');
});

test('concurrency: slots per key, released once in done() on every path, none taken after abort', async () => {
  const b = await build({ concurrency: [{ name: 'inflight', max: 2, key: 'ip' }] }, fixedStore());
  const key = 'cc:api:inflight:192.0.2.77';
  const c1 = makeCtx({ ip: '192.0.2.77' });
  const c2 = makeCtx({ ip: '192.0.2.77' });
  assert.equal(await b.run(c1), undefined);
  assert.equal(await b.run(c2), undefined);
  assert.equal(concurrencyTable.count(key), 2);
  const c3 = makeCtx({ ip: '192.0.2.77' });
  const r = await b.run(c3);
  assert.equal(r?.problem.status, 429);
  assert.equal(r?.problem.code, 'concurrency-limited');
  assert.equal(r?.problem.headers['retry-after'], '1');
  assert.equal(r?.quiet, undefined);
  assert.equal((await b.run(makeCtx({ ip: '192.0.2.77' })))?.quiet, true);
  b.done(c3); // a refused request gives nothing back
  assert.equal(concurrencyTable.count(key), 2);
  b.done(c1, true); // client abort
  b.done(c1, true); // a second call is harmless
  assert.equal(concurrencyTable.count(key), 1);
  const c4 = makeCtx({ ip: '192.0.2.77' });
  assert.equal(await b.run(c4), undefined);
  b.done(c2);
  b.done(c4);
  assert.equal(concurrencyTable.count(key), 0);
  // A request whose client is already gone takes no slot.
  const ac = new AbortController();
  ac.abort();
  assert.equal(await b.run(makeCtx({ ip: '192.0.2.77', signal: ac.signal })), undefined);
  assert.equal(concurrencyTable.count(key), 0);
});

test('concurrency with RAMPART_WORKERS: each worker allows its share', async () => {
  const prev = process.env.RAMPART_WORKERS;
  process.env.RAMPART_WORKERS = '2';
  try {
    const b = await build({ concurrency: [{ name: 'w', max: 4, key: 'ip' }] }, fixedStore());
    const ctxs = [makeCtx({ ip: '192.0.2.88' }), makeCtx({ ip: '192.0.2.88' }), makeCtx({ ip: '192.0.2.88' })];
    const out = [];
    for (const c of ctxs) out.push((await b.run(c))?.problem.status ?? 200);
    assert.deepEqual(out, [200, 200, 429]);
    for (const c of ctxs) b.done(c);
  } finally {
    if (prev === undefined) delete process.env.RAMPART_WORKERS;
    else process.env.RAMPART_WORKERS = prev;
  }
});

test('load shedding by in-flight count and priority class', async () => {
  const b = await build(
    {
      load_shedding: { enabled: true, max_in_flight: 2, background_at: 0.5, max_event_loop_delay_ms: 10_000 },
      priority: {
        routes: [
          { path_prefix: '/health', priority: 'critical' },
          { path_prefix: '/reports', priority: 'background' },
        ],
        identities: [{ scope: 'batch', priority: 'background' }],
      },
    },
    fixedStore(),
  );
  try {
    const start = loadMonitor.inFlight;
    const a = makeCtx();
    assert.equal(await b.run(a), undefined);
    assert.equal(a.priority, 'normal');
    assert.equal(loadMonitor.inFlight, start + 1);
    // load = 1/2 ≥ background_at: background work is shed, normal is not.
    const bg = await b.run(makeCtx({ target: '/reports/q1' }));
    assert.equal(bg?.problem.status, 503);
    assert.equal(bg?.problem.code, 'load-shed');
    assert.equal(bg?.problem.headers['retry-after'], '1');
    assert.deepEqual(bg?.details, { priority: 'background', event_loop_delay_ms: 0, in_flight: start + 1, load: 0.5 });
    // A batch identity becomes background in the abuse phase and is shed there.
    const batch = makeCtx({ identity: { subject: 'etl', scopes: ['batch'] } });
    assert.equal((await b.run(batch))?.problem.code, 'load-shed');
    b.done(batch);
    const c = makeCtx();
    assert.equal(await b.run(c), undefined);
    // load = 2/2: normal is shed too; critical never.
    const n = await b.run(makeCtx());
    assert.equal(n?.problem.status, 503);
    const crit = makeCtx({ target: '/health' });
    assert.equal(await b.run(crit), undefined);
    assert.equal(crit.priority, 'critical');
    // The second shed of the same class within a second is quiet.
    assert.equal((await b.run(makeCtx()))?.quiet, true);
    b.done(a);
    b.done(c);
    b.done(crit);
    assert.equal(loadMonitor.inFlight, start);
    assert.equal(await b.run(makeCtx({ target: '/reports/q2' })), undefined);
  } finally {
    await b.instance.close?.();
  }
});

test('load shedding on event-loop delay (monitorEventLoopDelay)', async () => {
  const b = await build({ load_shedding: { enabled: true, max_event_loop_delay_ms: 100, max_in_flight: 1_000_000 } }, fixedStore());
  try {
    await new Promise((r) => setTimeout(r, 150));
    const first = makeCtx();
    assert.equal(await b.run(first), undefined, 'an idle loop sheds nothing');
    b.done(first);
    const until = performance.now() + 400;
    while (performance.now() < until) {
      /* saturate the event loop */
    }
    await new Promise((r) => setTimeout(r, 120));
    const r = await b.run(makeCtx());
    assert.equal(r?.problem.code, 'load-shed');
    assert.ok(((r?.details as { event_loop_delay_ms: number } | undefined)?.event_loop_delay_ms ?? 0) >= 300);
    const crit = makeCtx();
    crit.priority = 'critical';
    assert.equal(await b.run(crit), undefined, 'critical requests are never shed');
    b.done(crit);
  } finally {
    await b.instance.close?.();
  }
});

test('store failure: fail_open admits with one event per second; fail_closed answers 503', async () => {
  const port = await freePort(); // nothing listens there
  const down = new RedisStore(`redis://127.0.0.1:${port}`, { connectTimeoutMs: 50, redis: { retryStrategy: () => null } });
  try {
    const open = await build({ rate_limits: [{ name: 'x', rate: '1/h', key: 'ip' }] }, down);
    const events: import('../../../src/events/event.ts').EventInput[] = [];
    for (let i = 0; i < 3; i++) assert.equal(await open.run(makeCtx({ events })), undefined);
    assert.equal(events.length, 1);
    assert.equal(events[0]?.reason, 'rate-limit-store-error');
    assert.equal(events[0]?.action, 'allow');
    assert.equal((events[0]?.details as { fail_mode: string } | undefined)?.fail_mode, 'fail_open');

    const closed = await build({ on_store_error: 'fail_closed', rate_limits: [{ name: 'x', rate: '1/h', key: 'ip' }] }, down);
    const r1 = await closed.run(makeCtx());
    assert.equal(r1?.problem.status, 503);
    assert.equal(r1?.problem.code, 'rate-limit-unavailable');
    assert.equal(r1?.problem.headers['retry-after'], '1');
    assert.equal(r1?.quiet, undefined);
    assert.equal((await closed.run(makeCtx()))?.quiet, true);
  } finally {
    await down.close();
  }
});
