import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, test } from 'node:test';
import type { SecurityEvent } from '../../../src/events/event.ts';
import { SIGNATURE_HEADER, WebhookSink, signWebhook, verifyWebhookSignature } from '../../../src/events/sinks/webhook.ts';

const SECRET = 'a-very-secret-webhook-key';
const event = (reason: string): SecurityEvent => ({
  time: '2025-01-01T00:00:00.000Z',
  control: 'dlp',
  reason,
  action: 'alert',
  severity: 'high',
  details: { counts: { ssn: 1 } },
});

interface Received {
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

describe('WebhookSink', () => {
  let server: Server;
  let url: string;
  let received: Received[] = [];
  /** Status codes to answer, in order (then 200). */
  let script: number[] = [];
  let hold: (() => void) | undefined;
  let holding = false;

  before(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c));
      req.on('end', () => {
        const answer = () => {
          received.push({ body, headers: req.headers });
          const status = script.shift() ?? 200;
          res.writeHead(status, status === 429 ? { 'retry-after': '0' } : {});
          res.end();
        };
        if (holding) hold = answer;
        else answer();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  beforeEach(() => {
    hold = undefined;
    received = [];
    script = [];
    holding = false;
  });

  test('posts the event as JSON with a verifiable HMAC-SHA-256 signature and an event id', async () => {
    const sink = new WebhookSink({ url, secret: SECRET, headers: { authorization: 'Bearer x' } });
    sink.write(event('bulk-extraction'));
    await sink.close();
    assert.equal(received.length, 1);
    const r = received[0] as Received;
    assert.deepEqual(JSON.parse(r.body), event('bulk-extraction'));
    assert.equal(r.headers['content-type'], 'application/json');
    assert.equal(r.headers.authorization, 'Bearer x');
    assert.match(String(r.headers['x-rampart-event-id']), /^[0-9a-f-]{36}$/);
    const sig = r.headers[SIGNATURE_HEADER] as string;
    assert.equal(verifyWebhookSignature(SECRET, sig, r.body), true);
    assert.equal(verifyWebhookSignature('another-secret-0000', sig, r.body), false);
    assert.equal(verifyWebhookSignature(SECRET, sig, `${r.body} `), false);
    assert.deepEqual(sink.stats, { delivered: 1, dropped: 0, failed: 0, retries: 0 });
  });

  test('signature format and replay window', () => {
    const h = signWebhook(SECRET, '{"a":1}', 1700000000);
    assert.match(h, /^t=1700000000,v1=[0-9a-f]{64}$/);
    assert.equal(verifyWebhookSignature(SECRET, h, '{"a":1}', 300, 1700000100), true);
    assert.equal(verifyWebhookSignature(SECRET, h, '{"a":1}', 300, 1700000400), false);
    assert.equal(verifyWebhookSignature(SECRET, undefined, '{"a":1}'), false);
  });

  test('retries 5xx and 429 with backoff, keeping the event id; gives up after maxAttempts; 4xx is not retried', async () => {
    script = [500, 503, 429];
    const sink = new WebhookSink({ url, secret: SECRET, backoffMs: 5, random: () => 0.5 });
    sink.write(event('one'));
    await sink.close();
    assert.equal(received.length, 4);
    assert.equal(new Set(received.map((r) => r.headers['x-rampart-event-id'])).size, 1);
    assert.deepEqual(sink.stats, { delivered: 1, dropped: 0, failed: 0, retries: 3 });

    received = [];
    script = [500, 500, 500];
    const giveUp = new WebhookSink({ url, secret: SECRET, backoffMs: 1, maxAttempts: 3 });
    giveUp.write(event('two'));
    await giveUp.close();
    assert.equal(received.length, 3);
    assert.deepEqual(giveUp.stats, { delivered: 0, dropped: 0, failed: 1, retries: 2 });

    received = [];
    script = [400];
    const refused = new WebhookSink({ url, secret: SECRET, backoffMs: 1 });
    refused.write(event('three'));
    await refused.close();
    assert.equal(received.length, 1);
    assert.deepEqual(refused.stats, { delivered: 0, dropped: 0, failed: 1, retries: 0 });
  });

  test('an unreachable receiver is retried, then the event counts as failed', async () => {
    const dead = createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
    const port = (dead.address() as AddressInfo).port;
    await new Promise((r) => dead.close(r));
    const sink = new WebhookSink({ url: `http://127.0.0.1:${port}/`, secret: SECRET, backoffMs: 1, maxAttempts: 2 });
    sink.write(event('x'));
    await sink.close();
    assert.deepEqual(sink.stats, { delivered: 0, dropped: 0, failed: 1, retries: 1 });
  });

  test('the queue is bounded: the oldest waiting events are dropped', async () => {
    holding = true;
    const sink = new WebhookSink({ url, secret: SECRET, maxQueue: 3, concurrency: 1 });
    for (let i = 0; i < 6; i++) sink.write(event(`e${i}`));
    // e0 is in flight (held by the receiver); e1, e2 were dropped for e3..e5.
    while (hold === undefined) await new Promise((r) => setTimeout(r, 5));
    holding = false;
    hold?.();
    await sink.close();
    assert.deepEqual(
      received.map((r) => (JSON.parse(r.body) as SecurityEvent).reason),
      ['e0', 'e3', 'e4', 'e5'],
    );
    assert.deepEqual(sink.stats, { delivered: 4, dropped: 2, failed: 0, retries: 0 });
  });

  test('refuses a short secret and a non-http URL', () => {
    assert.throws(() => new WebhookSink({ url, secret: 'short' }), /at least 16/);
    assert.throws(() => new WebhookSink({ url: 'ftp://x/', secret: SECRET }), /http/);
  });
});
