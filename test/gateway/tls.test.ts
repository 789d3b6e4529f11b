/**
 * The HTTPS listener with real TLS handshakes: TLS 1.2/1.3, ALPN, SNI, HTTP/2 end to end,
 * certificate reload without dropping connections, handshake failures as events, and TLS to
 * the upstream (custom CA, client certificate).
 */
import assert from 'node:assert/strict';
import { createServer as createHttpsServer } from 'node:https';
import { connect as netConnect, type AddressInfo } from 'node:net';
import { renameSync, writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { echoUpstream, startTestGateway, type TestGateway, type TestUpstream } from '../helpers/gateway.ts';
import { h2request, h2session, httpsText, PemDir, serverCertificate } from '../controls/transport/pki.ts';
import { issueCertificate } from '../../src/pki/ca.ts';

const pem = new PemDir();
after(() => pem.remove());

async function waitFor(cond: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('HTTPS listener', () => {
  let up: TestUpstream;
  let gw: TestGateway;
  let ca: Awaited<ReturnType<PemDir['ca']>>;
  let port: number;

  before(async () => {
    ca = await pem.ca('listener-ca', 'Listener CA');
    const def = await pem.issue(ca, 'default', { kind: 'server', dns: ['localhost', '127.0.0.1'] });
    const a = await pem.issue(ca, 'a', { kind: 'server', dns: ['a.test'] });
    const b = await pem.issue(ca, 'wild-b', { kind: 'server', dns: ['*.b.test'] });
    up = await echoUpstream();
    gw = await startTestGateway({
      tls: {
        cert: def.certFile,
        key: def.keyFile,
        certificates: [
          { cert: a.certFile, key: a.keyFile },
          { cert: b.certFile, key: b.keyFile },
        ],
      },
      apis: [{ name: 'echo', match: { path_prefix: '/api' }, upstream: { targets: [up.url] } }],
    });
    port = Number(new URL(gw.url).port);
  });
  after(async () => {
    await gw.close();
    await up.close();
  });

  test('the URL is https; TLS 1.3 by default, TLS 1.2 when the client caps it; ALPN offers h2', async () => {
    assert.match(gw.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const t13 = await serverCertificate(port, { ca: ca.certPem, servername: 'localhost' });
    assert.equal(t13.protocol, 'TLSv1.3');
    assert.equal(t13.alpn, 'h2');
    const t12 = await serverCertificate(port, { ca: ca.certPem, servername: 'localhost', maxVersion: 'TLSv1.2' });
    assert.equal(t12.protocol, 'TLSv1.2');
  });

  test('HTTP/1.1 over TLS reaches the upstream with X-Forwarded-Proto https', async () => {
    const r = await httpsText(`${gw.url}/api/one?x=1`, { ca: ca.certPem, servername: 'localhost' });
    assert.equal(r.status, 200);
    const echo = JSON.parse(r.body);
    assert.equal(echo.url, '/api/one?x=1');
    assert.equal(echo.headers['x-forwarded-proto'], 'https');
    assert.equal(r.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains');
  });

  test('SNI picks the certificate for the name, a wildcard for one label, the default otherwise', async () => {
    assert.equal((await serverCertificate(port, { ca: ca.certPem, servername: 'a.test' })).subject.CN, 'a.test');
    assert.equal((await serverCertificate(port, { ca: ca.certPem, servername: 'api.b.test' })).subject.CN, '*.b.test');
    assert.equal((await serverCertificate(port, { ca: ca.certPem, servername: 'A.TEST' })).subject.CN, 'a.test');
    assert.equal(
      (await serverCertificate(port, { ca: ca.certPem, servername: 'x.y.b.test', checkServerIdentity: () => undefined } as never)).subject.CN,
      'localhost',
    );
    assert.equal(
      (await serverCertificate(port, { ca: ca.certPem, servername: 'other.test', checkServerIdentity: () => undefined } as never)).subject.CN,
      'localhost',
    );
  });

  test('HTTP/2 client end to end: GET and POST reach the upstream, pseudo-headers are not forwarded, problems are served', async () => {
    const s = await h2session(gw.url, { ca: ca.certPem, servername: 'localhost' });
    try {
      assert.equal(s.alpnProtocol, 'h2');
      const g = await h2request(s, '/api/h2/path?q=1', { headers: { ':authority': `api.example:${port}`, 'x-custom': 'yes' } });
      assert.equal(g.status, 200);
      const echo = JSON.parse(g.body);
      assert.equal(echo.method, 'GET');
      assert.equal(echo.url, '/api/h2/path?q=1');
      assert.equal(echo.headers['x-custom'], 'yes');
      assert.equal(echo.headers['x-forwarded-host'], `api.example:${port}`);
      assert.deepEqual(
        Object.keys(echo.headers).filter((k) => k.startsWith(':')),
        [],
      );
      assert.equal(typeof g.headers['x-request-id'], 'string');
      const p = await h2request(s, '/api/upload', { method: 'POST', headers: { 'content-type': 'text/plain', 'content-length': '11' }, body: 'hello world' });
      assert.equal(p.status, 200);
      assert.equal(JSON.parse(p.body).bytes, 11);
      const nf = await h2request(s, '/nowhere');
      assert.equal(nf.status, 404);
      assert.equal(nf.headers['content-type'], 'application/problem+json');
      assert.equal(JSON.parse(nf.body).type, 'https://rampart.dev/problems/no-route');
      // The session survived all three exchanges.
      assert.equal((await h2request(s, '/api/again')).status, 200);
    } finally {
      s.close();
    }
  });

  test('HTTP/2 CONNECT is refused with a 405 problem response on its stream; the session survives', async () => {
    const s = await h2session(gw.url, { ca: ca.certPem, servername: 'localhost' });
    try {
      const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const st = s.request({ ':method': 'CONNECT', ':authority': 'example.com:443' });
        let status = 0;
        let body = '';
        st.on('response', (h) => (status = Number(h[':status'])));
        st.setEncoding('utf8');
        st.on('data', (c: string) => (body += c));
        st.on('end', () => resolve({ status, body }));
        st.on('error', reject);
      });
      assert.equal(status, 405);
      assert.equal(JSON.parse(body).type, 'https://rampart.dev/problems/method-not-allowed');
      assert.equal((await h2request(s, '/api/after-connect')).status, 200);
    } finally {
      s.close();
    }
  });

  test('a failed handshake (plain HTTP on the TLS port) is an event; the listener keeps serving', async () => {
    const before = gw.events.length;
    await new Promise<void>((resolve) => {
      const sock = netConnect(port, '127.0.0.1', () => sock.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
      sock.on('error', () => resolve());
      sock.on('close', () => resolve());
    });
    await waitFor(async () => gw.events.length > before, 'tls-handshake-failed event');
    const e = gw.events[gw.events.length - 1];
    assert.equal(e?.control, 'transport');
    assert.equal(e?.reason, 'tls-handshake-failed');
    assert.equal(e?.client_ip, '127.0.0.1');
    assert.equal(typeof e?.details?.error, 'string');
    assert.equal((await httpsText(`${gw.url}/api/ok`, { ca: ca.certPem, servername: 'localhost' })).status, 200);
  });
});

describe('certificate reload', () => {
  test('a replaced certificate file is served to new handshakes; an open HTTP/2 session keeps working', async () => {
    const ca = await pem.ca('reload-ca', 'Reload CA');
    const first = await pem.issue(ca, 'reload', { kind: 'server', dns: ['localhost'] });
    const up = await echoUpstream();
    const gw = await startTestGateway({ tls: { cert: first.certFile, key: first.keyFile }, apis: [{ name: 'echo', upstream: { targets: [up.url] } }] });
    const port = Number(new URL(gw.url).port);
    const tls = { ca: ca.certPem, servername: 'localhost' };
    try {
      const s = await h2session(gw.url, tls);
      assert.equal((await h2request(s, '/before')).status, 200);
      assert.equal((await serverCertificate(port, tls)).serialNumber, first.serialNumber);
      // Replace key and certificate the way certificate tools do: write aside, then rename over.
      const second = await issueCertificate(ca, { kind: 'server', dns: ['localhost'] });
      writeFileSync(`${first.certFile}.tmp`, second.certPem);
      writeFileSync(`${first.keyFile}.tmp`, second.keyPem);
      renameSync(`${first.keyFile}.tmp`, first.keyFile);
      renameSync(`${first.certFile}.tmp`, first.certFile);
      await waitFor(async () => (await serverCertificate(port, tls)).serialNumber === second.serialNumber, 'new certificate served');
      assert.equal(s.closed, false);
      assert.equal(s.destroyed, false);
      const r = await h2request(s, '/after');
      assert.equal(r.status, 200);
      assert.equal(JSON.parse(r.body).url, '/after');
      s.close();
      assert.equal(gw.events.filter((e) => e.reason === 'tls-reload-failed').length, 0);
    } finally {
      await gw.close();
      await up.close();
    }
  });

  test('a broken replacement (key does not match) keeps the old certificate and emits tls-reload-failed', async () => {
    const ca = await pem.ca('broken-ca', 'Broken CA');
    const first = await pem.issue(ca, 'broken', { kind: 'server', dns: ['localhost'] });
    const other = await issueCertificate(ca, { kind: 'server', dns: ['localhost'] });
    const up = await echoUpstream();
    const gw = await startTestGateway({ tls: { cert: first.certFile, key: first.keyFile }, apis: [{ name: 'echo', upstream: { targets: [up.url] } }] });
    const port = Number(new URL(gw.url).port);
    const tls = { ca: ca.certPem, servername: 'localhost' };
    try {
      writeFileSync(first.keyFile, other.keyPem);
      await waitFor(async () => gw.events.some((e) => e.reason === 'tls-reload-failed'), 'tls-reload-failed event');
      assert.equal((await serverCertificate(port, tls)).serialNumber, first.serialNumber);
      assert.equal((await httpsText(`${gw.url}/still`, tls)).status, 200);
    } finally {
      await gw.close();
      await up.close();
    }
  });
});

describe('configuration', () => {
  test('http2: false offers only http/1.1; a configuration reload swaps the certificate in place', async () => {
    const ca = await pem.ca('config-ca', 'Config CA');
    const one = await pem.issue(ca, 'config-one', { kind: 'server', dns: ['localhost'] });
    const two = await pem.issue(ca, 'config-two', { kind: 'server', dns: ['localhost'] });
    const up = await echoUpstream();
    const apis = [{ name: 'echo', upstream: { targets: [up.url] } }];
    const gw = await startTestGateway({ tls: { cert: one.certFile, key: one.keyFile, http2: false, watch: false }, apis });
    const port = Number(new URL(gw.url).port);
    const tls = { ca: ca.certPem, servername: 'localhost' };
    try {
      const first = await serverCertificate(port, tls);
      assert.equal(first.alpn, 'http/1.1');
      assert.equal(first.serialNumber, one.serialNumber);
      assert.equal((await httpsText(`${gw.url}/x`, tls)).status, 200);
      await gw.reload({
        listen: '127.0.0.1:0',
        admin: { listen: '127.0.0.1:0' },
        access_log: false,
        events: { sinks: [] },
        tls: { cert: two.certFile, key: two.keyFile, http2: false, watch: false },
        apis,
      });
      assert.equal((await serverCertificate(port, tls)).serialNumber, two.serialNumber);
      await assert.rejects(
        gw.reload({
          listen: '127.0.0.1:0',
          admin: { listen: '127.0.0.1:0' },
          access_log: false,
          events: { sinks: [] },
          tls: { cert: '/nonexistent.crt', key: two.keyFile, watch: false },
          apis,
        }),
        /tls: cannot read \/nonexistent\.crt: ENOENT/,
      );
      assert.equal((await serverCertificate(port, tls)).serialNumber, two.serialNumber);
    } finally {
      await gw.close();
      await up.close();
    }
  });

  test('invalid tls blocks are refused with the setting named', async () => {
    await assert.rejects(
      startTestGateway({ tls: { cert: 'a.crt' }, apis: [{ name: 'a', upstream: { targets: ['http://127.0.0.1:1'] } }] }),
      /cert and key go together/,
    );
    await assert.rejects(startTestGateway({ tls: {}, apis: [{ name: 'a', upstream: { targets: ['http://127.0.0.1:1'] } }] }), /a certificate is required/);
  });
});

describe('upstream TLS', () => {
  test('verifies the upstream against a custom CA and presents the gateway client certificate', async () => {
    const upCa = await pem.ca('upstream-ca', 'Upstream CA');
    const gwCa = await pem.ca('gateway-client-ca', 'Gateway Client CA');
    const upCert = await pem.issue(upCa, 'upstream', { kind: 'server', dns: ['localhost', '127.0.0.1'] });
    const gwCert = await pem.issue(gwCa, 'gateway-client', { kind: 'client', commonName: 'rampart-gateway' });
    const server = createHttpsServer(
      { cert: upCert.certPem, key: upCert.keyPem, ca: gwCa.certPem, requestCert: true, rejectUnauthorized: true },
      (req, res) => {
        const peer = (req.socket as TLSSocket).getPeerCertificate();
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ url: req.url, client_cn: peer.subject?.CN ?? null }));
      },
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const target = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const gw = await startTestGateway({
      apis: [
        {
          name: 'mtls-up',
          match: { path_prefix: '/good' },
          upstream: { targets: [target], tls: { ca: [upCa.file], cert: gwCert.certFile, key: gwCert.keyFile } },
        },
        { name: 'public-roots', match: { path_prefix: '/roots' }, upstream: { targets: [target] } },
        { name: 'no-client-cert', match: { path_prefix: '/nocert' }, upstream: { targets: [target], tls: { ca: [upCa.file] } } },
      ],
    });
    try {
      const ok = await fetch(`${gw.url}/good/x`);
      assert.equal(ok.status, 200);
      assert.deepEqual(await ok.json(), { url: '/good/x', client_cn: 'rampart-gateway' });

      const roots = await fetch(`${gw.url}/roots/x`);
      assert.equal(roots.status, 502);
      await roots.arrayBuffer();
      const ev = gw.events.find((e) => e.api === 'public-roots');
      assert.equal(ev?.reason, 'upstream-unavailable');
      assert.match(String(ev?.details?.error), /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|UNABLE_TO_GET_ISSUER/);

      const nocert = await fetch(`${gw.url}/nocert/x`);
      assert.equal(nocert.status, 502);
      await nocert.arrayBuffer();
    } finally {
      await gw.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  test('an unreadable upstream CA file refuses the configuration', async () => {
    await assert.rejects(
      startTestGateway({ apis: [{ name: 'x', upstream: { targets: ['https://127.0.0.1:1'], tls: { ca: ['/nonexistent/ca.pem'] } } }] }),
      /upstream\.tls: cannot read \/nonexistent\/ca\.pem: ENOENT/,
    );
  });
});
