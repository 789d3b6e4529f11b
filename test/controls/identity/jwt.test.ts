/**
 * JWT access tokens against a real oidc-provider: the happy path and every classic attack
 * (RFC 8725), each failing with its own stable reason code and an RFC 6750 challenge.
 */
import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, KeyObject, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CompactEncrypt, exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import { startOidcProvider, type TestOidcProvider } from '../../helpers/oidc.ts';
import { bearer, challengeOf, engine, makeEnv, runWith, startJwksServer } from './util.ts';
import type { IdentityEngine } from '../../../src/controls/identity/index.ts';
import type { Rejection } from '../../../src/pipeline/verdict.ts';

const wycheproof = JSON.parse(readFileSync(new URL('../../fixtures/jose/wycheproof-subset.json', import.meta.url), 'utf8'));

const b64 = (o: unknown): string => Buffer.from(typeof o === 'string' ? o : JSON.stringify(o)).toString('base64url');
const now = (): number => Math.floor(Date.now() / 1000);

/** Asserts a 401 invalid_token rejection with `code`, and that the token is nowhere in the problem or event details. */
function assertInvalid(r: Rejection | undefined, code: string, token: string): void {
  assert.ok(r, `expected a rejection with ${code}`);
  assert.equal(r.problem.code, code);
  assert.equal(r.problem.status, 401);
  assert.equal(r.problem.type, `https://rampart.dev/problems/${code}`);
  const h = challengeOf(r) as string;
  assert.ok(h.startsWith('Bearer realm="orders", error="invalid_token", error_description="'), h);
  const all = JSON.stringify({ d: r.details, p: r.problem.toBody('x'), h: r.problem.headers });
  assert.ok(!all.includes(token), 'the token must not appear in the problem or event details');
  const sig = token.split('.')[2];
  if (sig && sig.length > 10) assert.ok(!all.includes(sig));
}

