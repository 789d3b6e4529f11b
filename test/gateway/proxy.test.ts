import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { echoUpstream, httpRequestText, startTestGateway, startUpstream, type TestGateway, type TestUpstream } from '../helpers/gateway.ts';

/** Sends raw bytes and returns the raw response text (connection closed by the server or after 2 s). */
function raw(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let out = '';
    s.on('data', (c) => (out += c.toString()));
    s.on('end', () => resolve(out));
    s.on('error', reject);
    s.setTimeout(2000, () => {
      s.destroy();
      resolve(out);
    });
    s.write(text);
  });
}

describe('proxy', () => {
  let up: TestUpstream;
  let gw: TestGateway;
  let port: number;
  before(async () => {
    up = await echoUpstream();
    gw = await startTestGateway({ apis: [{ name: 'echo', upstream: { targets: [up.url] }, controls: { limits: { body_bytes: 1024 } } }] });
    port = Number(new URL(gw.url).port);
  });
  after(async () => {
    await gw.close(100);
    await up.close();
  });

  test('GET is forwarded with forwarding headers, request id, and without hop-by-hop fields', async () => {
    const r = await httpRequestText(`${gw.url}/a/b?x=1`, {
      headers: { connection: 'keep-alive, x-private', 'x-private': 'p', te: 'trailers', 'x-keep': 'k', 'x-request-id': 'req-123' },
    });
    assert.equal(r.status, 200);
    const j = JSON.parse(r.body) as { url: string; headers: Record<string, string> };
    assert.equal(j.url, '/a/b?x=1');
    assert.equal(j.headers['x-keep'], 'k');
    assert.equal(j.headers['x-private'], undefined, 'a header named in Connection is hop-by-hop');
    assert.equal(j.headers.te, undefined);
    assert.equal(j.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(j.headers['x-forwarded-proto'], 'http');
    assert.equal(j.headers.forwarded, `for=127.0.0.1;proto=http;host="127.0.0.1:${port}"`);
    assert.equal(j.headers['x-request-id'], 'req-123');
    assert.equal(r.headers['x-request-id'], 'req-123');
    // Response side: hop-by-hop from the upstream stripped, fingerprinting headers removed, security headers added.
    assert.equal(r.headers['x-upstream-hop'], undefined);
    assert.equal(r.headers.server, undefined);
    assert.equal(r.headers['x-powered-by'], undefined);
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
  });

  test('a malformed X-Request-Id is replaced by a generated one', async () => {
    const r = await fetch(`${gw.url}/`, { headers: { 'x-request-id': 'bad id with spaces' } });
    const j = (await r.json()) as { headers: Record<string, string> };
    assert.match(j.headers['x-request-id'] as string, /^[0-9a-f-]{36}$/);
  });

  test('forwarding facts frameworks read (X-Forwarded-Prefix, -Scheme, True-Client-IP, ...) are dropped from an untrusted client', async () => {
    const spoof = {
      'x-forwarded-prefix': '/admin',
      'x-forwarded-scheme': 'https',
      'x-forwarded-ssl': 'on',
      'x-host': 'evil.example',
      'x-original-host': 'evil.example',
      'true-client-ip': '6.6.6.6',
      'cf-connecting-ip': '6.6.6.6',
      'x-client-ip': '6.6.6.6',
    };
    const j = JSON.parse((await httpRequestText(`${gw.url}/`, { headers: { ...spoof, 'x-keep': 'k' } })).body) as { headers: Record<string, string> };
    for (const h of Object.keys(spoof)) assert.equal(j.headers[h], undefined, h);
    assert.equal(j.headers['x-keep'], 'k');
  });

  test('a trusted proxy may still send them', async () => {
    const g = await startTestGateway({ trusted_proxies: ['127.0.0.1/32'], apis: [{ name: 'echo', upstream: { targets: [up.url] } }] });
    try {
      const j = JSON.parse((await httpRequestText(`${g.url}/`, { headers: { 'x-forwarded-prefix': '/api', 'true-client-ip': '203.0.113.9' } })).body) as {
        headers: Record<string, string>;
      };
      assert.equal(j.headers['x-forwarded-prefix'], '/api');
      assert.equal(j.headers['true-client-ip'], '203.0.113.9');
    } finally {
      await g.close(100);
    }
  });

  test('traceparent passes through unchanged', async () => {
    const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const j = (await (await fetch(`${gw.url}/`, { headers: { traceparent: tp } })).json()) as { headers: Record<string, string> };
    assert.equal(j.headers.traceparent, tp);
  });

  test('spoofed X-Forwarded-For from an untrusted peer is ignored', async () => {
    const j = (await (
      await fetch(`${gw.url}/`, { headers: { 'x-forwarded-for': '6.6.6.6', forwarded: 'for=6.6.6.6', 'x-forwarded-proto': 'https' } })
    ).json()) as {
      headers: Record<string, string>;
    };
    assert.equal(j.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(j.headers.forwarded?.includes('6.6.6.6'), false);
    assert.equal(j.headers['x-forwarded-proto'], 'http');
  });

  test('POST body streams to the upstream', async () => {
    const body = Buffer.alloc(1000, 'a');
    const r = await fetch(`${gw.url}/p`, { method: 'POST', body });
    assert.equal(((await r.json()) as { bytes: number }).bytes, 1000);
  });

  test('a chunked body over the cap is refused with 413 (counted on the bytes received)', async () => {
    const res = await new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/p', headers: { 'transfer-encoding': 'chunked' } }, (r) => {
        let b = '';
        r.on('data', (c) => (b += c));
        r.on('end', () => resolve({ status: r.statusCode ?? 0, type: r.headers['content-type'] ?? '', body: b }));
      });
      req.on('error', reject);
      for (let i = 0; i < 10; i++) req.write(Buffer.alloc(500, 'x'));
      req.end();
    });
    assert.equal(res.status, 413);
    assert.equal(res.type, 'application/problem+json');
    assert.equal(JSON.parse(res.body).type, 'https://rampart.dev/problems/body-too-large');
  });

  test('a declared Content-Length over the cap is refused before reading', async () => {
    const r = await fetch(`${gw.url}/p`, { method: 'POST', body: Buffer.alloc(2048) });
    assert.equal(r.status, 413);
  });

  test('Content-Length with Transfer-Encoding is refused, never forwarded', async () => {
    const before = gw.events.length;
    const text = await raw(
      port,
      'POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n',
    );
    assert.match(text, /^HTTP\/1\.1 400 /);
    assert.match(text, /application\/problem\+json/);
    assert.doesNotMatch(text, /smuggled/);
    const ev = gw.events.slice(before).find((e) => e.reason === 'malformed-request');
    assert.ok(ev, 'a security event is emitted');
  });

  test('repeated Content-Length with different values is refused', async () => {
    const text = await raw(port, 'POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde');
    assert.match(text, /^HTTP\/1\.1 400 /);
  });

  test('obsolete line folding is refused', async () => {
    const text = await raw(port, 'GET / HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n');
    assert.match(text, /^HTTP\/1\.1 400 /);
  });

  test('reserved identity headers sent by a client never reach the upstream, whatever controls run', async () => {
    const r = await httpRequestText(`${gw.url}/x`, {
      headers: { 'x-rampart-subject': 'admin', 'x-rampart-scopes': 'admin', 'x-rampart-auth-method': 'mtls', 'rampart-passport': 'forged', 'x-other': 'kept' },
    });
    const j = JSON.parse(r.body) as { headers: Record<string, string> };
    assert.equal(j.headers['x-rampart-subject'], undefined);
    assert.equal(j.headers['x-rampart-scopes'], undefined);
    assert.equal(j.headers['x-rampart-auth-method'], undefined);
    assert.equal(j.headers['rampart-passport'], undefined);
    assert.equal(j.headers['x-other'], 'kept');
  });

  test('path parameters (;) are refused raw and encoded: Tomcat-style servers strip them', async () => {
    for (const p of ['/admin;x/x', '/admin%3bx/x', '/admin%3Bx/x']) {
      const text = await raw(port, `GET ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      assert.match(text, /^HTTP\/1\.1 400 /, p);
      assert.match(text, /path-not-normalized/, p);
    }
  });

  test('two Host headers, an invalid Host, or none on HTTP/1.1 are 400 problem details', async () => {
    const two = await raw(port, 'GET /a HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n');
    assert.match(two, /^HTTP\/1\.1 400 /);
    assert.match(two, /invalid-host/);
    const bad = await raw(port, 'GET /a HTTP/1.1\r\nHost: evil.com/x?y\r\nConnection: close\r\n\r\n');
    assert.match(bad, /invalid-host/);
    const none = await raw(port, 'GET /a HTTP/1.1\r\nConnection: close\r\n\r\n');
    assert.match(none, /^HTTP\/1\.1 400 /);
    assert.match(none, /application\/problem\+json/);
    const http10 = await raw(port, 'GET /a HTTP/1.0\r\n\r\n');
    assert.match(http10, /^HTTP\/1\.1 200 /);
  });

  test('CONNECT is refused with 405 problem details and an event', async () => {
    const before = gw.events.length;
    const text = await raw(port, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
    assert.match(text, /^HTTP\/1\.1 405 /);
    assert.match(text, /application\/problem\+json/);
    assert.ok(gw.events.slice(before).some((e) => e.reason === 'method-not-allowed'));
  });

  test('Expect: 100-continue: an over-cap declared length gets 413 without a 100 Continue first', async () => {
    // RFC 9110 §10.1.1: the server may answer the final status instead of 100; the body is never requested.
    const text = await raw(port, 'POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 4096\r\nExpect: 100-continue\r\n\r\n');
    assert.match(text, /^HTTP\/1\.1 413 /);
    assert.doesNotMatch(text, /100 Continue/);
    assert.match(text, /body-too-large/);
  });

  test('an HTTP/1.0 request with Transfer-Encoding has faulty framing: 400, not forwarded (RFC 9112 §6.1)', async () => {
    const text = await raw(port, 'POST /a HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n');
    assert.match(text, /^HTTP\/1\.1 400 /);
    assert.match(text, /malformed-request/);
  });

  test('another Expect gets 417 problem details with an instance and one event', async () => {
    const before = gw.events.length;
    const text = await raw(port, 'GET /a HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\nConnection: close\r\n\r\n');
    assert.match(text, /^HTTP\/1\.1 417 /);
    assert.match(text, /application\/problem\+json/);
    const id = /x-request-id: ([0-9a-f-]{36})/i.exec(text)?.[1];
    assert.ok(id, text);
    assert.match(text, new RegExp(`"instance":"urn:rampart:request:${id}"`));
    assert.deepEqual(
      gw.events.slice(before).map((e) => [e.reason, e.request_id]),
      [['expectation-failed', id]],
    );
  });

  test('parser errors and CONNECT carry the request id as instance, matching their event', async () => {
    const before = gw.events.length;
    const text = await raw(port, 'GET /a HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n');
    assert.match(text, /^HTTP\/1\.1 400 /);
    const id = /"instance":"urn:rampart:request:([0-9a-f-]{36})"/.exec(text)?.[1];
    assert.ok(id, text);
    assert.equal(gw.events.slice(before).find((e) => e.reason === 'malformed-request')?.request_id, id);
  });

  test('Expect: 100-continue: an accepted request gets 100 Continue, then the body is forwarded', async () => {
    const text = await new Promise<string>((resolve, reject) => {
      const s = connect(port, '127.0.0.1');
      let out = '';
      let sent = false;
      s.on('data', (c) => {
        out += c.toString();
        if (!sent && out.includes('100 Continue\r\n\r\n')) {
          sent = true;
          s.write('hello');
        }
      });
      s.on('end', () => resolve(out));
      s.on('error', reject);
      s.setTimeout(3000, () => {
        s.destroy();
        resolve(out);
      });
      s.write('POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n');
    });
    assert.match(text, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
    assert.match(text, /"bytes":5/);
  });

  test('TRACE is refused with 405 problem details and an event (cross-site tracing); TRACK never parses', async () => {
    const before = gw.events.length;
    const text = await raw(port, 'TRACE /a HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    assert.match(text, /^HTTP\/1\.1 405 /);
    assert.match(text, /method-not-allowed/);
    assert.match(text, /allow: GET, HEAD, POST/i);
    assert.ok(gw.events.slice(before).some((e) => e.reason === 'method-not-allowed' && e.method === 'TRACE'));
    // Node's HTTP/1.1 parser does not know TRACK: malformed request, problem details, not proxied.
    const track = await raw(port, 'TRACK /a HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    assert.match(track, /^HTTP\/1\.1 400 /);
    assert.match(track, /application\/problem\+json/);
  });

  test('method and URL override headers are not forwarded (the upstream runs what the gateway authorised)', async () => {
    const r = await httpRequestText(`${gw.url}/users/1`, {
      headers: {
        'x-http-method-override': 'DELETE',
        'x-http-method': 'DELETE',
        'x-method-override': 'DELETE',
        'x-original-url': '/admin',
        'x-rewrite-url': '/admin',
        'x-keep': 'k',
      },
    });
    assert.equal(r.status, 200);
    const j = JSON.parse(r.body) as { method: string; headers: Record<string, string> };
    assert.equal(j.method, 'GET');
    for (const h of ['x-http-method-override', 'x-http-method', 'x-method-override', 'x-original-url', 'x-rewrite-url'])
      assert.equal(j.headers[h], undefined, h);
    assert.equal(j.headers['x-keep'], 'k');
  });

  test('problem responses carry the security headers too', async () => {
    const r = await fetch(`${gw.url}/p`, { method: 'POST', body: Buffer.alloc(2048) });
    assert.equal(r.status, 413);
    assert.equal(r.headers.get('x-frame-options'), 'DENY');
    assert.equal(r.headers.get('content-security-policy'), "default-src 'none'; frame-ancestors 'none'");
    assert.equal(r.headers.get('referrer-policy'), 'no-referrer');
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
  });

  test('dot segments in the path are refused', async () => {
    const text = await raw(port, 'GET /a/../admin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.match(text, /^HTTP\/1\.1 400 /);
    assert.match(text, /path-not-normalized/);
    const text2 = await raw(port, 'GET /a/%2e%2E/admin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.match(text2, /path-not-normalized/);
  });
});

describe('routing', () => {
  let up: TestUpstream;
  let gw: TestGateway;
  before(async () => {
    up = await echoUpstream();
    gw = await startTestGateway({
      apis: [
        { name: 'v1', match: { path_prefix: '/v1' }, upstream: { targets: [`${up.url}/base`], strip_prefix: true } },
        { name: 'hosted', match: { host: 'api.example.test', path_prefix: '/' }, upstream: { targets: [up.url] } },
      ],
    });
  });
  after(async () => {
    await gw.close(100);
    await up.close();
  });

  test('an unknown route is 404 problem details and an event', async () => {
    const r = await fetch(`${gw.url}/nope`);
    assert.equal(r.status, 404);
    assert.equal(r.headers.get('content-type'), 'application/problem+json');
    const b = (await r.json()) as { type: string; status: number; instance: string };
    assert.equal(b.type, 'https://rampart.dev/problems/no-route');
    assert.equal(b.status, 404);
    assert.match(b.instance, /^urn:rampart:request:/);
    const ev = gw.events.find((e) => e.reason === 'no-route');
    assert.equal(ev?.status, 404);
    assert.equal(ev?.action, 'deny');
  });

  test('a path prefix matches on a segment boundary and is stripped onto the target base path', async () => {
    const j = (await (await fetch(`${gw.url}/v1/users?id=1`)).json()) as { url: string };
    assert.equal(j.url, '/base/users?id=1');
    assert.equal((await fetch(`${gw.url}/v1x/users`)).status, 404);
  });

  test('host match', async () => {
    const r = await httpRequestText(`${gw.url}/anything`, { headers: { host: 'api.example.test' } });
    assert.equal(r.status, 200);
    const other = await httpRequestText(`${gw.url}/anything`, { headers: { host: 'other.example.test' } });
    assert.equal(other.status, 404);
  });
});

describe('upstream failures', () => {
  test('upstream down → 502 problem details', async () => {
    const dead = await startUpstream(() => {});
    const url = dead.url;
    await dead.close();
    const gw = await startTestGateway({ apis: [{ name: 'dead', upstream: { targets: [url] } }] });
    try {
      const r = await fetch(`${gw.url}/x`);
      assert.equal(r.status, 502);
      assert.equal(((await r.json()) as { type: string }).type, 'https://rampart.dev/problems/upstream-unavailable');
      assert.ok(gw.events.some((e) => e.reason === 'upstream-unavailable'));
    } finally {
      await gw.close(100);
    }
  });

  test('slow upstream → 504', async () => {
    const slow = await startUpstream((_q, res) => {
      setTimeout(() => res.end('late'), 1500);
    });
    const gw = await startTestGateway({ apis: [{ name: 'slow', upstream: { targets: [slow.url], timeouts: { headers_ms: 200 } } }] });
    try {
      const r = await fetch(`${gw.url}/x`);
      assert.equal(r.status, 504);
      assert.equal(((await r.json()) as { type: string }).type, 'https://rampart.dev/problems/upstream-timeout');
    } finally {
      await gw.close(100);
      await slow.close();
    }
  });

  test('a failing target is skipped for the cool-down; all down → 503', async () => {
    const good = await echoUpstream();
    const dead = await startUpstream(() => {});
    const deadUrl = dead.url;
    await dead.close();
    const gw = await startTestGateway({ apis: [{ name: 'rr', upstream: { targets: [deadUrl, good.url], health: { failures: 1, cooldown_ms: 60000 } } }] });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) statuses.push((await fetch(`${gw.url}/x`)).status);
      // The refused connection is retried on the other target, and the dead one is then skipped.
      assert.deepEqual(statuses, [200, 200, 200, 200, 200, 200]);
      await good.close();
      const r = await fetch(`${gw.url}/x`);
      assert.equal(r.status, 502);
      const r2 = await fetch(`${gw.url}/x`);
      assert.equal(r2.status, 503);
      assert.equal(((await r2.json()) as { type: string }).type, 'https://rampart.dev/problems/no-healthy-upstream');
    } finally {
      await gw.close(100);
    }
  });

  test('a client that disconnects cancels the upstream request', async () => {
    let upstreamClosed: () => void = () => {};
    const closed = new Promise<void>((r) => (upstreamClosed = r));
    const hang = await startUpstream((req, res) => {
      res.on('close', () => upstreamClosed());
      void req;
    });
    const gw = await startTestGateway({ apis: [{ name: 'hang', upstream: { targets: [hang.url] } }] });
    try {
      const ac = new AbortController();
      const p = fetch(`${gw.url}/x`, { signal: ac.signal }).catch((e: Error) => e.name);
      await new Promise((r) => setTimeout(r, 200));
      ac.abort();
      assert.equal(await p, 'AbortError');
      await closed; // resolves only if the upstream saw its request cancelled
      assert.ok(true);
    } finally {
      await gw.close(100);
      await hang.close();
    }
  });
});
