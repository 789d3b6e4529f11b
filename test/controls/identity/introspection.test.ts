/**
 * RFC 7662 introspection of opaque tokens against the real oidc-provider introspection endpoint.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startOidcProvider, type TestOidcProvider } from '../../helpers/oidc.ts';
import { bearer, challengeOf, engine, runWith } from './util.ts';

describe('identity: token introspection (real oidc-provider)', () => {
  let op: TestOidcProvider;
  before(async () => {
    op = await startOidcProvider();
  });
  after(async () => {
    await op.close();
  });
  const cfg = (over: Record<string, unknown> = {}) => ({
    providers: {
      introspection: {
        endpoint: op.introspectionEndpoint,
        client_id: op.clientId,
        client_secret: op.clientSecret,
        issuer: op.issuer,
        audiences: [op.opaqueAudience],
        ...over,
      },
    },
  });

  it('accepts an active opaque token, caches the answer, and sets the identity', async () => {
    const id = await engine(cfg());
    try {
      const token = await op.token({ scope: 'read write', resource: op.opaqueAudience });
      const { ctx, rejection } = await runWith(id, bearer(token));
      assert.equal(rejection, undefined);
      assert.equal(ctx.identity?.subject, op.clientId);
      assert.equal(ctx.identity?.clientId, op.clientId);
      assert.deepEqual(ctx.identity?.scopes, ['read', 'write']);
      assert.deepEqual(ctx.identity?.methods, ['introspection']);
      assert.equal(ctx.identity?.issuer, op.issuer);
      for (let i = 0; i < 5; i++) assert.equal((await runWith(id, bearer(token))).rejection, undefined);
      assert.equal(id.introspector?.calls, 1);
    } finally {
      id.close();
    }
  });

  it('concurrent requests with one token share one introspection call', async () => {
    const id = await engine(cfg());
    try {
      const token = await op.token({ resource: op.opaqueAudience });
      const rs = await Promise.all(Array.from({ length: 10 }, () => runWith(id, bearer(token))));
      assert.deepEqual(
        rs.map((r) => r.rejection),
        Array(10).fill(undefined),
      );
      assert.equal(id.introspector?.calls, 1);
    } finally {
      id.close();
    }
  });

  it('active: false → 401 token-inactive', async () => {
    const id = await engine(cfg());
    try {
      const { rejection } = await runWith(id, bearer('not-a-real-token-value-0123456789'));
      assert.equal(rejection?.problem.status, 401);
      assert.equal(rejection?.problem.code, 'token-inactive');
      assert.equal(challengeOf(rejection), 'Bearer realm="orders", error="invalid_token", error_description="The access token is not active."');
    } finally {
      id.close();
    }
  });

  it('a token for another audience is refused', async () => {
    const id = await engine(cfg({ audiences: ['https://somewhere-else.example'] }));
    try {
      const token = await op.token({ resource: op.opaqueAudience });
      assert.equal((await runWith(id, bearer(token))).rejection?.problem.code, 'token-audience-invalid');
    } finally {
      id.close();
    }
  });

  it('wrong gateway credentials or a down endpoint fail closed with 503', async () => {
    const id = await engine(cfg({ client_secret: 'wrong' }));
    try {
      const token = await op.token({ resource: op.opaqueAudience });
      const r = (await runWith(id, bearer(token))).rejection;
      assert.equal(r?.problem.status, 503);
      assert.equal(r?.problem.code, 'identity-provider-unavailable');
    } finally {
      id.close();
    }
  });

  it('jwt and introspection on one route: JWTs are verified locally, opaque tokens introspected', async () => {
    const id = await engine({ providers: { jwt: { issuer: op.issuer, audiences: [op.audience] }, ...cfg().providers } });
    try {
      const jwt = await op.token();
      const opaque = await op.token({ resource: op.opaqueAudience });
      const a = await runWith(id, bearer(jwt));
      const b = await runWith(id, bearer(opaque));
      assert.deepEqual([a.rejection, a.ctx.identity?.methods], [undefined, ['jwt']]);
      assert.deepEqual([b.rejection, b.ctx.identity?.methods], [undefined, ['introspection']]);
      assert.equal(id.introspector?.calls, 1);
    } finally {
      id.close();
    }
  });
});