describe('identity: JWT access tokens (real oidc-provider)', () => {
  let op: TestOidcProvider;
  let id: IdentityEngine;
  let key: { privateKey: CryptoKey; kid: string };

  const claims = (over: JWTPayload = {}): JWTPayload => ({
    iss: op.issuer,
    aud: op.audience,
    sub: 'client-a',
    client_id: 'client-a',
    scope: 'read',
    jti: `jti-${Math.random()}`,
    iat: now(),
    exp: now() + 300,
    ...over,
  });
  /** A token signed with the provider's real signing key. */
  const forge = (payload: JWTPayload, header: Record<string, unknown> = {}): Promise<string> =>
    new SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid: key.kid, typ: 'at+jwt', ...header }).sign(key.privateKey);

  /** Signs arbitrary header/payload with the provider's real key, bypassing jose's own header checks. */
  const signRaw = (header: Record<string, unknown>, payload: JWTPayload): string => {
    const head = `${b64(header)}.${b64(payload)}`;
    return `${head}.${sign('sha256', Buffer.from(head), KeyObject.from(key.privateKey as unknown as Parameters<typeof KeyObject.from>[0])).toString('base64url')}`;
  };

  before(async () => {
    op = await startOidcProvider();
    const k = op.signingKeys[0];
    assert.ok(k);
    key = { privateKey: k.privateKey, kid: k.kid };
    id = await engine({ providers: { jwt: { issuer: op.issuer, audiences: [op.audience], jwks: { cooldown_ms: 0 } } } });
  });
  after(async () => {
    id.close();
    await op.close();
  });

  it('accepts a client-credentials access token issued by the provider and sets ctx.identity', async () => {
    const token = await op.token({ scope: 'read write' });
    const { ctx, rejection } = await runWith(id, bearer(token));
    assert.equal(rejection, undefined);
    const i = ctx.identity;
    assert.ok(i);
    assert.equal(i.subject, op.clientId);
    assert.equal(i.clientId, op.clientId);
    assert.equal(i.issuer, op.issuer);
    assert.deepEqual(i.scopes, ['read', 'write']);
    assert.deepEqual(i.methods, ['jwt']);
    assert.equal(typeof i.tokenId, 'string');
    assert.equal(i.claims.aud, op.audience);
    assert.equal(ctx.upstreamHeaders.get('x-rampart-subject'), op.clientId);
    assert.equal(ctx.upstreamHeaders.get('x-rampart-client-id'), op.clientId);
    assert.equal(ctx.upstreamHeaders.get('x-rampart-scopes'), 'read write');
    assert.equal(ctx.upstreamHeaders.get('x-rampart-auth-method'), 'jwt');
    assert.equal(ctx.upstreamHeaders.get('authorization'), null);
  });

  it('answers a request without credentials with 401 and a bare Bearer challenge (RFC 6750 §3.1)', async () => {
    const { rejection } = await runWith(id, {});
    assert.equal(rejection?.problem.status, 401);
    assert.equal(rejection?.problem.code, 'credentials-missing');
    assert.equal(challengeOf(rejection), 'Bearer realm="orders"');
    const basic = await runWith(id, { authorization: 'Basic dXNlcjpwYXNz' });
    assert.equal(basic.rejection?.problem.code, 'credentials-missing');
  });

  it('rejects alg "none"', async () => {
    const token = `${b64({ alg: 'none', typ: 'at+jwt' })}.${b64(claims())}.`;
    const { rejection } = await runWith(id, bearer(token));
    assertInvalid(rejection, 'token-algorithm-not-allowed', token);
    assert.equal(rejection?.severity, 'high');
    // Wycheproof hs256 tcId 16: rejectsNoneAlgorithmAndMissingSignature.
    const w = wycheproof.hs256_none[0].jws as string;
    assertInvalid((await runWith(id, bearer(w))).rejection, 'token-algorithm-not-allowed', w);
  });

  it('rejects HS256 signed with the RSA public key as the HMAC secret (key confusion)', async () => {
    const k = op.signingKeys[0];
    assert.ok(k);
    const pem = await exportSPKI(k.publicKey);
    const head = `${b64({ alg: 'HS256', kid: key.kid, typ: 'at+jwt' })}.${b64(claims())}`;
    for (const secret of [pem, Buffer.from(JSON.stringify(k.publicJwk))]) {
      const token = `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
      assertInvalid((await runWith(id, bearer(token))).rejection, 'token-algorithm-not-allowed', token);
    }
    // Wycheproof es256 tcId 31: HMAC key derived from the EC verification key bytes.
    const w = wycheproof.es256.tests.find((t: { tcId: number }) => t.tcId === 31).jws as string;
    assertInvalid((await runWith(id, bearer(w))).rejection, 'token-algorithm-not-allowed', w);
  });

  it('rejects an unknown kid after exactly one JWKS refetch', async () => {
    const attacker = await generateKeyPair('RS256');
    const token = await new SignJWT(claims()).setProtectedHeader({ alg: 'RS256', kid: 'attacker-key', typ: 'at+jwt' }).sign(attacker.privateKey);
    const before = op.hits.get('/jwks') ?? 0;
    assertInvalid((await runWith(id, bearer(token))).rejection, 'token-key-unknown', token);
    assert.equal((op.hits.get('/jwks') ?? 0) - before, 1);
  });

  it('never follows jku / x5u and refuses an embedded jwk', async () => {
    const attacker = await generateKeyPair('RS256', { extractable: true });
    const trap = await startJwksServer([{ ...(await exportJWK(attacker.publicKey)), kid: 'evil' }]);
    try {
      for (const header of [{ jku: trap.jwksUri }, { x5u: `${trap.url}/cert.pem` }, { jwk: { ...(await exportJWK(attacker.publicKey)) } }]) {
        const token = await new SignJWT(claims()).setProtectedHeader({ alg: 'RS256', kid: 'evil', typ: 'at+jwt', ...header }).sign(attacker.privateKey);
        const { rejection } = await runWith(id, bearer(token));
        assertInvalid(rejection, 'token-header-forbidden', token);
        assert.deepEqual(rejection?.details, { header: Object.keys(header)[0] });
      }
      // Even with the real kid and the real signing key, a token naming a key URL is refused.
      const real = await forge(claims(), { jku: trap.jwksUri });
      assertInvalid((await runWith(id, bearer(real))).rejection, 'token-header-forbidden', real);
      assert.equal(trap.hits, 0);
      assert.deepEqual(trap.otherPaths, []);
      // Wycheproof es256 tcId 32: rejectsAttackerProvidedEmbeddedJwk.
      const w = wycheproof.es256.tests.find((t: { tcId: number }) => t.tcId === 32).jws as string;
      const es = await engine({ providers: { jwt: { issuer: 'https://issuer.wycheproof.test', jwks_uri: trap.jwksUri, audiences: ['x'] } } });
      assertInvalid((await runWith(es, bearer(w))).rejection, 'token-header-forbidden', w);
      es.close();
    } finally {
      await trap.close();
    }
  });

  it('rejects expired and not-yet-valid tokens (30 s clock skew)', async () => {
    const expired = await forge(claims({ iat: now() - 600, exp: now() - 31 }));
    assertInvalid((await runWith(id, bearer(expired))).rejection, 'token-expired', expired);
    const early = await forge(claims({ nbf: now() + 120 }));
    assertInvalid((await runWith(id, bearer(early))).rejection, 'token-not-yet-valid', early);
    const withinSkew = await forge(claims({ exp: now() - 5 }));
    assert.equal((await runWith(id, bearer(withinSkew))).rejection, undefined);
  });

  it('rejects a wrong issuer or audience', async () => {
    const iss = await forge(claims({ iss: 'https://evil.example' }));
    assertInvalid((await runWith(id, bearer(iss))).rejection, 'token-issuer-invalid', iss);
    const aud = await forge(claims({ aud: 'https://other-api.example' }));
    assertInvalid((await runWith(id, bearer(aud))).rejection, 'token-audience-invalid', aud);
    // A token the provider issued for another resource (its opaque-token audience) is not accepted either.
    const other = await forge(claims({ aud: op.opaqueAudience }));
    assertInvalid((await runWith(id, bearer(other))).rejection, 'token-audience-invalid', other);
  });

  it('rejects a tampered payload', async () => {
    const token = await op.token({ scope: 'read' });
    const [h, p, s] = token.split('.') as [string, string, string];
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString());
    payload.scope = 'read write admin';
    const tampered = `${h}.${b64(payload)}.${s}`;
    assertInvalid((await runWith(id, bearer(tampered))).rejection, 'token-signature-invalid', tampered);
  });

  it('rejects ECDSA signatures with r = 0 or s = 0 and other special values (CVE-2022-21449 class, Wycheproof vectors)', async () => {
    const pub = wycheproof.es256.public as Record<string, unknown>;
    const srv = await startJwksServer([pub]);
    const es = await engine({ providers: { jwt: { issuer: 'https://issuer.wycheproof.test', jwks_uri: srv.jwksUri, audiences: ['https://api.test'] } } });
    try {
      const head = `${b64({ alg: 'ES256', kid: pub.kid })}.${b64({ iss: 'https://issuer.wycheproof.test', aud: 'https://api.test', sub: 's', exp: now() + 300 })}`;
      const vectors = wycheproof.p1363_special_case_signatures as { tcId: number; sig: string; comment: string }[];
      assert.equal(vectors.length, 6);
      for (const v of vectors) {
        const token = `${head}.${Buffer.from(v.sig, 'hex').toString('base64url')}`;
        const { rejection } = await runWith(es, bearer(token));
        assertInvalid(rejection, 'token-signature-invalid', token);
      }
      // The key itself is good: Wycheproof's valid ES256 JWS (tcId 18) verifies against it.
      const { compactVerify } = await import('jose');
      const valid = wycheproof.es256.tests.find((t: { tcId: number }) => t.tcId === 18).jws as string;
      const r = await compactVerify(valid, (es.jwks as NonNullable<IdentityEngine['jwks']>).getKey);
      assert.equal(new TextDecoder().decode(r.payload), 'foo');
    } finally {
      es.close();
      await srv.close();
    }
  });

  it('rejects a protected header over 8 KiB before decoding it', async () => {
    const token = await forge(claims(), { pad: 'a'.repeat(8300) });
    assert.ok(token.length < 16384);
    const { rejection } = await runWith(id, bearer(token));
    assertInvalid(rejection, 'token-header-too-large', token);
    const huge = `${'e'.repeat(20000)}.e.e`;
    assertInvalid((await runWith(id, bearer(huge))).rejection, 'token-too-large', huge);
  });

  it('rejects unknown crit header parameters', async () => {
    const token = signRaw({ alg: 'RS256', kid: key.kid, typ: 'at+jwt', crit: ['urn:example:must-understand'], 'urn:example:must-understand': true }, claims());
    // Control: the same construction without crit is accepted.
    assert.equal((await runWith(id, bearer(signRaw({ alg: 'RS256', kid: key.kid, typ: 'at+jwt' }, claims())))).rejection, undefined);
    assertInvalid((await runWith(id, bearer(token))).rejection, 'token-crit-unsupported', token);
  });

  it('rejects JWE and nested tokens unless decryption is configured', async () => {
    const enc = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const inner = await forge(claims());
    const jwe = await new CompactEncrypt(new TextEncoder().encode(inner))
      .setProtectedHeader({ alg: 'RSA-OAEP-256', enc: 'A256GCM', cty: 'JWT' })
      .encrypt(enc.publicKey);
    assertInvalid((await runWith(id, bearer(jwe))).rejection, 'token-encrypted', jwe);
    const nested = await forge({ ...claims() }, { cty: 'JWT' });
    assertInvalid((await runWith(id, bearer(nested))).rejection, 'token-nested', nested);

    // Configured: the JWE is decrypted and its inner JWS verified as usual.
    const dir = mkdtempSync(join(tmpdir(), 'rampart-jwe-'));
    writeFileSync(join(dir, 'enc.pem'), enc.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const withJwe = await engine(
      { providers: { jwt: { issuer: op.issuer, audiences: [op.audience], decryption: { key_file: 'enc.pem' } } } },
      makeEnv('orders', dir),
    );
    try {
      const { ctx, rejection } = await runWith(withJwe, bearer(jwe));
      assert.equal(rejection, undefined);
      assert.equal(ctx.identity?.subject, 'client-a');
      // A JWE whose content is not a signed JWT is refused.
      const plain = await new CompactEncrypt(new TextEncoder().encode(JSON.stringify(claims())))
        .setProtectedHeader({ alg: 'RSA-OAEP-256', enc: 'A256GCM' })
        .encrypt(enc.publicKey);
      assertInvalid((await runWith(withJwe, bearer(plain))).rejection, 'token-malformed', plain);
      // Tampered ciphertext.
      const parts = jwe.split('.');
      parts[3] = `${parts[3]?.slice(0, -4)}AAAA`;
      const bad = parts.join('.');
      assertInvalid((await runWith(withJwe, bearer(bad))).rejection, 'token-decryption-failed', bad);
    } finally {
      withJwe.close();
    }
  });

  it('malformed tokens are 401 token-malformed, never 500', async () => {
    for (const t of ['abc', 'a.b', 'a.b.c.d', `${b64('not json')}.e30.sig`, `${b64([1])}.e30.sig`, `${b64({ typ: 'JWT' })}.e30.sig`, '.e30.sig']) {
      const { rejection } = await runWith(id, bearer(t));
      assertInvalid(rejection, 'token-malformed', t);
    }
    const { rejection } = await runWith(id, { authorization: 'Bearer a b' });
    assert.equal(rejection?.problem.code, 'token-malformed');
  });

  it('enforces typ at+jwt (RFC 9068) when configured', async () => {
    const strict = await engine({ providers: { jwt: { issuer: op.issuer, audiences: [op.audience], typ: 'at+jwt' } } });
    try {
      assert.equal((await runWith(strict, bearer(await op.token()))).rejection, undefined);
      const idToken = await forge(claims(), { typ: 'JWT' });
      assertInvalid((await runWith(strict, bearer(idToken))).rejection, 'token-type-invalid', idToken);
    } finally {
      strict.close();
    }
  });
});
