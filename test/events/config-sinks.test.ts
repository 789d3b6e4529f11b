import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { test } from 'node:test';
import { verifyWebhookSignature } from '../../src/events/sinks/webhook.ts';
import { echoUpstream, startTestGateway, startUpstream } from '../helpers/gateway.ts';

const SECRET = 'webhook-secret-0123456789';

test('configured webhook (min_severity high) and syslog sinks receive events through a real gateway', async () => {
  const received: { body: string; sig: string | undefined }[] = [];
  const hook = await startUpstream((req, res) => {
    let b = '';
    req.on('data', (c) => (b += c));
    req.on('end', () => {
      received.push({ body: b, sig: req.headers['x-rampart-signature'] as string | undefined });
      res.end('ok');
    });
  });
  const udp = createSocket('udp4');
  const syslog: string[] = [];
  udp.on('message', (m) => syslog.push(m.toString()));
  await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r));
  const up = await echoUpstream();
  const gw = await startTestGateway({
    events: {
      sinks: [
        { type: 'webhook', url: `${hook.url}/alerts`, secret: SECRET },
        { type: 'syslog', transport: 'udp', host: '127.0.0.1', port: udp.address().port },
      ],
    },
    apis: [{ name: 'a', match: { path_prefix: '/a' }, upstream: { targets: [up.url] } }],
  });
  try {
    await fetch(`${gw.url}/unrouted`); // no-route: severity low
    // Ambiguous framing: severity high.
    await new Promise<void>((resolve) => {
      const s = connect(Number(new URL(gw.url).port), '127.0.0.1', () =>
        s.write('POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'),
      );
      s.on('data', () => {});
      s.on('close', () => resolve());
    });
    const until = Date.now() + 5000;
    while ((received.length < 1 || syslog.length < 2) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    assert.equal(received.length, 1, 'only the high-severity event reaches the webhook');
    const ev = JSON.parse(received[0]!.body) as { reason?: string; event?: { reason: string } };
    assert.equal(ev.reason ?? ev.event?.reason, 'malformed-request');
    assert.equal(verifyWebhookSignature(SECRET, received[0]!.sig, received[0]!.body), true);
    assert.equal(syslog.length, 2, 'syslog receives every event');
    assert.match(syslog.join('\n'), /^<\d+>1 \S+ \S+ rampart /m);
    assert.match(syslog.join('\n'), /no-route/);
  } finally {
    await gw.close(100);
    await up.close();
    await hook.close();
    udp.close();
  }
});
