/**
 * Streaming DLP: the StreamScanner against the buffered scanner, and large streamed responses
 * through a real gateway (cut off by the bulk guard, alert to a real webhook receiver via
 * `events.sinks`, bounded memory, gzip decoded and re-encoded).
 */
import assert from 'node:assert/strict';
import { request, type ServerResponse } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { createGzip, gunzipSync } from 'node:zlib';
import { verifyWebhookSignature } from '../../../src/events/sinks/webhook.ts';
import { Scanner, applyReplacements } from '../../../src/controls/dlp/scanner.ts';
import { SEGMENT_BYTES, SEGMENT_MAX_BYTES, StreamScanner, type StreamMode } from '../../../src/controls/dlp/stream.ts';
import { startTestGateway, startUpstream, type TestUpstream } from '../../helpers/gateway.ts';

const DEFAULTS = new Set(['card', 'ssn', 'iban', 'private_key']);
const INF = Number.POSITIVE_INFINITY;
const NO_LIMITS = { maxRecords: INF, maxSensitiveValues: INF, distinctCap: 1000 };

function scanner(detectors: Iterable<string> = DEFAULTS): Scanner {
  return new Scanner({ detectors: new Set(detectors), thresholds: {}, phoneRegion: 'US', healthContext: false, patterns: [] });
}

/** Streams `body` through a StreamScanner in `chunk`-byte pieces. */
function stream(sc: Scanner, body: string, mode: StreamMode, chunk: number, limits = NO_LIMITS, block: Iterable<string> = []) {
  const ss = new StreamScanner(sc, mode, DEFAULTS, new Set(block), limits);
  const buf = Buffer.from(body, 'latin1');
  const out: Buffer[] = [];
  const found: string[] = [];
  let stop: string | undefined;
  for (let i = 0; i < buf.length && stop === undefined; i += chunk) {
    const st = ss.write(buf.subarray(i, i + chunk));
    out.push(...st.out);
    found.push(...st.findings.map((f) => `${f.detector} ${f.path}`));
    stop = st.stop;
  }
  let truncated = false;
  if (stop === undefined) {
    const e = ss.end();
    out.push(...e.out);
    found.push(...e.findings.map((f) => `${f.detector} ${f.path}`));
    stop = e.stop;
    truncated = e.truncated;
  }
  return { out: Buffer.concat(out).toString('latin1'), found, stop, records: ss.recordCount, truncated, malformed: ss.malformed };
}

const record = (i: number) => ({
  id: i,
  ssn: i % 3 === 0 ? '123-45-6789' : 'none',
  card_number: '4242 4242 4242 4242',
  order_id: '4242424242424242',
  tax_id: i % 2 ? '234567891' : 'x',
  note: 'x'.repeat(i % 50),
});

