/**
 * Certificate-bound access tokens end to end (RFC 8705 §3), with real TLS handshakes everywhere:
 *
 * - oidc-provider with `features.mTLS.certificateBoundAccessTokens`, behind an HTTPS front that
 *   requests a client certificate and hands it to the provider (`getCertificate`), issues tokens
 *   with `cnf["x5t#S256"]` to a client that authenticates the token request over mutual TLS;
 * - the gateway's HTTPS listener (optional mutual TLS) checks each API request's client
 *   certificate against the token's thumbprint;
 * - the upstream verifies the gateway's passport with packages/passport and sees the
 *   certificate thumbprint and the `mtls` method in it.
 */
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer, request as httpsRequest, type Server as HttpsServer } from 'node:https';
import { request as httpRequest } from 'node:http';
import { connect as h2connect } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { decodeJwt } from 'jose';
import { verifyPassport } from '../../../packages/passport/src/index.ts';
import { createCa, issueCertificate, type IssuedCertificate } from '../../../src/pki/ca.ts';
import { startTestGateway, startUpstream, type TestGateway, type TestUpstream } from '../../helpers/gateway.ts';
import { startOidcProvider, type TestOidcProvider } from '../../helpers/oidc.ts';
import { dpopKey, proof } from './util.ts';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTPS request on a fresh connection, presenting `client` when given. */
function https(
  url: string,
  ca: string,
  client: IssuedCertificate | undefined,
  o: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { method: o.method ?? 'GET', headers: o.headers, ca, cert: client?.certPem, key: client?.keyPem, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

const CERT_HEADER = 'x-test-tls-client-cert';

/**
 * An HTTPS front for the provider (TLS terminated here, client certificate requested): forwards
 * each request to the provider with the certificate's DER (base64) in a header it always
 * overwrites, so `getCertificate` sees exactly the certificate of this TLS connection.
 */
async function httpsFront(target: string, cert: IssuedCertificate, caPem: string): Promise<{ url: string; server: HttpsServer }> {
  const t = new URL(target);
  const server = createHttpsServer({ cert: cert.certPem, key: cert.keyPem, ca: caPem, requestCert: true, rejectUnauthorized: false }, (req, res) => {
    const peer = (req.socket as TLSSocket).getPeerX509Certificate();
    const headers = { ...req.headers };
    delete headers[CERT_HEADER];
    if (peer) headers[CERT_HEADER] = peer.raw.toString('base64');
    const up = httpRequest({ host: t.hostname, port: t.port, path: req.url, method: req.method, headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.writeHead(502).end());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

describe('certificate-bound tokens from oidc-provider through the HTTPS gateway', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-mtls-'));
  const file = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  let caPem: string;
  let clientA: IssuedCertificate;
  let clientB: IssuedCertificate;
  let op: TestOidcProvider;
  let front: { url: string; server: HttpsServer };
  let up: TestUpstream;
  let gw: TestGateway;
  const seen: Record<string, unknown>[] = [];

  before(async () => {
    const ca = await createCa({ commonName: 'Test CA' });
    caPem = ca.certPem;
    const server = await issueCertificate(ca, { kind: 'server', dns: ['127.0.0.1', 'localhost'] });
    clientA = await issueCertificate(ca, { kind: 'client', commonName: 'client-a' });
    clientB = await issueCertificate(ca, { kind: 'client', commonName: 'client-b' });
    op = await startOidcProvider({
      clients: [
        {
          client_id: 'mtls-client',
          client_secret: 'mtls-client-secret-0123456789abcdef',
          grant_types: ['client_credentials'],
          redirect_uris: [],
          response_types: [],
          token_endpoint_auth_method: 'client_secret_basic',
          tls_client_certificate_bound_access_tokens: true,
        },
      ],
      features: {
        mTLS: {
          enabled: true,
          certificateBoundAccessTokens: true,
          getCertificate: (ctx: { get(name: string): string }) => {
            const b64 = ctx.get(CERT_HEADER);
            return b64 ? `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----` : undefined;
          },
        },
      },
    });
    front = await httpsFront(op.issuer, server, caPem);
    up = await startUpstream((req, res) => {
      if (req.url?.startsWith('/strict')) return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
      void verifyPassport(req.headers['rampart-passport'] as string, { jwksUrl: `${gw.adminUrl}/.well-known/jwks.json`, audience: 'orders' }).then(
        (p) => {
          seen.push({ subject: p.subject, methods: p.methods, cnf: p.cnf });
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true }));
        },
        (e: Error & { code?: string }) => res.writeHead(401).end(e.code),
      );
    });
    const identity = { providers: { jwt: { issuer: op.issuer, audiences: [op.audience] } } };
    gw = await startTestGateway({
      tls: { cert: file('server.crt', server.certPem), key: file('server.key', server.keyPem), client_auth: { mode: 'optional', ca: [file('ca.pem', caPem)] } },
      apis: [
        {
          name: 'strict',
          match: { path_prefix: '/strict' },
          upstream: { targets: [up.url] },
          controls: { identity, sender: { require: true, accept: ['mtls'] } },
        },
        { name: 'orders', upstream: { targets: [up.url] }, controls: { identity, passport: { key_file: join(dir, 'passport.json'), key_reload_ms: 0 } } },
      ],
    });
    assert.match(gw.url, /^https:/);
  });
  after(async () => {
    await gw.close();
    await up.close();
    front.server.closeAllConnections();
    await new Promise<void>((r) => front.server.close(() => r()));
    await op.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A token request over mutual TLS with `client`'s certificate. */
  async function boundToken(client: IssuedCertificate): Promise<string> {
    const r = await https(`${front.url}/token`, caPem, client, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from('mtls-client:mtls-client-secret-0123456789abcdef').toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: op.audience, scope: 'read' }).toString(),
    });
    assert.equal(r.status, 200, r.body);
    return (JSON.parse(r.body) as { access_token: string }).access_token;
  }

  /** base64url(SHA-256(DER)) of a certificate (RFC 8705 §3.1). */
  const x5t = (c: IssuedCertificate) => createHash('sha256').update(new X509Certificate(c.certPem).raw).digest('base64url');

  test('the provider binds the token to the certificate of the token request', async () => {
    const token = await boundToken(clientA);
    assert.deepEqual(decodeJwt(token).cnf, { 'x5t#S256': x5t(clientA) });
  });

  test('used over the right certificate → 200, and the passport carries the thumbprint and mtls', async () => {
    const token = await boundToken(clientA);
    seen.length = 0;
    const r = await https(`${gw.url}/orders`, caPem, clientA, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(seen, [{ subject: 'mtls-client', methods: ['jwt', 'mtls'], cnf: { 'x5t#S256': x5t(clientA) } }]);
  });

  test('used over another certificate → 401 certificate-binding-mismatch; without one → 401', async () => {
    const token = await boundToken(clientA);
    const other = await https(`${gw.url}/orders`, caPem, clientB, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(other.status, 401);
    assert.equal((JSON.parse(other.body) as { type: string }).type, 'https://rampart.dev/problems/certificate-binding-mismatch');
    assert.equal(
      other.headers['www-authenticate'],
      'Bearer realm="orders", error="invalid_token", error_description="The client certificate is not the one the access token is bound to."',
    );
    const none = await https(`${gw.url}/orders`, caPem, undefined, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(none.status, 401);
    assert.equal((JSON.parse(none.body) as { type: string }).type, 'https://rampart.dev/problems/certificate-binding-missing');
    const ev = gw.events.filter((e) => e.reason.startsWith('certificate-binding'));
    assert.deepEqual(
      ev.map((e) => [e.control, e.reason, e.status]),
      [
        ['sender', 'certificate-binding-mismatch', 401],
        ['sender', 'certificate-binding-missing', 401],
      ],
    );
  });

  test('DPoP over HTTP/2 (ALPN h2) → 200 with dpop in the passport; a replay → 401', async () => {
    const key = await dpopKey();
    const t = await fetch(op.tokenEndpoint, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${op.clientId}:${op.clientSecret}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
        dpop: await proof(key, { htm: 'POST', htu: op.tokenEndpoint, token: null }),
      },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: op.audience, scope: 'read' }),
    });
    const token = ((await t.json()) as { access_token: string }).access_token;
    const session = h2connect(gw.url, { ca: caPem });
    const h2get = (p: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const s = session.request({ ':path': '/orders', authorization: `DPoP ${token}`, dpop: p });
        let status = 0;
        let body = '';
        s.on('response', (h) => (status = Number(h[':status'])));
        s.setEncoding('utf8');
        s.on('data', (c: string) => (body += c));
        s.on('end', () => resolve({ status, body }));
        s.on('error', reject);
      });
    try {
      seen.length = 0;
      const p = await proof(key, { token, htu: `${gw.url}/orders` });
      const ok = await h2get(p);
      assert.equal(ok.status, 200, ok.body);
      assert.deepEqual(seen, [{ subject: op.clientId, methods: ['jwt', 'dpop'], cnf: { jkt: key.jkt } }]);
      const replay = await h2get(p);
      assert.equal(replay.status, 401);
      assert.equal((JSON.parse(replay.body) as { type: string }).type, 'https://rampart.dev/problems/dpop-proof-replayed');
    } finally {
      session.close();
    }
  });

  test('a route requiring sender-constrained tokens: bearer-only → 401, certificate-bound → 200', async () => {
    const plain = await op.token({ scope: 'read' });
    const r = await https(`${gw.url}/strict/a`, caPem, clientA, { headers: { authorization: `Bearer ${plain}` } });
    assert.equal(r.status, 401);
    assert.equal((JSON.parse(r.body) as { type: string }).type, 'https://rampart.dev/problems/sender-constraint-required');
    const bound = await boundToken(clientB);
    const ok = await https(`${gw.url}/strict/a`, caPem, clientB, { headers: { authorization: `Bearer ${bound}` } });
    assert.equal(ok.status, 200, ok.body);
  });
});
