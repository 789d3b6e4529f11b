/**
 * Stage-level tests of the sender control: DPoP proofs (RFC 9449) and certificate-bound tokens
 * (RFC 8705 §3) against contexts with real keys, real certificates and real stores.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { generateKeyPairSync, sign } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import { createSender, senderSchema, type SenderConfigInput } from '../../../src/controls/sender/index.ts';
import { accessTokenHash, jwkThumbprint, normalizeHtu } from '../../../src/controls/sender/dpop.ts';
import { DpopNonces } from '../../../src/controls/sender/nonce.ts';
import type { Rejection } from '../../../src/pipeline/verdict.ts';
import { MemoryStore } from '../../../src/state/memory.ts';
import { RedisStore } from '../../../src/state/redis.ts';
import type { Store } from '../../../src/state/store.ts';
import { clientCertificate, dpopKey, identityWith, makeCtx, makeEnv, proof, tlsWith, type CtxOptions } from './util.ts';

const TOKEN = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl';
const ALGS = 'ES256 ES384 EdDSA Ed25519 PS256 RS256';

function engine(cfg: SenderConfigInput = {}, store: Store = new MemoryStore()) {
  return createSender(senderSchema.parse(cfg), makeEnv(store));
}

async function run(e: ReturnType<typeof engine>, o: CtxOptions) {
  const ctx = makeCtx(o);
  const rejection = await e.run(ctx);
  return { ctx, rejection };
}

function challengeOf(r: Rejection | undefined): string | string[] | undefined {
  return r?.problem.headers['www-authenticate'];
}

describe('DPoP (RFC 9449)', async () => {
  const key = await dpopKey();
  const bound = () => identityWith({ jkt: key.jkt });
  const dpopHeaders = (p: string) => ({ authorization: `DPoP ${TOKEN}`, dpop: p });

  test('a valid proof passes, records the method and strips the proof before the upstream', async () => {
    const e = engine();
    const { ctx, rejection } = await run(e, { headers: dpopHeaders(await proof(key, { token: TOKEN })), identity: bound() });
    assert.equal(rejection, undefined);
    assert.deepEqual(ctx.identity?.methods, ['jwt', 'dpop']);
    assert.equal(ctx.upstreamHeaders.get('dpop'), null);
  });

  test('a replayed proof is refused with invalid_dpop_proof and algs', async () => {
    const e = engine();
    const p = await proof(key, { token: TOKEN });
    assert.equal((await run(e, { headers: dpopHeaders(p), identity: bound() })).rejection, undefined);
    const { rejection } = await run(e, { headers: dpopHeaders(p), identity: bound() });
    assert.equal(rejection?.problem.status, 401);
    assert.equal(rejection?.problem.code, 'dpop-proof-replayed');
    assert.equal(
      challengeOf(rejection),
      `DPoP realm="orders", error="invalid_dpop_proof", error_description="This DPoP proof was already used.", algs="${ALGS}"`,
    );
  });

  test('a proof replayed against another gateway process sharing Redis is refused', async () => {
    const prefix = `test-sender-${process.pid}-${Date.now()}:`;
    const a = new RedisStore('redis://127.0.0.1:6379', { keyPrefix: prefix });
    const b = new RedisStore('redis://127.0.0.1:6379', { keyPrefix: prefix });
    try {
      const p = await proof(key, { token: TOKEN });
      assert.equal((await run(engine({}, a), { headers: dpopHeaders(p), identity: bound() })).rejection, undefined);
      const { rejection } = await run(engine({}, b), { headers: dpopHeaders(p), identity: bound() });
      assert.equal(rejection?.problem.code, 'dpop-proof-replayed');
    } finally {
      await a.close();
      await b.close();
    }
  });

  const refusals: [string, () => Promise<CtxOptions>, string][] = [
    ['wrong htm', async () => ({ method: 'POST', headers: dpopHeaders(await proof(key, { token: TOKEN, htm: 'GET' })) }), 'dpop-htm-mismatch'],
    ['wrong htu path', async () => ({ headers: dpopHeaders(await proof(key, { token: TOKEN, htu: 'https://api.example.com/admin' })) }), 'dpop-htu-mismatch'],
    ['wrong htu host', async () => ({ headers: dpopHeaders(await proof(key, { token: TOKEN, htu: 'https://evil.example/orders' })) }), 'dpop-htu-mismatch'],
    ['wrong htu scheme', async () => ({ headers: dpopHeaders(await proof(key, { token: TOKEN, htu: 'http://api.example.com/orders' })) }), 'dpop-htu-mismatch'],
    [
      'htu with user info',
      async () => ({ headers: dpopHeaders(await proof(key, { token: TOKEN, htu: 'https://x@api.example.com/orders' })) }),
      'dpop-htu-mismatch',
    ],
    ['ath of another token', async () => ({ headers: dpopHeaders(await proof(key, { token: 'another-token' })) }), 'dpop-ath-mismatch'],
    ['no ath', async () => ({ headers: dpopHeaders(await proof(key, { token: null })) }), 'dpop-ath-mismatch'],
    ['iat too old', async () => ({ headers: dpopHeaders(await proof(key, { token: TOKEN, iat: Math.floor(Date.now() / 1000) - 120 })) }), 'dpop-iat-invalid'],
    [
      'iat in the future',
      async () => ({ headers: dpopHeaders(await proof(key, { token: TOKEN, iat: Math.floor(Date.now() / 1000) + 60 })) }),
      'dpop-iat-invalid',
    ],
    ['typ jwt', async () => ({ headers: dpopHeaders(await proof(key, { token: TOKEN, typ: 'JWT' })) }), 'dpop-proof-invalid'],
    ['no proof', async () => ({ headers: { authorization: `DPoP ${TOKEN}` } }), 'dpop-proof-missing'],
    [
      'two proofs (joined by node)',
      async () => ({ headers: dpopHeaders(`${await proof(key, { token: TOKEN })}, ${await proof(key, { token: TOKEN })}`) }),
      'dpop-proof-invalid',
    ],
    ['not a JWS', async () => ({ headers: dpopHeaders('not-a-jws') }), 'dpop-proof-invalid'],
  ];
  for (const [name, make, code] of refusals) {
    test(`refuses ${name}: 401 ${code}`, async () => {
      const { rejection } = await run(engine(), { ...(await make()), identity: bound() });
      assert.equal(rejection?.problem.status, 401);
      assert.equal(rejection?.problem.code, code);
      assert.match(String(challengeOf(rejection)), /^DPoP realm="orders", error="invalid_dpop_proof", /);
    });
  }

  test('refuses a private JWK in the header', async () => {
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const priv = await exportJWK(privateKey);
    const k = { ...key, privateKey, publicJwk: priv };
    const { rejection } = await run(engine(), { headers: dpopHeaders(await proof(k, { token: TOKEN })), identity: bound() });
    assert.equal(rejection?.problem.code, 'dpop-proof-invalid');
    assert.deepEqual(rejection?.details, { reason: 'jwk-private' });
  });

  test('refuses a proof signed by a key other than its jwk', async () => {
    const other = await dpopKey();
    const { rejection } = await run(engine(), { headers: dpopHeaders(await proof(key, { token: TOKEN, signWith: other.privateKey })), identity: bound() });
    assert.equal(rejection?.problem.code, 'dpop-proof-invalid');
    assert.deepEqual(rejection?.details, { reason: 'signature' });
  });

  test('refuses an algorithm that is not configured (symmetric never is)', async () => {
    const ed = await dpopKey('EdDSA');
    const e = engine({ dpop: { algorithms: ['ES256'] } });
    const { rejection } = await run(e, { headers: dpopHeaders(await proof(ed, { token: TOKEN })), identity: identityWith({ jkt: ed.jkt }) });
    assert.equal(rejection?.problem.code, 'dpop-proof-invalid');
    assert.deepEqual(rejection?.details, { reason: 'alg', alg: 'EdDSA' });
    assert.throws(() => senderSchema.parse({ dpop: { algorithms: ['HS256'] } }));
  });

  test('every accepted key family verifies (ES256, ES384, ES512, EdDSA, Ed25519, PS256, RS256)', async () => {
    const e = engine({ dpop: { algorithms: ['ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519', 'PS256', 'RS256'] } });
    for (const alg of ['ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519', 'PS256', 'RS256']) {
      const k = await dpopKey(alg);
      const { rejection } = await run(e, { headers: dpopHeaders(await proof(k, { token: TOKEN })), identity: identityWith({ jkt: k.jkt }) });
      assert.equal(rejection, undefined, alg);
    }
  });

  test('the RFC 7638 thumbprint matches jose for EC, OKP and RSA keys', async () => {
    for (const alg of ['ES256', 'ES512', 'EdDSA', 'RS256']) {
      const k = await dpopKey(alg);
      assert.equal(jwkThumbprint(k.publicJwk as Record<string, unknown>), await calculateJwkThumbprint(k.publicJwk, 'sha256'), alg);
    }
    // RFC 7638 §3.1 example.
    const n =
      '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw';
    assert.equal(jwkThumbprint({ kty: 'RSA', n, e: 'AQAB', alg: 'RS256', kid: '2011-04-29' }), 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs');
    assert.equal(jwkThumbprint({ kty: 'oct', k: 'x' }), undefined);
  });

  test('refuses a key of the wrong curve for its alg, and RSA keys under 2048 bits', async () => {
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const p384 = await dpopKey('ES384');
    const mislabelled = `${b64({ alg: 'ES256', typ: 'dpop+jwt', jwk: p384.publicJwk })}.${b64({ htm: 'GET' })}.AAAA`;
    const { rejection } = await run(engine(), { headers: dpopHeaders(mislabelled), identity: identityWith({ jkt: p384.jkt }) });
    assert.equal(rejection?.problem.code, 'dpop-proof-invalid');
    assert.deepEqual(rejection?.details, { reason: 'jwk-kty' });
    // jose refuses to sign with a 1024-bit key: build the proof by hand.
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const jwk = small.publicKey.export({ format: 'jwk' });
    const input = `${b64({ alg: 'RS256', typ: 'dpop+jwt', jwk })}.${b64({ htm: 'GET', htu: 'https://api.example.com/orders', iat: Math.floor(Date.now() / 1000), jti: 'small', ath: accessTokenHash(TOKEN) })}`;
    const weak = `${input}.${sign('sha256', Buffer.from(input), small.privateKey).toString('base64url')}`;
    const k = { jkt: await calculateJwkThumbprint(jwk, 'sha256') };
    const r2 = await run(engine(), { headers: dpopHeaders(weak), identity: identityWith({ jkt: k.jkt }) });
    assert.equal(r2.rejection?.problem.code, 'dpop-proof-invalid');
    assert.deepEqual(r2.rejection?.details, { reason: 'jwk-size' });
  });

  test('a valid proof by another key than cnf.jkt: invalid_token dpop-key-mismatch', async () => {
    const other = await dpopKey();
    const { rejection } = await run(engine(), { headers: dpopHeaders(await proof(other, { token: TOKEN })), identity: bound() });
    assert.equal(rejection?.problem.code, 'dpop-key-mismatch');
    assert.match(String(challengeOf(rejection)), /^DPoP realm="orders", error="invalid_token", /);
  });

  test('a DPoP-bound token sent as Bearer (downgrade) is refused', async () => {
    const { rejection } = await run(engine(), { headers: { authorization: `Bearer ${TOKEN}`, dpop: await proof(key, { token: TOKEN }) }, identity: bound() });
    assert.equal(rejection?.problem.code, 'dpop-proof-required');
    assert.match(String(challengeOf(rejection)), /^DPoP realm="orders", error="invalid_token", /);
  });

  test('the DPoP scheme with a token that has no cnf.jkt is refused', async () => {
    const { rejection } = await run(engine(), { headers: dpopHeaders(await proof(key, { token: TOKEN })), identity: identityWith() });
    assert.equal(rejection?.problem.code, 'token-not-dpop-bound');
  });

  test('htu is compared after normalisation; the query is ignored', async () => {
    const e = engine();
    const cases: [string, CtxOptions][] = [
      ['HTTPS://API.Example.com:443/orders', {}],
      ['https://api.example.com/orders?x=1#frag', { target: '/orders?page=2' }],
      ['https://api.example.com/a/%7euser/%2f', { target: '/a/~user/%2F' }],
      ['http://127.0.0.1:8080/orders', { scheme: 'http', host: '127.0.0.1:8080' }],
    ];
    for (const [htu, o] of cases) {
      const { rejection } = await run(e, { ...o, headers: dpopHeaders(await proof(key, { token: TOKEN, htu })), identity: bound() });
      assert.equal(rejection, undefined, htu);
    }
    assert.equal(normalizeHtu('https://api.example.com'), 'https://api.example.com/');
    assert.equal(normalizeHtu('https://api.example.com/a/../b/%41%3a'), 'https://api.example.com/b/A%3A');
    assert.equal(normalizeHtu('ftp://x/'), undefined);
    assert.equal(accessTokenHash('Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU'), 'fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo');
  });

  test('public_origin replaces the origin the gateway sees', async () => {
    const e = engine({ dpop: { public_origin: 'https://public.example.com' } });
    const ok = await run(e, { headers: dpopHeaders(await proof(key, { token: TOKEN, htu: 'https://public.example.com/orders' })), identity: bound() });
    assert.equal(ok.rejection, undefined);
    const ko = await run(e, { headers: dpopHeaders(await proof(key, { token: TOKEN })), identity: bound() });
    assert.equal(ko.rejection?.problem.code, 'dpop-htu-mismatch');
  });

  test('server nonces: use_dpop_nonce with DPoP-Nonce, then the nonce is accepted', async () => {
    const e = engine({ dpop: { nonce: { required: true } } });
    const first = await run(e, { headers: dpopHeaders(await proof(key, { token: TOKEN })), identity: bound() });
    assert.equal(first.rejection?.problem.status, 401);
    assert.equal(first.rejection?.problem.code, 'dpop-nonce-required');
    const nonce = first.rejection?.problem.headers['dpop-nonce'] as string;
    assert.match(nonce, /^[A-Za-z0-9_-]{22}$/);
    assert.match(String(challengeOf(first.rejection)), /^DPoP realm="orders", error="use_dpop_nonce", /);
    const wrong = await run(e, { headers: dpopHeaders(await proof(key, { token: TOKEN, nonce: 'stale' })), identity: bound() });
    assert.equal(wrong.rejection?.problem.code, 'dpop-nonce-required');
    const second = await run(e, { headers: dpopHeaders(await proof(key, { token: TOKEN, nonce })), identity: bound() });
    assert.equal(second.rejection, undefined);
    assert.equal(second.ctx.responseHeaders.get('dpop-nonce'), undefined);
  });

  test('nonce windows: current, previous (refresh), older refused; processes sharing a store agree', async () => {
    let now = 1_000_000;
    const store = new MemoryStore();
    const a = new DpopNonces({ store, scope: 'orders', windowMs: 1000, now: () => now });
    const b = new DpopNonces({ store, scope: 'orders', windowMs: 1000, now: () => now });
    const n1 = await a.current();
    assert.equal(await b.current(), n1);
    assert.equal(await b.check(n1), 'current');
    now += 1000;
    const n2 = await a.current();
    assert.notEqual(n2, n1);
    assert.equal(await b.check(n1), 'previous');
    now += 1000;
    assert.equal(await b.check(n1), 'invalid');
    assert.equal(await b.check(n2), 'previous');
    assert.equal(await b.check(123), 'invalid');
  });

  test('replay cache failure: closed answers 503, open lets the proof through', async () => {
    const failing = new MemoryStore();
    failing.setIfAbsent = () => Promise.reject(new Error('store down'));
    const closed = await run(engine({}, failing), { headers: dpopHeaders(await proof(key, { token: TOKEN })), identity: bound() });
    assert.equal(closed.rejection?.problem.status, 503);
    assert.equal(closed.rejection?.problem.code, 'dpop-replay-check-unavailable');
    const open = await run(engine({ dpop: { on_store_error: 'open' } }, failing), {
      headers: dpopHeaders(await proof(key, { token: TOKEN })),
      identity: bound(),
    });
    assert.equal(open.rejection, undefined);
  });

  test('dpop.enabled false refuses the DPoP scheme; forward_proof keeps the header', async () => {
    const off = await run(engine({ dpop: { enabled: false } }), { headers: dpopHeaders(await proof(key, { token: TOKEN })), identity: bound() });
    assert.equal(off.rejection?.problem.code, 'dpop-not-accepted');
    const fwd = await run(engine({ dpop: { forward_proof: true } }), { headers: dpopHeaders(await proof(key, { token: TOKEN })), identity: bound() });
    assert.equal(fwd.rejection, undefined);
    assert.equal(fwd.ctx.upstreamHeaders.has('dpop'), false);
  });
});

describe('certificate-bound tokens (RFC 8705 §3)', async () => {
  const right = await clientCertificate('client-a');
  const wrong = await clientCertificate('client-b');
  const bound = () => identityWith({ 'x5t#S256': right.cert.x5tS256 });
  const headers = { authorization: `Bearer ${TOKEN}` };

  test('over the certificate it is bound to: passes and records mtls', async () => {
    const { ctx, rejection } = await run(engine(), { headers, identity: bound(), tls: tlsWith(right.cert) });
    assert.equal(rejection, undefined);
    assert.deepEqual(ctx.identity?.methods, ['jwt', 'mtls']);
  });

  test('over another certificate: 401 invalid_token', async () => {
    const { rejection } = await run(engine(), { headers, identity: bound(), tls: tlsWith(wrong.cert) });
    assert.equal(rejection?.problem.status, 401);
    assert.equal(rejection?.problem.code, 'certificate-binding-mismatch');
    assert.equal(
      challengeOf(rejection),
      'Bearer realm="orders", error="invalid_token", error_description="The client certificate is not the one the access token is bound to."',
    );
  });

  test('without a client certificate or without TLS: 401 certificate-binding-missing', async () => {
    assert.equal((await run(engine(), { headers, identity: bound(), tls: tlsWith(undefined) })).rejection?.problem.code, 'certificate-binding-missing');
    assert.equal((await run(engine(), { headers, identity: bound(), scheme: 'http' })).rejection?.problem.code, 'certificate-binding-missing');
  });
});

describe('require: sender-constrained tokens only', async () => {
  const key = await dpopKey();
  const cert = await clientCertificate('client-a');

  test('a bearer-only token is refused with both challenges', async () => {
    const { rejection } = await run(engine({ require: true }), { headers: { authorization: `Bearer ${TOKEN}` }, identity: identityWith() });
    assert.equal(rejection?.problem.code, 'sender-constraint-required');
    const c = challengeOf(rejection) as string[];
    assert.equal(c.length, 2);
    assert.match(c[0] as string, /^DPoP realm="orders", error="invalid_token", error_description="[^"]+", algs="ES256 /);
    assert.match(c[1] as string, /^Bearer realm="orders", error="invalid_token"/);
  });

  test('a verified DPoP token or certificate-bound token passes', async () => {
    const e = engine({ require: true });
    const d = await run(e, { headers: { authorization: `DPoP ${TOKEN}`, dpop: await proof(key, { token: TOKEN }) }, identity: identityWith({ jkt: key.jkt }) });
    assert.equal(d.rejection, undefined);
    const m = await run(e, {
      headers: { authorization: `Bearer ${TOKEN}` },
      identity: identityWith({ 'x5t#S256': cert.cert.x5tS256 }),
      tls: tlsWith(cert.cert),
    });
    assert.equal(m.rejection, undefined);
  });

  test('accept: [mtls] refuses a DPoP token; no identity at all is refused', async () => {
    const e = engine({ require: true, accept: ['mtls'] });
    const d = await run(e, { headers: { authorization: `DPoP ${TOKEN}`, dpop: await proof(key, { token: TOKEN }) }, identity: identityWith({ jkt: key.jkt }) });
    assert.equal(d.rejection?.problem.code, 'sender-constraint-required');
    assert.match(String(challengeOf(d.rejection)), /^Bearer /);
    const none = await run(engine({ require: true }), {});
    assert.equal(none.rejection?.problem.code, 'sender-constraint-required');
  });

  test('without require, a plain bearer token passes untouched', async () => {
    const { ctx, rejection } = await run(engine(), { headers: { authorization: `Bearer ${TOKEN}` }, identity: identityWith() });
    assert.equal(rejection, undefined);
    assert.deepEqual(ctx.identity?.methods, ['jwt']);
  });
});
