/**
 * Tests of @rampart/passport with real keys, a real JWKS server and real node:http servers.
 * (The gateway-side tests, with passports minted by Rampart itself, are in
 * test/controls/passport/ of the repository.)
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { PassportError, passportMiddleware, type PassportRequest, verifyPassport, withPassport } from '../src/index.ts';

interface Key {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

let kids = 0;
async function key(alg = 'ES256'): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const kid = `k${++kids}`;
  return { kid, alg, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

async function mint(k: Key, claims: Record<string, unknown> = {}, o: { typ?: string; iat?: number; exp?: number } = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const iat = o.iat ?? now;
  return new SignJWT({
    iss: 'rampart',
    aud: 'orders',
    rid: 'req-1',
    sub: 'alice',
    client_id: 'app',
    scope: 'read write',
    amr: ['jwt', 'dpop'],
    cnf: { jkt: 'abc' },
    ...claims,
  })
    .setProtectedHeader({ alg: k.alg, kid: k.kid, typ: o.typ ?? 'rampart-passport+jwt' })
    .setIssuedAt(iat)
    .setExpirationTime(o.exp ?? iat + 30)
    .sign(k.privateKey);
}

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ url: string; server: Server; close(): Promise<void> }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    server,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof PassportError, String(e));
    return e.code;
  }
  return 'ok';
}

describe('verifyPassport', async () => {
  const es = await key('ES256');
  const ed = await key('EdDSA');
  const jwks = { keys: [es.jwk, ed.jwk] };

  test('returns the verified context (ES256 and EdDSA)', async () => {
    for (const k of [es, ed]) {
      const p = await verifyPassport(await mint(k), { jwks, audience: 'orders' });
      assert.equal(p.subject, 'alice');
      assert.equal(p.clientId, 'app');
      assert.deepEqual(p.scopes, ['read', 'write']);
      assert.deepEqual(p.methods, ['jwt', 'dpop']);
      assert.equal(p.requestId, 'req-1');
      assert.deepEqual(p.cnf, { jkt: 'abc' });
      assert.equal(p.issuer, 'rampart');
      assert.equal(p.expiresAt - p.issuedAt, 30);
    }
  });

  test('anonymous passports have no subject and empty lists', async () => {
    const t = await mint(es, { sub: undefined, client_id: undefined, scope: undefined, amr: undefined, cnf: undefined });
    const p = await verifyPassport(t, { jwks, audience: 'orders' });
    assert.equal(p.subject, undefined);
    assert.deepEqual(p.scopes, []);
    assert.deepEqual(p.methods, []);
  });

  test('refusals carry stable codes', async () => {
    const other = await key();
    const now = Math.floor(Date.now() / 1000);
    const o = { jwks, audience: 'orders' };
    assert.equal(await codeOf(verifyPassport(undefined, o)), 'passport-missing');
    assert.equal(await codeOf(verifyPassport('a.b', o)), 'passport-malformed');
    assert.equal(await codeOf(verifyPassport(await mint(es), { jwks, audience: 'billing' })), 'passport-claims-invalid');
    assert.equal(await codeOf(verifyPassport(await mint(es, { iss: 'someone-else' }), o)), 'passport-claims-invalid');
    assert.equal(await codeOf(verifyPassport(await mint(es, {}, { iat: now - 120, exp: now - 60 }), o)), 'passport-expired');
    assert.equal(await codeOf(verifyPassport(await mint(es, {}, { iat: now - 1000, exp: now + 60 }), o)), 'passport-expired');
    assert.equal(await codeOf(verifyPassport(await mint(es, {}, { typ: 'JWT' }), o)), 'passport-claims-invalid');
    assert.equal(await codeOf(verifyPassport(await mint(es, { rid: undefined }), o)), 'passport-claims-invalid');
    assert.equal(await codeOf(verifyPassport(await mint({ ...other, kid: 'unknown' }), o)), 'passport-key-unknown');
    assert.equal(await codeOf(verifyPassport(await mint({ ...other, kid: es.kid }), o)), 'passport-signature-invalid');
    const t = await mint(es);
    const [h, p] = t.split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p as string, 'base64url').toString()), sub: 'admin' })).toString('base64url')}.${t.split('.')[2]}`;
    assert.equal(await codeOf(verifyPassport(forged, o)), 'passport-signature-invalid');
    await assert.rejects(verifyPassport(t, { audience: 'orders' }), TypeError);
  });

  test('an HS256 token signed with a published public key is refused (no algorithm confusion)', async () => {
    const secret = new TextEncoder().encode(JSON.stringify(es.jwk));
    const t = await new SignJWT({ iss: 'rampart', aud: 'orders', rid: 'r' })
      .setProtectedHeader({ alg: 'HS256', kid: es.kid, typ: 'rampart-passport+jwt' })
      .setIssuedAt()
      .setExpirationTime('30s')
      .sign(secret);
    assert.equal(await codeOf(verifyPassport(t, { jwks, audience: 'orders' })), 'passport-malformed');
  });
});

describe('jwksUrl and middleware over real HTTP', async () => {
  const k1 = await key();
  const k2 = await key();
  let published: JWK[] = [k1.jwk];
  let jwksHits = 0;
  let jwksServer: Awaited<ReturnType<typeof listen>>;
  let jwksUrl = '';
  before(async () => {
    jwksServer = await listen((_req, res) => {
      jwksHits++;
      res.writeHead(200, { 'content-type': 'application/jwk-set+json' }).end(JSON.stringify({ keys: published }));
    });
    jwksUrl = `${jwksServer.url}/.well-known/jwks.json`;
  });
  after(() => jwksServer.close());

  test('keys are fetched once and refetched for a new kid (rotation)', async () => {
    const o = { jwksUrl, audience: 'orders', jwksCooldownMs: 0 };
    await verifyPassport(await mint(k1), o);
    await verifyPassport(await mint(k1), o);
    assert.equal(jwksHits, 1);
    published = [k2.jwk, k1.jwk];
    const p = await verifyPassport(await mint(k2), o);
    assert.equal(p.subject, 'alice');
    assert.equal(jwksHits, 2);
  });

  test('withPassport: the handler sees req.passport; refused requests get 401 problem details', async () => {
    const app = await listen(
      withPassport({ jwksUrl, audience: 'orders' }, (req: PassportRequest, res) => {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ sub: req.passport.subject, rid: req.passport.requestId }));
      }),
    );
    try {
      const ok = await fetch(`${app.url}/orders`, { headers: { 'rampart-passport': await mint(k1) } });
      assert.equal(ok.status, 200);
      assert.deepEqual(await ok.json(), { sub: 'alice', rid: 'req-1' });
      const none = await fetch(`${app.url}/orders`);
      assert.equal(none.status, 401);
      assert.equal(none.headers.get('content-type'), 'application/problem+json');
      assert.deepEqual(await none.json(), {
        type: 'https://rampart.dev/problems/passport-missing',
        title: 'Unauthorized',
        status: 401,
        detail: 'No passport was sent.',
      });
      const wrongAud = await fetch(`${app.url}/orders`, { headers: { 'rampart-passport': await mint(k1, { aud: 'billing' }) } });
      assert.equal(wrongAud.status, 401);
      assert.equal(((await wrongAud.json()) as { type: string }).type, 'https://rampart.dev/problems/passport-claims-invalid');
    } finally {
      await app.close();
    }
  });

  test('passportMiddleware (Express style) with a custom header and error handler', async () => {
    const seen: string[] = [];
    const mw = passportMiddleware({
      jwks: { keys: [k1.jwk] },
      audience: ['orders', 'billing'],
      header: 'X-Passport',
      onError: (err, _req, res) => {
        seen.push(err.code);
        res.writeHead(403).end();
      },
    });
    const app = await listen((req, res) => mw(req, res, () => res.writeHead(200).end((req as PassportRequest).passport.subject)));
    try {
      const ok = await fetch(app.url, { headers: { 'x-passport': await mint(k1, { aud: 'billing' }) } });
      assert.equal(ok.status, 200);
      assert.equal(await ok.text(), 'alice');
      const bad = await fetch(app.url, { headers: { 'x-passport': await mint(k2) } });
      assert.equal(bad.status, 403);
      await bad.arrayBuffer();
      assert.deepEqual(seen, ['passport-key-unknown']);
    } finally {
      await app.close();
    }
  });

  test('an unreachable jwksUrl answers 503 passport-jwks-unavailable', async () => {
    const app = await listen(withPassport({ jwksUrl: 'http://127.0.0.1:9/jwks.json', audience: 'orders' }, (_req, res) => res.writeHead(200).end()));
    try {
      const r = await fetch(app.url, { headers: { 'rampart-passport': await mint(k1) } });
      assert.equal(r.status, 503);
      assert.equal(((await r.json()) as { type: string }).type, 'https://rampart.dev/problems/passport-jwks-unavailable');
    } finally {
      await app.close();
    }
  });
});
