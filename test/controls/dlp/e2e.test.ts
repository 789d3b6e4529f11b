/**
 * DLP through a real gateway in front of real upstreams (the demo API and node:http servers),
 * with a real webhook receiver.
 */
import assert from 'node:assert/strict';
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { brotliCompressSync, brotliDecompressSync, deflateSync, gunzipSync, gzipSync } from 'node:zlib';
import type { SecurityEvent } from '../../../src/events/event.ts';
import { WebhookSink, verifyWebhookSignature } from '../../../src/events/sinks/webhook.ts';
import { type DemoUpstream, startDemoUpstream } from '../../../examples/demo-upstream.ts';
import { startTestGateway, startUpstream, type TestGateway, type TestUpstream } from '../../helpers/gateway.ts';

/** Raw GET: status, headers and the exact body bytes as received (no decoding). */
function rawGet(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: IncomingMessage['headers']; body: Buffer; aborted: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      let aborted = false;
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('aborted', () => (aborted = true));
      res.on('error', () => (aborted = true));
      res.on('close', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), aborted }));
    });
    req.on('error', reject);
    req.end();
  });
}

function dlpEvents(gw: TestGateway): SecurityEvent[] {
  return gw.events.filter((e) => e.control === 'dlp');
}

describe('dlp on by default, in front of the demo API', () => {
  let demo: DemoUpstream;
  let gw: TestGateway;
  before(async () => {
    demo = await startDemoUpstream();
    gw = await startTestGateway({ apis: [{ name: 'demo', upstream: { targets: [demo.url] } }] });
  });
  after(async () => {
    await gw.close(100);
    await demo.close();
  });

  test('the tax-profile endpoint that leaks SSNs and card numbers has them redacted', async () => {
    const [id, profile] = [...demo.data.taxProfiles.entries()][0] as [number, { ssn: string; card_number: string }];
    const r = await rawGet(`${gw.url}/users/${id}/tax-profile`);
    assert.equal(r.status, 200);
    const body = JSON.parse(r.body.toString('utf8')) as { ssn: string; card_number: string; user_id: number };
    assert.equal(body.ssn, `***-**-${profile.ssn.slice(-4)}`);
    assert.equal(body.card_number, `**** **** **** ${profile.card_number.slice(-4)}`);
    assert.equal(body.user_id, id);
    assert.equal(r.headers['content-length'], String(r.body.length));
    assert.ok(!r.body.toString('latin1').includes(profile.ssn));
    const ev = dlpEvents(gw).find((e) => e.reason === 'sensitive-data-redacted');
    assert.deepEqual(ev?.details, { counts: { ssn: 1, card: 1 }, types: ['ssn', 'card'], paths: ['$.ssn', '$.card_number'], records: 0 });
    assert.equal(ev?.action, 'redact');
    // No value in any event.
    assert.ok(!JSON.stringify(gw.events).includes(profile.ssn.slice(0, 6)));
  });

  test('a gzip response is decoded, redacted and sent re-encoded with correct headers', async () => {
    const r = await rawGet(`${gw.url}/gzip`, { 'accept-encoding': 'gzip' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-encoding'], 'gzip');
    assert.equal(r.headers['content-length'], String(r.body.length));
    const body = JSON.parse(gunzipSync(r.body).toString('utf8')) as { ssn: string; note: string };
    assert.match(body.ssn, /^\*\*\*-\*\*-\d{4}$/);
    assert.equal(body.note, 'gzip-encoded body');
  });
});

describe('dlp actions, codings, bad bodies', () => {
  let up: TestUpstream;
  const DOC = JSON.stringify({ marker: 'UPSTREAM-BODY-MARKER', ssn: '123-45-6789', card: '4242-4242-4242-4242', iban: 'GB82 WEST 1234 5698 7654 32' });
  before(async () => {
    up = await startUpstream((req, res) => {
      const u = req.url ?? '/';
      if (u === '/doc') {
        res.writeHead(200, { 'content-type': 'application/json', etag: '"v1"' });
        res.end(DOC);
      } else if (u === '/br') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'br' });
        res.end(brotliCompressSync(DOC));
      } else if (u === '/deflate') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'deflate' });
        res.end(deflateSync(DOC));
      } else if (u === '/bad-gzip') {
        const z = gzipSync(DOC);
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
        res.end(z.subarray(0, z.length - 12));
      } else if (u === '/truncated') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('[{"card":"4111 1111 1111 1111"},{"card":"4111 1111 11');
      } else if (u === '/csv') {
        res.writeHead(200, { 'content-type': 'text/csv' });
        res.end('name,ssn\nJane,123-45-6789\nJohn,234-56-7890\n');
      } else if (u === '/binary') {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.end(Buffer.from('123-45-6789'));
      } else if (u === '/zstd') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'zstd' });
        res.end('xx');
      } else if (u === '/big') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ pad: 'x'.repeat(2000), ssn: '123-45-6789' }));
      } else {
        res.writeHead(404);
        res.end();
      }
    });
  });
  after(() => up.close());

  test('block: problem details and not one byte of the upstream body', async () => {
    const gw = await startTestGateway({
      apis: [{ name: 'a', upstream: { targets: [up.url] }, controls: { dlp: { detectors: { ssn: { action: 'block' } } } } }],
    });
    try {
      const r = await rawGet(`${gw.url}/doc`);
      assert.equal(r.status, 403);
      assert.equal(r.headers['content-type'], 'application/problem+json');
      const text = r.body.toString('latin1');
      assert.ok(!text.includes('UPSTREAM-BODY-MARKER'));
      assert.ok(!text.includes('6789'));
      assert.equal((JSON.parse(text) as { type: string }).type, 'https://rampart.dev/problems/sensitive-data-blocked');
      const ev = gw.events.find((e) => e.reason === 'sensitive-data-blocked');
      assert.equal(ev?.severity, 'high');
      assert.equal(ev?.status, 403);
      assert.deepEqual(((ev?.details ?? {}) as { counts: unknown }).counts, { ssn: 1 });
    } finally {
      await gw.close(100);
    }
  });

  test('redact, alert and route overrides; representation headers dropped after a change', async () => {
    const gw = await startTestGateway({
      apis: [
        {
          name: 'a',
          upstream: { targets: [up.url] },
          controls: { dlp: { detectors: { iban: { action: 'alert' } }, routes: [{ path: '/deflate', actions: { ssn: 'alert', card: 'off' } }] } },
        },
      ],
    });
    try {
      const r = await rawGet(`${gw.url}/doc`);
      assert.deepEqual(JSON.parse(r.body.toString()), {
        marker: 'UPSTREAM-BODY-MARKER',
        ssn: '***-**-6789',
        card: '****-****-****-4242',
        iban: 'GB82 WEST 1234 5698 7654 32',
      });
      assert.equal(r.headers.etag, undefined);
      const alert = dlpEvents(gw).find((e) => e.reason === 'sensitive-data-detected');
      assert.deepEqual(alert?.details, { counts: { iban: 1 }, types: ['iban'], paths: ['$.iban'], records: 0 });
      const r2 = await rawGet(`${gw.url}/deflate`);
      // Nothing redacted on this route: the upstream's encoded bytes pass unchanged.
      assert.equal(r2.headers['content-encoding'], 'deflate');
      assert.deepEqual(r2.body, deflateSync(DOC));
      const detected = dlpEvents(gw)
        .filter((e) => e.reason === 'sensitive-data-detected')
        .at(-1);
      assert.deepEqual(((detected?.details ?? {}) as { counts: unknown }).counts, { ssn: 1, iban: 1 });
    } finally {
      await gw.close(100);
    }
  });

  test('br and deflate bodies: re-encoded, or sent as identity when configured', async () => {
    const gw = await startTestGateway({
      apis: [
        { name: 'a', upstream: { targets: [up.url] } },
        { name: 'b', match: { path_prefix: '/id/' }, upstream: { targets: [up.url], strip_prefix: true }, controls: { dlp: { encoding: 'identity' } } },
      ].reverse(),
    });
    try {
      const br = await rawGet(`${gw.url}/br`);
      assert.equal(br.headers['content-encoding'], 'br');
      assert.equal((JSON.parse(brotliDecompressSync(br.body).toString()) as { ssn: string }).ssn, '***-**-6789');
      const id = await rawGet(`${gw.url}/id/deflate`);
      assert.equal(id.headers['content-encoding'], undefined);
      assert.equal(id.headers['content-length'], String(id.body.length));
      assert.equal((JSON.parse(id.body.toString()) as { card: string }).card, '****-****-****-4242');
    } finally {
      await gw.close(100);
    }
  });

  test('malformed bodies: pass with the truncated value removed and an event, or block', async () => {
    const pass = await startTestGateway({ apis: [{ name: 'a', upstream: { targets: [up.url] } }] });
    try {
      const r = await rawGet(`${pass.url}/truncated`);
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), '[{"card":"**** **** **** 1111"},{"card":');
      const ev = pass.events.find((e) => e.reason === 'response-body-malformed');
      assert.deepEqual(ev?.details, { reason: 'unterminated-string', offset: 40, truncated_value_removed: true });
      // A corrupt gzip stream: what decodes is scanned and sent as identity, never raw.
      const g = await rawGet(`${pass.url}/bad-gzip`);
      assert.equal(g.status, 200);
      assert.equal(g.headers['content-encoding'], undefined);
      assert.ok(!g.body.toString('latin1').includes('123-45-6789'));
    } finally {
      await pass.close(100);
    }
    const block = await startTestGateway({ apis: [{ name: 'a', upstream: { targets: [up.url] }, controls: { dlp: { malformed: 'block' } } }] });
    try {
      const r = await rawGet(`${block.url}/truncated`);
      assert.equal(r.status, 502);
      assert.ok(!r.body.toString().includes('4111'));
      assert.equal(block.events.find((e) => e.status === 502)?.reason, 'upstream-body-malformed');
      assert.equal((await rawGet(`${block.url}/bad-gzip`)).status, 502);
    } finally {
      await block.close(100);
    }
  });

  test('CSV is scanned as text; unknown types and codings pass with an event or are blocked; oversize bodies likewise', async () => {
    // Default `oversize: stream`: a body over the buffering limit is inspected as it streams.
    const streamed = await startTestGateway({ apis: [{ name: 'a', upstream: { targets: [up.url] }, controls: { dlp: { max_body_bytes: 1024 } } }] });
    try {
      const big = await rawGet(`${streamed.url}/big`);
      assert.equal(big.status, 200);
      assert.equal(big.headers['content-length'], undefined);
      assert.equal((JSON.parse(big.body.toString()) as { ssn: string }).ssn, '***-**-6789');
      assert.deepEqual(
        dlpEvents(streamed).map((e) => e.reason),
        ['response-streamed', 'sensitive-data-redacted'],
      );
      assert.deepEqual(dlpEvents(streamed)[1]?.details, { counts: { ssn: 1 }, types: ['ssn'], paths: ['$.ssn'], records: 0 });
    } finally {
      await streamed.close(100);
    }
    const gw = await startTestGateway({
      apis: [{ name: 'a', upstream: { targets: [up.url] }, controls: { dlp: { max_body_bytes: 1024, oversize: 'pass' } } }],
    });
    try {
      assert.equal((await rawGet(`${gw.url}/csv`)).body.toString(), 'name,ssn\nJane,***-**-6789\nJohn,***-**-7890\n');
      assert.equal((await rawGet(`${gw.url}/binary`)).body.toString(), '123-45-6789');
      assert.equal((await rawGet(`${gw.url}/big`)).status, 200);
      const reasons = dlpEvents(gw)
        .filter((e) => e.reason === 'response-not-inspected')
        .map((e) => (e.details as { reason: string }).reason);
      assert.deepEqual(reasons, ['media-type', 'too-large']);
    } finally {
      await gw.close(100);
    }
    const strict = await startTestGateway({
      apis: [{ name: 'a', upstream: { targets: [up.url] }, controls: { dlp: { max_body_bytes: 1024, uninspectable: 'block', oversize: 'block' } } }],
    });
    try {
      assert.equal((await rawGet(`${strict.url}/binary`)).status, 502);
      assert.equal((await rawGet(`${strict.url}/zstd`)).status, 502);
      const big = await rawGet(`${strict.url}/big`);
      assert.equal(big.status, 502);
      assert.ok(!big.body.toString().includes('xxxx'));
      assert.deepEqual(
        strict.events.filter((e) => e.status === 502).map((e) => e.reason),
        ['response-not-inspectable', 'response-not-inspectable', 'response-too-large'],
      );
    } finally {
      await strict.close(100);
    }
  });
});

