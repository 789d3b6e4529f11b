/**
 * `abuse` end to end: real gateways (in-process and `rampart serve` child processes) in front of
 * a real upstream, with the real Redis at 127.0.0.1:6379 and a throwaway redis-server that is
 * killed mid-test.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { concurrencyTable } from '../../../src/controls/abuse/load.ts';
import { echoUpstream, httpRequestText, spawnRampart, startTestGateway, startUpstream, type TestUpstream } from '../../helpers/gateway.ts';
import { freePort, ThrowawayRedis } from '../../state/fixtures/redis-server.ts';

const PREFIX = `rampart-e2e:${process.pid}:${randomUUID()}:`;
let upstream: TestUpstream;
let dir: string;

before(async () => {
  upstream = await echoUpstream();
  dir = await mkdtemp(join(tmpdir(), 'rampart-abuse-'));
});

after(async () => {
  await upstream.close();
  await rm(dir, { recursive: true, force: true });
  const admin = new Redis('redis://127.0.0.1:6379');
  const keys = await admin.keys(`${PREFIX}*`);
  if (keys.length) await admin.del(...keys);
  await admin.quit();
});

test('429 problem+json with Retry-After and RateLimit fields; one event per key and window', async () => {
  const gw = await startTestGateway({
    apis: [{ name: 'shop', upstream: { targets: [upstream.url] }, controls: { abuse: { rate_limits: [{ name: 'per-ip', rate: '5/h', key: 'ip' }] } } }],
  });
  try {
    const statuses: number[] = [];
    let last: Awaited<ReturnType<typeof httpRequestText>> | undefined;
    for (let i = 0; i < 8; i++) {
      last = await httpRequestText(`${gw.url}/items`);
      statuses.push(last.status);
      if (i === 0) {
        assert.equal(last.headers['ratelimit-policy'], '"per-ip";q=5;w=3600');
        assert.equal(last.headers['ratelimit'], '"per-ip";r=4;t=720');
      }
    }
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
    assert.ok(last);
    assert.equal(last.headers['content-type'], 'application/problem+json');
    assert.equal(last.headers['retry-after'], '720');
    assert.equal(last.headers['ratelimit-policy'], '"per-ip";q=5;w=3600');
    assert.match(String(last.headers['ratelimit']), /^"per-ip";r=0;t=(3599|3600)$/);
    const body = JSON.parse(last.body) as Record<string, unknown>;
    assert.equal(body.type, 'https://rampart.dev/problems/rate-limited');
    assert.equal(body.status, 429);
    assert.equal(body.limit, 'per-ip');
    const ev = gw.events.filter((e) => e.reason === 'rate-limited');
    assert.equal(ev.length, 1, 'three rejections, one event');
    assert.equal(ev[0]?.control, 'abuse');
    assert.equal(ev[0]?.status, 429);
  } finally {
    await gw.close();
  }
});

test('concurrency slots are released on response end and on client abort', async () => {
  const held: (() => void)[] = [];
  const slow = await startUpstream((req, res) => {
    req.resume();
    held.push(() => res.end('done'));
  });
  const gw = await startTestGateway({
    apis: [{ name: 'slow', upstream: { targets: [slow.url] }, controls: { abuse: { concurrency: [{ name: 'one', max: 1, key: 'ip' }] } } }],
  });
  try {
    const first = httpRequestText(`${gw.url}/a`);
    while (held.length < 1) await new Promise((r) => setTimeout(r, 10));
    assert.equal((await httpRequestText(`${gw.url}/b`)).status, 429);
    held.shift()?.();
    assert.equal((await first).status, 200);
    // Abort: the client goes away while the upstream is still working.
    const u = new URL(`${gw.url}/c`);
    const aborted = request({ host: u.hostname, port: u.port, path: u.pathname });
    aborted.on('error', () => {});
    aborted.end();
    while (held.length < 1) await new Promise((r) => setTimeout(r, 10));
    aborted.destroy();
    for (let i = 0; i < 100 && concurrencyTable.size > 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(concurrencyTable.size, 0, 'the aborted request gave its slot back');
    const next = httpRequestText(`${gw.url}/d`);
    while (held.length < 2) await new Promise((r) => setTimeout(r, 10));
    for (const h of held.splice(0)) h();
    assert.equal((await next).status, 200);
    assert.equal(concurrencyTable.size, 0);
  } finally {
    for (const h of held.splice(0)) h();
    await gw.close();
    await slow.close();
  }
});

async function serveConfig(name: string, yaml: string) {
  const file = join(dir, `${name}.yaml`);
  await writeFile(file, yaml);
  const p = spawnRampart(['serve', '--config', file]);
  const line = await p.waitForLog('rampart listening');
  return { p, url: line.url as string };
}

/** Sends `n` GETs to `url` with at most `parallel` in flight; returns the status counts. */
async function burst(url: string, n: number, parallel = 20): Promise<Record<number, number>> {
  const counts: Record<number, number> = {};
  let sent = 0;
  const worker = async () => {
    while (sent < n) {
      sent++;
      const r = await fetch(url);
      await r.arrayBuffer();
      counts[r.status] = (counts[r.status] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return counts;
}

test('three gateway processes on one Redis share a key budget exactly (±1%)', async () => {
  const budget = 300;
  const yaml = `
listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
access_log: false
events: { sinks: [] }
# fail=closed and a 2 s deadline: this test measures budget sharing, not the breaker. With the
# default 100 ms deadline a CPU-starved test machine turns slow replies into local fail-open
# decisions, which admit beyond the shared budget by design.
state: { store: "redis://127.0.0.1:6379?prefix=${encodeURIComponent(PREFIX)}&fail=closed&timeout_ms=2000" }
apis:
  - name: shared
    upstream: { targets: ["${upstream.url}"] }
    controls:
      abuse:
        rate_limits:
          - { name: shared, rate: "${budget}/h", key: ip }
`;
  const gws = await Promise.all([0, 1, 2].map((i) => serveConfig(`shared-${i}`, yaml)));
  try {
    // Each process receives the whole budget: three times the allowance together, at once.
    const results = await Promise.all(gws.map((g) => burst(`${g.url}/items`, budget)));
    const admitted = results.reduce((a, r) => a + (r[200] ?? 0), 0);
    const refused = results.reduce((a, r) => a + (r[429] ?? 0), 0);
    assert.equal(admitted + refused, 3 * budget);
    assert.ok(Math.abs(admitted - budget) <= budget * 0.01, `admitted ${admitted} of ${3 * budget}`);
    assert.equal(admitted, budget);
  } finally {
    await Promise.all(gws.map((g) => g.p.stop()));
  }
});

test('Redis killed mid-test: fail_closed answers 503, then the gateway recovers by itself', async () => {
  const redis = new ThrowawayRedis(await freePort());
  await redis.start();
  const gw = await startTestGateway({
    state: { store: `${redis.url}?fail=closed&cooldown_ms=200` },
    apis: [{ name: 'r', upstream: { targets: [upstream.url] }, controls: { abuse: { rate_limits: [{ name: 'per-ip', rate: '1000/h', key: 'ip' }] } } }],
  });
  try {
    assert.equal((await httpRequestText(`${gw.url}/x`)).status, 200);
    await redis.stop();
    const down = await burst(`${gw.url}/x`, 20, 4);
    assert.deepEqual(down, { 503: 20 });
    const problem = await httpRequestText(`${gw.url}/x`);
    assert.equal(problem.headers['retry-after'], '1');
    assert.equal(JSON.parse(problem.body).type, 'https://rampart.dev/problems/rate-limit-unavailable');
    await redis.start();
    let status = 0;
    for (let i = 0; i < 200 && status !== 200; i++) {
      status = (await httpRequestText(`${gw.url}/x`)).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(status, 200);
    const reasons = gw.events.filter((e) => e.control === 'state').map((e) => e.reason);
    assert.equal(reasons[0], 'store-unavailable');
    assert.equal(reasons.at(-1), 'store-recovered');
    // One 503 event for the outage burst, the rest quiet (one per second at most).
    const unavailable = gw.events.filter((e) => e.reason === 'rate-limit-unavailable').length;
    assert.ok(unavailable >= 1 && unavailable <= 3, String(unavailable));
  } finally {
    await gw.close();
    await redis.stop();
  }
});

test('Redis killed mid-test: fail_open falls back to this process share of the budget', async () => {
  const redis = new ThrowawayRedis(await freePort());
  await redis.start();
  const gw = await startTestGateway({
    // timeout_ms=1000: on a CPU-starved machine the request made before the outage could miss the
    // default 100 ms deadline and spend a local cell; this test is about refused connections.
    state: { store: `${redis.url}?fail=open&instances=3&cooldown_ms=60000&timeout_ms=1000` },
    apis: [{ name: 'r', upstream: { targets: [upstream.url] }, controls: { abuse: { rate_limits: [{ name: 'per-ip', rate: '30/h', key: 'ip' }] } } }],
  });
  try {
    assert.equal((await httpRequestText(`${gw.url}/x`)).status, 200);
    await redis.stop();
    // Local fallback: ⌊30 / 3⌋ = 10 of the burst in this process.
    assert.deepEqual(await burst(`${gw.url}/x`, 30, 1), { 200: 10, 429: 20 });
    assert.deepEqual(
      gw.events.filter((e) => e.control === 'state').map((e) => [e.reason, (e.details as { fail_mode: string }).fail_mode]),
      [['store-unavailable', 'fail_open']],
    );
  } finally {
    await gw.close();
    await redis.stop();
  }
});

test('zero-config: --rate-limit and --store on the CLI; a burst of 300 sees 429s', async () => {
  const [port, adminPort] = [await freePort(), await freePort()];
  const p = spawnRampart([
    'serve',
    '--upstream',
    upstream.url,
    '--listen',
    `127.0.0.1:${port}`,
    '--admin',
    `127.0.0.1:${adminPort}`,
    '--rate-limit',
    '100/s',
    '--store',
    `redis://127.0.0.1:6379?prefix=${encodeURIComponent(`${PREFIX}zero:`)}`,
  ]);
  try {
    await p.waitForLog('rampart listening');
    const counts = await burst(`http://127.0.0.1:${port}/items`, 300, 30);
    assert.equal((counts[200] ?? 0) + (counts[429] ?? 0), 300);
    assert.ok((counts[429] ?? 0) > 0, JSON.stringify(counts));
    assert.ok((counts[200] ?? 0) >= 100, JSON.stringify(counts));
  } finally {
    await p.stop();
  }
  const bad = spawnRampart(['serve', '--upstream', upstream.url, '--rate-limit', '20/fortnight']);
  assert.notEqual(await bad.stop('SIGCONT'), 0);
  assert.match(bad.stderr(), /invalid rate "20\/fortnight"/);
});
