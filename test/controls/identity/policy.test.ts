/**
 * Scopes and CEL claim requirements, identity forwarding (spoofed headers removed, token
 * stripped or forwarded), the verification cache and the jti deny list.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createIdentity, identitySchema, revokedJtiKey } from '../../../src/controls/identity/index.ts';
import { startOidcProvider, type TestOidcProvider } from '../../helpers/oidc.ts';
import { bearer, challengeOf, engine, makeEnv, runWith } from './util.ts';

describe('identity: scopes, claims, forwarding, cache, revocation', () => {
  let op: TestOidcProvider;
  before(async () => {
    op = await startOidcProvider({ extraTokenClaims: () => ({ tenant: 'acme', level: 3 }) });
  });
  after(async () => {
    await op.close();
  });
  const jwt = () => ({ issuer: op.issuer, audiences: [op.audience] });

  it('403 insufficient_scope with the required scopes in the challenge (RFC 6750 §3.1)', async () => {
    const id = await engine({ providers: { jwt: jwt() }, require: { scopes: ['read', 'write'] } });
    try {
      const { rejection } = await runWith(id, bearer(await op.token({ scope: 'read' })));
      assert.equal(rejection?.problem.status, 403);
      assert.equal(rejection?.problem.code, 'insufficient-scope');
      assert.equal(
        challengeOf(rejection),
        'Bearer realm="orders", error="insufficient_scope", error_description="This API requires the scope(s): read write.", scope="read write"',
      );
      assert.deepEqual(rejection?.details, { required: ['read', 'write'], granted: ['read'] });
      assert.equal((await runWith(id, bearer(await op.token({ scope: 'read write' })))).rejection, undefined);
    } finally {
      id.close();
    }
  });

  it('evaluates a CEL claims expression compiled at load', async () => {
    const id = await engine({
      providers: { jwt: jwt() },
      require: { claims: "claims.tenant == 'acme' && claims.level >= 2 && 'read' in scopes && request.method == 'GET'" },
    });
    const strict = await engine({ providers: { jwt: jwt() }, require: { claims: "claims.tenant == 'globex'" } });
    const missing = await engine({ providers: { jwt: jwt() }, require: { claims: 'claims.department == "sales"' } });
    try {
      const token = await op.token({ scope: 'read' });
      assert.equal((await runWith(id, bearer(token))).rejection, undefined);
      const denied = (await runWith(strict, bearer(token))).rejection;
      assert.equal(denied?.problem.status, 403);
      assert.equal(denied?.problem.code, 'claims-not-satisfied');
      assert.equal(
        challengeOf(denied),
        'Bearer realm="orders", error="insufficient_scope", error_description="The token\'s claims do not satisfy this API\'s policy."',
      );
      // A missing claim is an evaluation error: denied, never a 500.
      const err = (await runWith(missing, bearer(token))).rejection;
      assert.equal(err?.problem.code, 'claims-not-satisfied');
      assert.deepEqual(err?.details, { cel_error: 'field not found: department' });
    } finally {
      id.close();
      strict.close();
      missing.close();
    }
  });

  it('an invalid CEL expression is a configuration error with its position', async () => {
    const cfg = identitySchema.parse({ providers: { jwt: { issuer: op.issuer, audiences: ['a'] } }, require: { claims: "claims.tenant == 'acme' &&" } });
    await assert.rejects(createIdentity(cfg, makeEnv()), {
      message: 'require.claims: invalid CEL expression at line 1, column 25: found & but expecting end of input',
    });
  });

  it('removes client-sent identity headers, forwards the verified identity, strips or forwards the token', async () => {
    const id = await engine({
      providers: { jwt: jwt() },
      forward: { headers: { issuer: 'x-rampart-issuer', token_id: 'x-rampart-jti' }, claims: { 'X-Tenant': 'tenant', 'x-level': 'level', 'x-none': 'nope' } },
    });
    const keep = await engine({
      providers: { jwt: jwt() },
      forward: { token: 'forward', headers: { subject: false, client_id: false, scopes: false, methods: false } },
    });
    try {
      const token = await op.token({ scope: 'read' });
      const { ctx } = await runWith(id, { ...bearer(token), 'x-rampart-subject': 'admin', 'x-tenant': 'evil' });
      const h = Object.fromEntries(ctx.upstreamHeaders);
      assert.deepEqual(h, {
        'x-rampart-subject': op.clientId,
        'x-rampart-client-id': op.clientId,
        'x-rampart-scopes': 'read',
        'x-rampart-issuer': op.issuer,
        'x-rampart-auth-method': 'jwt',
        'x-rampart-jti': ctx.identity?.tokenId,
        'x-tenant': 'acme',
        'x-level': '3',
        'x-none': null,
        authorization: null,
      });
      const k = await runWith(keep, bearer(token));
      assert.deepEqual(Object.fromEntries(k.ctx.upstreamHeaders), {});
    } finally {
      id.close();
      keep.close();
    }
  });

  it('percent-encodes identity values that are not visible ASCII (no header injection)', async () => {
    const { SignJWT } = await import('jose');
    const k = op.signingKeys[0];
    assert.ok(k);
    const id = await engine({ providers: { jwt: jwt() } });
    try {
      const now = Math.floor(Date.now() / 1000);
      const token = await new SignJWT({ iss: op.issuer, aud: op.audience, sub: 'eve\r\nx-admin: 1', exp: now + 60 })
        .setProtectedHeader({ alg: 'RS256', kid: k.kid })
        .sign(k.privateKey);
      const { ctx, rejection } = await runWith(id, bearer(token));
      assert.equal(rejection, undefined);
      assert.equal(ctx.upstreamHeaders.get('x-rampart-subject'), 'eve%0D%0Ax-admin%3A%201');
    } finally {
      id.close();
    }
  });

  it('caches verified tokens by SHA-256 and still checks the jti deny list on every request', async () => {
    const env = makeEnv();
    const id = await engine({ providers: { jwt: { ...jwt(), jwks: { cooldown_ms: 0 } } } }, env);
    try {
      const token = await op.token({ scope: 'read' });
      const first = await runWith(id, bearer(token));
      assert.equal(first.rejection, undefined);
      // The provider goes down and its keys disappear: the cached verification still answers.
      op.setDown(true);
      const second = await runWith(id, bearer(token));
      assert.equal(second.rejection, undefined);
      assert.deepEqual(second.ctx.identity, first.ctx.identity);
      assert.notEqual(second.ctx.identity, first.ctx.identity, 'each request gets its own identity object');
      op.setDown(false);
      // Revocation through the state store applies at once, cache or not.
      const jti = first.ctx.identity?.tokenId as string;
      await env.store.set(revokedJtiKey(jti), '1', 60_000);
      const revoked = (await runWith(id, bearer(token))).rejection;
      assert.equal(revoked?.problem.status, 401);
      assert.equal(revoked?.problem.code, 'token-revoked');
      assert.equal(revoked?.severity, 'high');
      assert.deepEqual(revoked?.details, { jti });
      assert.equal(challengeOf(revoked), 'Bearer realm="orders", error="invalid_token", error_description="The access token has been revoked."');
    } finally {
      op.setDown(false);
      id.close();
    }
  });

  it('fails closed (503) when the revocation list cannot be read, or open when configured', async () => {
    const broken = makeEnv();
    broken.store.get = async () => {
      throw new Error('redis down');
    };
    const closed = await engine({ providers: { jwt: jwt() } }, broken);
    const open = await engine({ providers: { jwt: jwt() }, revocation: { on_store_error: 'open' } }, broken);
    try {
      const token = await op.token();
      const r = (await runWith(closed, bearer(token))).rejection;
      assert.equal(r?.problem.status, 503);
      assert.equal(r?.problem.code, 'revocation-check-unavailable');
      assert.equal((await runWith(open, bearer(token))).rejection, undefined);
    } finally {
      closed.close();
      open.close();
    }
  });
});