describe('StreamScanner', () => {
  const sc = scanner();
  const recs = Array.from({ length: 3000 }, (_, i) => record(i));

  test('JSON in chunks gives the buffered result: same bytes, findings (key context kept across cuts), records', () => {
    for (const doc of [recs, { data: recs, total: 3000 }, { ssns: Array.from({ length: 12_000 }, () => '123456789'), order_ids: ['123456789'] }]) {
      const body = JSON.stringify(doc);
      assert.ok(body.length > 2 * SEGMENT_BYTES);
      const whole = sc.scan(body, 'json', DEFAULTS);
      const expected = applyReplacements(body, whole.replacements);
      for (const chunk of [997, 16_384, 65_536]) {
        const r = stream(sc, body, 'json', chunk);
        assert.equal(r.out, expected);
        assert.equal(r.found.length, whole.findings.length);
        assert.equal(r.records, whole.records);
        assert.equal(r.stop, undefined);
        assert.equal(r.malformed, undefined);
      }
    }
    // Paths carry [*] for array indices (the first 100 findings of a segment have a path, as in a buffered scan).
    const r = stream(sc, JSON.stringify({ data: recs.slice(0, 700) }), 'json', 4096);
    assert.deepEqual([...new Set(r.found)].sort(), ['card ', 'card $.data[*].card_number', 'ssn ', 'ssn $.data[*].ssn', 'ssn $.data[*].tax_id']);
  });

  test('NDJSON and CSV in chunks give the buffered result; records are lines', () => {
    const nd = `${recs.map((x) => JSON.stringify(x)).join('\n')}\n`;
    const whole = sc.scan(nd, 'ndjson', DEFAULTS);
    const r = stream(sc, nd, 'ndjson', 5000);
    assert.equal(r.out, applyReplacements(nd, whole.replacements));
    assert.equal(r.records, 3000);
    const csv = `id,ssn,card\n${recs.map((x) => `${x.id},${x.ssn},${x.card_number}`).join('\n')}`;
    const wt = sc.scan(csv, 'text', DEFAULTS);
    const c = stream(sc, csv, 'csv', 3001);
    assert.equal(c.out, applyReplacements(csv, wt.replacements));
    assert.equal(c.records, 3000);
  });

  test('a value longer than a segment with no place to cut is scanned in overlapping text windows', () => {
    const text = Array.from({ length: 6000 }, (_, i) => `row ${i} ssn 123-45-6789 card 4242-4242-4242-4242 ${'y'.repeat(i % 400)}`).join(' ');
    const body = JSON.stringify({ blob: text });
    assert.ok(body.length > SEGMENT_MAX_BYTES);
    const r = stream(sc, body, 'json', 7919);
    assert.equal(r.out.length > 0, true);
    assert.ok(!r.out.includes('123-45-6789'));
    assert.ok(!r.out.includes('4242-4242-4242-4242'));
    assert.equal(r.out.split('***-**-6789').length - 1, 6000);
    assert.equal(r.out.split('****-****-****-4242').length - 1, 6000);
    assert.equal(r.out.length, body.length);
  });

  test('limits: nothing past the record or distinct-value limit is released; a block detector stops the stream', () => {
    const body = JSON.stringify({ data: recs });
    const r = stream(sc, body, 'json', 4096, { maxRecords: 100, maxSensitiveValues: INF, distinctCap: 10 });
    assert.equal(r.stop, 'records');
    assert.equal(r.records, 101);
    // What was released holds at most 100 records.
    assert.ok((r.out.match(/"id":/g) ?? []).length <= 100);
    const nd = recs.map((x) => JSON.stringify({ ...x, ssn: `1${String(x.id).padStart(2, '0').slice(-2)}-45-${String(1000 + x.id)}` })).join('\n');
    const d = stream(sc, nd, 'ndjson', 4096, { maxRecords: INF, maxSensitiveValues: 20, distinctCap: 21 });
    assert.equal(d.stop, 'sensitive_values');
    const b = stream(sc, body, 'json', 4096, NO_LIMITS, ['ssn']);
    assert.equal(b.stop, 'blocked');
    assert.equal(b.out, '');
  });

  test('a truncated body: the unterminated value is cut, never sent half-masked', () => {
    const full = JSON.stringify({ data: recs });
    const body = `${full.slice(0, full.indexOf('{"id":1000,'))}{"id":1000,"card_number":`;
    const r = stream(sc, `${body}"4242 4242 42`, 'json', 4096);
    assert.equal(r.truncated, true);
    assert.equal(r.malformed, 'truncated');
    assert.ok(!r.out.includes('4242 42'));
    assert.equal(r.out.length, body.length);
    assert.ok(r.out.endsWith('{"id":1000,"card_number":'));
  });
});

/** GET through the gateway: bytes received, whether the transfer ended cleanly. */
function fetchRaw(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer; complete: boolean }> {
  return new Promise((resolve, _reject) => {
    const req = request(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      let complete = false;
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => (complete = res.complete));
      res.on('error', () => {});
      res.on('close', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), complete }));
    });
    // A connection cut before the response head: no response at all.
    req.on('error', () => resolve({ status: 0, headers: {}, body: Buffer.alloc(0), complete: false }));
    req.end();
  });
}

/** Writes `n` records with backpressure; returns the bytes written before the client went away. */
function writeRecords(res: ServerResponse, n: number, line: (i: number) => string, head = '', tail = ''): Promise<number> {
  return new Promise((resolve) => {
    let i = 0;
    let written = 0;
    let done = false;
    const finish = () => {
      if (!done) {
        done = true;
        resolve(written);
      }
    };
    res.on('close', finish);
    res.on('error', finish);
    const write = (s: string): boolean => {
      written += Buffer.byteLength(s);
      return res.write(s);
    };
    if (head) write(head);
    const pump = () => {
      while (i < n) {
        if (res.destroyed) return finish();
        const ok = write(line(i++));
        if (!ok) return res.once('drain', pump);
      }
      if (tail) write(tail);
      res.end();
      res.once('finish', finish);
    };
    pump();
  });
}

