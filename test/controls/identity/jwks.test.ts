/**
 * JWKS handling: key rotation at the real provider, one shared refetch per unknown kid with a
 * cool-down, last good keys while the provider is down (up to a maximum age), start-up with the
 * provider down (`notReady`), recovery.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { JwksCache } from '../../../src/controls/identity/jwks.ts';
import { startOidcProvider, type TestOidcProvider } from '../../helpers/oidc.ts';
import { bearer, engine, runWith, startJwksServer } from './util.ts';

describe('identity: JWKS with a real provider', () => {
  let op: TestOidcProvider;
  before(async () => {
    op = await startOidcProvider();
  });
  after(async () => {
    await op.close();
  });

  it('follows a key rotation mid-test: 20 concurrent requests with the new kid share exactly one refetch', async () => {
    const id = await engine({ providers: { jwt: { issuer: op.issuer, audiences: [op.audience] } } });
    try {
      const old = await op.token({ scope: 'read' });
      assert.equal((await runWith(id, bearer(old))).rejection, undefined);
      const hits0 = op.hits.get('/jwks') ?? 0;
      const next = await op.rotateKeys();
      const tokens = await Promise.all(Array.from({ length: 20 }, () => op.token({ scope: 'read' })));
      const results = await Promise.all(tokens.map((t) => runWith(id, bearer(t))));
      assert.deepEqual(
        results.map((r) => r.rejection?.problem.code),
        Array(20).fill(undefined),
      );
      assert.equal((op.hits.get('/jwks') ?? 0) - hits0, 1);
      assert.deepEqual(id.jwks?.keyIds.includes(next.kid), true);
      // The old key is still published, so a token signed before the rotation still verifies.
      assert.equal((await runWith(id, bearer(old))).rejection?.problem.code, undefined);

      // Within the cool-down, a flood of unknown kids causes no refetch at all.
      const attacker = await generateKeyPair('ES256');
      const now = Math.floor(Date.now() / 1000);
      const forged = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          new SignJWT({ iss: op.issuer, aud: op.audience, sub: 'x', exp: now + 60 })
            .setProtectedHeader({ alg: 'ES256', kid: `random-${i}` })
            .sign(attacker.privateKey),
        ),
      );
      const hits1 = op.hits.get('/jwks') ?? 0;
      const denied = await Promise.all(forged.map((t) => runWith(id, bearer(t))));
      assert.deepEqual(new Set(denied.map((r) => r.rejection?.problem.code)), new Set(['token-key-unknown']));
      assert.equal((op.hits.get('/jwks') ?? 0) - hits1, 0);
    } finally {
      id.close();
    }
  });

  it('starts while the provider is down, says so in notReady(), answers 503, then recovers', async () => {
    // The token is issued first: with cooldown_ms 0 the failing cache polls in the background, and
    // bringing the provider up to issue a token mid-test let it load the keys (a flaky race).
    const token = await op.token();
    op.setDown(true);
    const id = await engine({ providers: { jwt: { issuer: op.issuer, audiences: [op.audience], jwks: { cooldown_ms: 0 } } } });
    try {
      assert.equal(id.notReady(), `identity (orders): JWKS not loaded: ${op.issuer}/.well-known/openid-configuration: HTTP 503`);
      assert.deepEqual(
        id.env.events.map((e) => [e.reason, e.action, e.severity]),
        [['jwks-refresh-failed', 'alert', 'high']],
      );
      const down = await runWith(id, bearer(token));
      assert.equal(down.rejection?.problem.status, 503);
      assert.equal(down.rejection?.problem.code, 'identity-provider-unavailable');
      assert.equal(down.rejection?.problem.headers['retry-after'], '5');
      op.setDown(false);
      const up = await runWith(id, bearer(token));
      assert.equal(up.rejection, undefined);
      assert.equal(id.notReady(), undefined);
    } finally {
      op.setDown(false);
      id.close();
    }
  });

  it('keeps verifying with the last good keys while the provider is down', async () => {
    const id = await engine({ providers: { jwt: { issuer: op.issuer, audiences: [op.audience], jwks: { cooldown_ms: 0 } } } });
    try {
      const token = await op.token();
      op.setDown(true);
      // Refresh fails (and an unknown kid refetch fails) but the loaded key set keeps working.
      assert.equal(await id.jwks?.refresh(), false);
      assert.equal((await runWith(id, bearer(token))).rejection, undefined);
      assert.equal(id.notReady(), undefined);
    } finally {
      op.setDown(false);
      id.close();
    }
  });
});

describe('identity: JwksCache with an injected clock', () => {
  it('refuses keys older than maxStaleMs while refresh fails, then recovers', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
    const srv = await startJwksServer([{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }]);
    let t = 1_000_000;
    const cache = new JwksCache({ jwksUri: srv.jwksUri, timeoutMs: 2000, cooldownMs: 10_000, refreshMs: 60_000, maxStaleMs: 100_000, now: () => t });
    try {
      await cache.refresh();
      const token = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).sign(privateKey);
      const { compactVerify } = await import('jose');
      await compactVerify(token, cache.getKey);
      srv.down = true;
      t += 100_000; // exactly at the limit: still usable
      await compactVerify(token, cache.getKey);
      assert.equal(srv.hits, 1);
      t += 1; // past the limit: one on-demand refetch, which fails
      await assert.rejects(compactVerify(token, cache.getKey), { name: 'JwksUnavailableError' });
      assert.equal(srv.hits, 2);
      assert.equal(cache.notReady(), `JWKS older than 100000 ms and refresh failing: ${srv.jwksUri}: HTTP 503`);
      // Within the cool-down: no further refetch.
      t += 9_999;
      await assert.rejects(compactVerify(token, cache.getKey), { name: 'JwksUnavailableError' });
      assert.equal(srv.hits, 2);
      srv.down = false;
      t += 1;
      await compactVerify(token, cache.getKey);
      assert.equal(srv.hits, 3);
      assert.equal(cache.notReady(), undefined);
    } finally {
      cache.close();
      await srv.close();
    }
  });

  it('ignores symmetric keys and keys with private members in the published set', async () => {
    const { publicKey } = await generateKeyPair('ES256', { extractable: true });
    const srv = await startJwksServer([
      { kty: 'oct', k: 'c2VjcmV0', kid: 'hmac' },
      { ...(await exportJWK(publicKey)), kid: 'enc', use: 'enc' },
      { ...(await exportJWK(publicKey)), kid: 'good' },
    ]);
    const cache = new JwksCache({ jwksUri: srv.jwksUri, timeoutMs: 2000, cooldownMs: 0, refreshMs: 60_000, maxStaleMs: 100_000 });
    try {
      assert.equal(await cache.refresh(), true);
      assert.deepEqual(cache.keyIds, ['good']);
    } finally {
      cache.close();
      await srv.close();
    }
  });
});