describe('bulk-extraction guard', () => {
  let up: TestUpstream;
  let hook: Server;
  let hookUrl: string;
  const received: { body: string; signature: string | undefined }[] = [];
  const SECRET = 'webhook-secret-0123456789';
  const records = (n: number) =>
    JSON.stringify({ items: Array.from({ length: n }, (_, i) => ({ id: i + 1, name: `user ${i + 1}`, email: `user${i + 1}@example.com` })), total: n });

  before(async () => {
    up = await startUpstream((req, res) => {
      const n = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('limit') ?? '10');
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(records(n));
    });
    hook = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c));
      req.on('end', () => {
        received.push({ body, signature: req.headers['x-rampart-signature'] as string | undefined });
        res.end('ok');
      });
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`;
  });
  after(async () => {
    await up.close();
    hook.closeAllConnections();
    await new Promise((r) => hook.close(r));
  });

  test('10,000 records to a caller allowed 100: cut off, and a signed alert reaches the webhook receiver', async () => {
    const sink = new WebhookSink({ url: hookUrl, secret: SECRET, backoffMs: 10 });
    const gw = await startTestGateway(
      { apis: [{ name: 'a', upstream: { targets: [up.url] }, controls: { dlp: { bulk: { action: 'block', max_records: 100 } } } }] },
      { eventSink: (e) => sink.write(e) },
    );
    try {
      const ok = await rawGet(`${gw.url}/users?limit=100`);
      assert.equal(ok.status, 200);
      const r = await rawGet(`${gw.url}/users?limit=10000`);
      assert.equal(r.status, 403);
      const text = r.body.toString();
      assert.ok(!text.includes('user1@example.com'));
      assert.equal((JSON.parse(text) as { type: string }).type, 'https://rampart.dev/problems/bulk-extraction');
      await sink.close();
      const alerts = received.map((x) => ({ ...x, event: JSON.parse(x.body) as SecurityEvent })).filter((x) => x.event.reason === 'bulk-extraction');
      assert.equal(alerts.length, 1);
      const a = alerts[0] as (typeof alerts)[number];
      assert.equal(verifyWebhookSignature(SECRET, a.signature, a.body), true);
      assert.equal(a.event.severity, 'high');
      assert.equal(a.event.status, 403);
      assert.equal(a.event.control, 'dlp');
      // 100 + 10,000 records also exceed the default per-identity window (10,000).
      assert.deepEqual((a.event.details as { exceeded: string[]; records: number }).exceeded, ['records', 'identity_records']);
      assert.equal((a.event.details as { records: number }).records, 10000);
      assert.equal(sink.stats.delivered, received.length);
    } finally {
      await gw.close(100);
    }
  });

  test('on by default: the guard alerts (high) and lets the response through', async () => {
    const gw = await startTestGateway({ apis: [{ name: 'a', upstream: { targets: [up.url] } }] });
    try {
      const r = await rawGet(`${gw.url}/users?limit=1500`);
      assert.equal(r.status, 200);
      assert.equal((JSON.parse(r.body.toString()) as { total: number }).total, 1500);
      const ev = dlpEvents(gw).find((e) => e.reason === 'bulk-extraction');
      assert.equal(ev?.action, 'alert');
      assert.equal(ev?.severity, 'high');
      assert.deepEqual(((ev?.details ?? {}) as { exceeded: string[] }).exceeded, ['records']);
    } finally {
      await gw.close(100);
    }
  });

  test('per identity over a window in the store, then a temporary block list', async () => {
    const gw = await startTestGateway({
      apis: [
        {
          name: 'a',
          upstream: { targets: [up.url] },
          controls: { dlp: { bulk: { action: 'block', max_records: 0, identity_max_records: 100, block_identity_ms: 60_000 } } },
        },
      ],
    });
    try {
      assert.equal((await rawGet(`${gw.url}/users?limit=60`)).status, 200);
      const second = await rawGet(`${gw.url}/users?limit=60`);
      assert.equal(second.status, 403);
      const ev = gw.events.find((e) => e.reason === 'bulk-extraction');
      assert.deepEqual(((ev?.details ?? {}) as { exceeded: string[]; identity_records: number }).exceeded, ['identity_records']);
      assert.equal(((ev?.details ?? {}) as { identity_records: number }).identity_records, 120);
      // Blocked before the upstream is even asked.
      const third = await rawGet(`${gw.url}/users?limit=1`);
      assert.equal(third.status, 403);
      assert.equal(gw.events.at(-1)?.reason, 'identity-blocked');
    } finally {
      await gw.close(100);
    }
  });

  test('distinct sensitive values per response', async () => {
    const gw = await startTestGateway({
      apis: [
        {
          name: 'a',
          upstream: { targets: [up.url] },
          controls: { dlp: { detectors: { email: { action: 'redact' } }, bulk: { action: 'block', max_sensitive_values: 20 } } },
        },
      ],
    });
    try {
      const small = await rawGet(`${gw.url}/users?limit=20`);
      assert.equal(small.status, 200);
      assert.equal((JSON.parse(small.body.toString()) as { items: { email: string }[] }).items[0]?.email, 'u****@example.com');
      assert.equal((await rawGet(`${gw.url}/users?limit=21`)).status, 403);
      assert.deepEqual(((gw.events.find((e) => e.reason === 'bulk-extraction')?.details ?? {}) as { exceeded: string[] }).exceeded, ['sensitive_values']);
    } finally {
      await gw.close(100);
    }
  });
});