const bigRecord = (i: number) =>
  JSON.stringify({
    id: i + 1,
    name: `customer ${i + 1}`,
    email: `c${i + 1}@example.com`,
    ssn: '123-45-6789',
    address: `${i} Main Street`,
    pad: 'p'.repeat(90),
  });

describe('streamed responses through a real gateway', () => {
  let up: TestUpstream;
  let hook: TestUpstream;
  const written: Record<string, Promise<number>> = {};
  const alerts: { body: string; sig: string | undefined }[] = [];
  const SECRET = 'webhook-secret-0123456789';
  const N = 100_000;

  before(async () => {
    up = await startUpstream((req, res) => {
      const u = req.url ?? '/';
      if (u.startsWith('/export.ndjson')) {
        res.writeHead(200, { 'content-type': 'application/x-ndjson' });
        written[u] = writeRecords(res, N, (i) => `${bigRecord(i)}\n`);
      } else if (u.startsWith('/export.json')) {
        // `{ "data": [ ... ] }` with a Content-Length above the buffering limit.
        let len = Buffer.byteLength('{"data":[]}');
        for (let i = 0; i < N; i++) len += Buffer.byteLength(bigRecord(i)) + (i > 0 ? 1 : 0);
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(len) });
        written[u] = writeRecords(res, N, (i) => (i > 0 ? ',' : '') + bigRecord(i), '{"data":[', ']}');
      } else if (u === '/small.json.gz') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
        const gz = createGzip();
        gz.pipe(res);
        gz.write('[');
        for (let i = 0; i < 20_000; i++) gz.write((i > 0 ? ',' : '') + bigRecord(i));
        gz.end(']');
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    hook = await startUpstream((req, res) => {
      let b = '';
      req.on('data', (c: Buffer) => (b += c));
      req.on('end', () => {
        alerts.push({ body: b, sig: req.headers['x-rampart-signature'] as string | undefined });
        res.end('ok');
      });
    });
  });
  after(async () => {
    await up.close();
    await hook.close();
  });

  test('a 20 MB NDJSON stream of 100,000 records to a caller allowed 100 is cut off, and the alert reaches the webhook', async (t) => {
    const gw = await startTestGateway({
      events: { sinks: [{ type: 'webhook', url: `${hook.url}/alerts`, secret: SECRET }] },
      apis: [{ name: 'a', upstream: { targets: [up.url] }, controls: { dlp: { bulk: { action: 'block', max_records: 100 } } } }],
    });
    try {
      const heap0 = process.memoryUsage().heapUsed;
      const r = await fetchRaw(`${gw.url}/export.ndjson?x=1`);
      const heapGrowth = process.memoryUsage().heapUsed - heap0;
      assert.equal(r.complete, false, 'the client sees a truncated transfer (or no response at all)');
      const total = N * (bigRecord(0).length + 10);
      assert.ok(r.body.length < total / 50, `the client received ${r.body.length} bytes of ~${total}`);
      // Every line the client got is a whole, redacted record, and there are at most 100.
      const lines = r.body
        .toString()
        .split('\n')
        .filter((l) => l !== '');
      assert.ok(lines.length <= 100, `${lines.length} records reached the client`);
      assert.ok(!r.body.toString().includes('123-45-6789'));
      // Memory stays bounded: the upstream was stopped long before the end, the heap did not take the body.
      const sent = await written['/export.ndjson?x=1'];
      assert.ok((sent as number) < 16 * 1024 * 1024, `upstream wrote ${sent} bytes before the cut`);
      assert.ok(heapGrowth < 64 * 1024 * 1024, `heap grew by ${heapGrowth}`);
      t.diagnostic(`client got ${r.body.length} bytes (${lines.length} records) of ${total}; upstream wrote ${sent} bytes; heap grew ${heapGrowth} bytes`);
      const until = Date.now() + 5000;
      while (!alerts.some((a) => a.body.includes('bulk-extraction')) && Date.now() < until) await new Promise((res) => setTimeout(res, 25));
      const a = alerts.find((x) => x.body.includes('bulk-extraction'));
      assert.ok(a, 'the webhook received the bulk-extraction alert');
      assert.equal(verifyWebhookSignature(SECRET, a.sig, a.body), true);
      const ev = JSON.parse(a.body) as { reason: string; severity: string; action: string; control: string; details: Record<string, unknown> };
      assert.equal(ev.reason, 'bulk-extraction');
      assert.equal(ev.severity, 'high');
      assert.equal(ev.action, 'abort');
      assert.equal(ev.control, 'dlp');
      assert.deepEqual(ev.details.exceeded, ['records']);
      assert.equal(ev.details.records, 101);
      assert.equal(ev.details.streamed, true);
      assert.ok(!a.body.includes('123-45-6789'));
      assert.ok(gw.events.some((e) => e.reason === 'response-aborted'));
    } finally {
      await gw.close(100);
    }
  });

  test('a 20 MB `{ "data": [...] }` with a Content-Length above the limit: cut off; the identity goes on the block list', async (t) => {
    const gw = await startTestGateway({
      apis: [{ name: 'a', upstream: { targets: [up.url] }, controls: { dlp: { bulk: { action: 'block', max_records: 100, block_identity_ms: 60_000 } } } }],
    });
    try {
      const r = await fetchRaw(`${gw.url}/export.json?x=2`);
      assert.equal(r.complete, false);
      assert.ok(r.body.length < 1024 * 1024, `${r.body.length} bytes`);
      const sent = (await written['/export.json?x=2']) as number;
      assert.ok(sent < 16 * 1024 * 1024);
      t.diagnostic(`client got ${r.body.length} bytes; upstream wrote ${sent} bytes`);
      const ev = gw.events.find((e) => e.reason === 'bulk-extraction');
      assert.equal(ev?.severity, 'high');
      assert.equal(((ev?.details ?? {}) as { identity_blocked_ms?: number }).identity_blocked_ms, 60_000);
      const again = await fetchRaw(`${gw.url}/export.json?x=3`);
      assert.equal(again.status, 403);
      assert.equal(gw.events.at(-1)?.reason, 'identity-blocked');
    } finally {
      await gw.close(100);
    }
  });

  test('on by default: a large stream is redacted and passes whole, with one bulk alert', async () => {
    const gw = await startTestGateway({ apis: [{ name: 'a', upstream: { targets: [up.url] }, controls: { dlp: { max_body_bytes: 1024 * 1024 } } }] });
    try {
      const r = await fetchRaw(`${gw.url}/export.ndjson?x=4`);
      assert.equal(r.complete, true);
      const lines = r.body
        .toString()
        .split('\n')
        .filter((l) => l !== '');
      assert.equal(lines.length, N);
      assert.deepEqual(JSON.parse(lines[41] as string), { ...(JSON.parse(bigRecord(41)) as object), ssn: '***-**-6789' });
      const bulk = gw.events.filter((e) => e.reason === 'bulk-extraction');
      assert.equal(bulk.length, 1);
      assert.equal(bulk[0]?.action, 'alert');
      const red = gw.events.find((e) => e.reason === 'sensitive-data-redacted');
      assert.deepEqual(((red?.details ?? {}) as { counts?: unknown }).counts, { ssn: N });
      assert.equal(((red?.details ?? {}) as { records?: number }).records, N);
    } finally {
      await gw.close(100);
    }
  });

  test('a gzip body over the limit is decoded as it streams, redacted and re-encoded', async () => {
    const gw = await startTestGateway({ apis: [{ name: 'a', upstream: { targets: [up.url] }, controls: { dlp: { max_body_bytes: 256 * 1024 } } }] });
    try {
      const r = await fetchRaw(`${gw.url}/small.json.gz`, { 'accept-encoding': 'gzip' });
      assert.equal(r.complete, true);
      assert.equal(r.headers['content-encoding'], 'gzip');
      assert.equal(r.headers['content-length'], undefined);
      const doc = JSON.parse(gunzipSync(r.body).toString()) as { ssn: string; id: number }[];
      assert.equal(doc.length, 20_000);
      assert.ok(doc.every((x) => x.ssn === '***-**-6789'));
      assert.equal(doc[19_999]?.id, 20_000);
    } finally {
      await gw.close(100);
    }
  });
});
