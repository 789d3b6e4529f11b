import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';
import { describe, test } from 'node:test';
import type { SecurityEvent } from '../../../src/events/event.ts';
import { SyslogSink, formatRfc5424 } from '../../../src/events/sinks/syslog.ts';

const ev: SecurityEvent = {
  time: '2025-01-02T03:04:05.678Z',
  request_id: 'req-1',
  api: 'demo',
  client_ip: '203.0.113.9',
  control: 'dlp',
  reason: 'bulk-extraction',
  action: 'deny',
  severity: 'high',
  status: 403,
  details: { note: 'quote " bracket ] backslash \\ café' },
};

const FMT = { facility: 10, appName: 'rampart', hostname: 'gw1', enterpriseId: 32473, procId: '42' };
const JSON_ASCII = JSON.stringify(ev).replace('café', 'caf\\u00e9');
const EXPECTED = `<83>1 2025-01-02T03:04:05.678Z gw1 rampart 42 bulk-extraction [rampart@32473 control="dlp" action="deny" severity="high" reason="bulk-extraction" request_id="req-1" api="demo" client_ip="203.0.113.9" status="403"] ${JSON_ASCII}`;

describe('syslog sink (RFC 5424)', () => {
  test('formats PRI (authpriv.err = 83), header, structured data and ASCII JSON message', () => {
    assert.equal(formatRfc5424(ev, FMT), EXPECTED);
    // SD-PARAM escaping (RFC 5424 §6.3.3) and severity mapping.
    const e2: SecurityEvent = { time: '2025-01-02T03:04:05.678Z', control: 'x"]\\', reason: 'r', action: 'alert', severity: 'info' };
    assert.equal(formatRfc5424(e2, { ...FMT, facility: 16 }).split(' [')[0], '<134>1 2025-01-02T03:04:05.678Z gw1 rampart 42 r');
    assert.match(formatRfc5424(e2, FMT), /control="x\\"\\]\\\\"/);
  });

  test('UDP: one message per datagram', async () => {
    const rx = createSocket('udp4');
    await new Promise<void>((r) => rx.bind(0, '127.0.0.1', r));
    const got = new Promise<string>((r) => rx.once('message', (m) => r(m.toString('utf8'))));
    const sink = new SyslogSink({ transport: 'udp', host: '127.0.0.1', port: (rx.address() as AddressInfo).port, hostname: 'gw1' });
    sink.write(ev);
    const msg = await got;
    await sink.close();
    rx.close();
    assert.equal(msg, EXPECTED.replace(' 42 ', ` ${process.pid} `));
  });

  test('TCP: octet-counting framing (RFC 6587), messages written before the connection are queued', async () => {
    const frames: string[] = [];
    let buf = '';
    const server = createServer((s) => {
      s.setEncoding('utf8');
      s.on('data', (d: string) => {
        buf += d;
        for (;;) {
          const sp = buf.indexOf(' ');
          if (sp === -1) break;
          const n = Number(buf.slice(0, sp));
          if (Buffer.byteLength(buf.slice(sp + 1)) < n) break;
          const b = Buffer.from(buf.slice(sp + 1));
          frames.push(b.subarray(0, n).toString());
          buf = b.subarray(n).toString();
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const sink = new SyslogSink({ transport: 'tcp', host: '127.0.0.1', port, hostname: 'gw1', facility: 'local0' });
    sink.write(ev);
    sink.write({ ...ev, reason: 'second', severity: 'critical' });
    for (let i = 0; i < 100 && frames.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    await sink.close();
    server.close();
    assert.equal(frames.length, 2);
    assert.ok((frames[0] as string).startsWith('<131>1 2025-01-02T03:04:05.678Z gw1 rampart '));
    assert.ok((frames[1] as string).startsWith('<130>1 '));
    assert.match(frames[1] as string, / second \[rampart@32473 /);
  });

  test('unknown facility is refused', () => {
    assert.throws(() => new SyslogSink({ host: '127.0.0.1', facility: 'mail2' }), /unknown facility/);
  });
});
