/**
 * End to end: a real gateway (in-process) in front of a real upstream, protected by the identity
 * control with tokens from a real oidc-provider; zero-config mode (`--issuer --audience`).
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { sourceOf } from '../../../src/cli/serve.ts';
import { echoUpstream, startTestGateway, type TestGateway, type TestUpstream } from '../../helpers/gateway.ts';
import { startOidcProvider, type TestOidcProvider } from '../../helpers/oidc.ts';

describe('identity: end to end through the gateway', () => {
  let op: TestOidcProvider;
  let up: TestUpstream;
  let gw: TestGateway;
  before(async () => {
    op = await startOidcProvider();
    up = await echoUpstream();
    gw = await startTestGateway({
      apis: [
        {
          name: 'orders',
          match: { path_prefix: '/orders' },
          upstream: { targets: [up.url] },
          controls: { identity: { providers: { jwt: { issuer: op.issuer, audiences: [op.audience] } }, require: { scopes: ['read'] } } },
        },
        { name: 'open', match: { path_prefix: '/open' }, upstream: { targets: [up.url] } },
      ],
    });
  });
  after(async () => {
    await gw.close();
    await up.close();
    await op.close();
  });

  it('forwards a valid request with the identity headers and without the token', async () => {
    const token = await op.token({ scope: 'read' });
    const res = await fetch(`${gw.url}/orders/1`, { headers: { authorization: `Bearer ${token}`, 'x-rampart-subject': 'admin' } });
    assert.equal(res.status, 200);
    const echo = (await res.json()) as { headers: Record<string, string> };
    assert.equal(echo.headers['x-rampart-subject'], op.clientId);
    assert.equal(echo.headers['x-rampart-client-id'], op.clientId);
    assert.equal(echo.headers['x-rampart-scopes'], 'read');
    assert.equal(echo.headers.authorization, undefined);
    assert.equal(gw.events.length, 0);
  });

  it('no token: 401 problem+json, WWW-Authenticate, exactly one event', async () => {
    gw.events.length = 0;
    const res = await fetch(`${gw.url}/orders/1`);
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('content-type'), 'application/problem+json');
    assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="orders", DPoP realm="orders", algs="ES256 ES384 EdDSA Ed25519 PS256 RS256"');
    const body = (await res.json()) as Record<string, unknown>;
    assert.equal(body.type, 'https://rampart.dev/problems/credentials-missing');
    assert.equal(body.status, 401);
    assert.equal(gw.events.length, 1);
    assert.deepEqual([gw.events[0]?.control, gw.events[0]?.reason, gw.events[0]?.status], ['identity', 'credentials-missing', 401]);
  });

  it('the DPoP challenge follows the sender control: its algorithms, or none when DPoP is off (RFC 9449 §7.1)', async () => {
    const api = (name: string, sender: unknown) => ({
      name,
      match: { path_prefix: `/${name}` },
      upstream: { targets: [up.url] },
      controls: { identity: { providers: { jwt: { issuer: op.issuer, audiences: [op.audience] } } }, sender },
    });
    const g = await startTestGateway({
      apis: [api('es', { dpop: { algorithms: ['ES256', 'EdDSA'] } }), api('off', false), api('nodpop', { dpop: { enabled: false } })],
    });
    try {
      assert.equal((await fetch(`${g.url}/es/1`)).headers.get('www-authenticate'), 'Bearer realm="es", DPoP realm="es", algs="ES256 EdDSA"');
      assert.equal((await fetch(`${g.url}/off/1`)).headers.get('www-authenticate'), 'Bearer realm="off"');
      assert.equal((await fetch(`${g.url}/nodpop/1`)).headers.get('www-authenticate'), 'Bearer realm="nodpop"');
      // a token that fails: the Bearer error challenge only (the DPoP one is for requests without credentials)
      const bad = await fetch(`${g.url}/es/1`, { headers: { authorization: 'Bearer x.y.z' } });
      assert.match(bad.headers.get('www-authenticate') ?? '', /^Bearer realm="es", error="invalid_token"/);
      const dpopScheme = await fetch(`${g.url}/es/1`, { headers: { authorization: 'DPoP x.y.z' } });
      assert.match(dpopScheme.headers.get('www-authenticate') ?? '', /^DPoP realm="es", error="invalid_token", error_description="[^"]*", algs="ES256 EdDSA"/);
    } finally {
      await g.close(0);
    }
  });

  it('two Authorization fields (a valid token first): 400 invalid_request, never forwarded', async () => {
    gw.events.length = 0;
    const token = await op.token({ scope: 'read' });
    const port = Number(new URL(gw.url).port);
    const text = await new Promise<string>((resolve, reject) => {
      const s = connect(port, '127.0.0.1');
      let out = '';
      s.on('data', (c) => (out += c.toString()));
      s.on('end', () => resolve(out));
      s.on('error', reject);
      s.write(`GET /orders/1 HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer ${token}\r\nAuthorization: Bearer other\r\nConnection: close\r\n\r\n`);
    });
    assert.match(text, /^HTTP\/1\.1 400 /);
    assert.match(text, /www-authenticate: Bearer realm="orders", error="invalid_request"/i);
    assert.match(text, /credentials-ambiguous/);
    assert.deepEqual(
      gw.events.map((e) => e.reason),
      ['credentials-ambiguous'],
    );
  });

  it('a forged token: 401 invalid_token, one event whose details never contain the token', async () => {
    gw.events.length = 0;
    const real = await op.token({ scope: 'read' });
    const [h, , s] = real.split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify({ iss: op.issuer, aud: op.audience, sub: 'admin', scope: 'read admin', exp: 9999999999 })).toString('base64url')}.${s}`;
    const res = await fetch(`${gw.url}/orders/1`, { headers: { authorization: `Bearer ${forged}` } });
    assert.equal(res.status, 401);
    assert.equal(
      res.headers.get('www-authenticate'),
      'Bearer realm="orders", error="invalid_token", error_description="The access token signature is invalid."',
    );
    const body = (await res.json()) as Record<string, unknown>;
    assert.equal(body.type, 'https://rampart.dev/problems/token-signature-invalid');
    assert.equal(gw.events.length, 1);
    assert.equal(gw.events[0]?.reason, 'token-signature-invalid');
    assert.equal(gw.events[0]?.severity, 'high');
    assert.equal(JSON.stringify(gw.events).includes(forged.split('.')[1] as string), false);
    assert.equal(JSON.stringify(gw.events).includes(s as string), false);
  });

  it('insufficient scope: 403 with the scope challenge', async () => {
    gw.events.length = 0;
    const token = await op.token({ scope: 'write' });
    const res = await fetch(`${gw.url}/orders/1`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 403);
    assert.equal(
      res.headers.get('www-authenticate'),
      'Bearer realm="orders", error="insufficient_scope", error_description="This API requires the scope(s): read.", scope="read"',
    );
    assert.equal(gw.events.length, 1);
    assert.equal(gw.events[0]?.reason, 'insufficient-scope');
  });

  it('the open route needs no token', async () => {
    const res = await fetch(`${gw.url}/open/x`);
    assert.equal(res.status, 200);
    await res.arrayBuffer();
  });
});

describe('identity: zero-config --issuer/--audience and /readyz', () => {
  it('protects the upstream with JWTs from the issuer (discovery)', async () => {
    const op = await startOidcProvider();
    const up = await echoUpstream();
    const src = sourceOf({
      upstream: up.url,
      issuer: op.issuer,
      audience: op.audience,
      trustedProxy: [],
      controls: true,
      listen: '127.0.0.1:0',
      admin: '127.0.0.1:0',
    }) as {
      config: Record<string, unknown>;
    };
    const gw = await startTestGateway(src.config);
    try {
      assert.equal((await fetch(`${gw.url}/x`)).status, 401);
      const ok = await fetch(`${gw.url}/x`, { headers: { authorization: `Bearer ${await op.token()}` } });
      assert.equal(ok.status, 200);
      await ok.arrayBuffer();
      assert.equal((await fetch(`${gw.adminUrl}/readyz`)).status, 200);
    } finally {
      await gw.close();
      await up.close();
      await op.close();
    }
  });

  it('starts while the provider is down; /readyz says so until the keys load', async () => {
    const op = await startOidcProvider();
    const up = await echoUpstream();
    op.setDown(true);
    const gw = await startTestGateway({
      apis: [
        {
          name: 'orders',
          upstream: { targets: [up.url] },
          controls: { identity: { providers: { jwt: { issuer: op.issuer, audiences: [op.audience], jwks: { cooldown_ms: 0 } } } } },
        },
      ],
    });
    try {
      const r = await fetch(`${gw.adminUrl}/readyz`);
      assert.equal(r.status, 503);
      const text = await r.text();
      assert.ok(text.includes(`identity (orders): JWKS not loaded: ${op.issuer}/.well-known/openid-configuration: HTTP 503`), text);
      op.setDown(false);
      const ok = await fetch(`${gw.url}/x`, { headers: { authorization: `Bearer ${await op.token()}` } });
      assert.equal(ok.status, 200);
      await ok.arrayBuffer();
      assert.equal((await fetch(`${gw.adminUrl}/readyz`)).status, 200);
    } finally {
      await gw.close();
      await up.close();
      await op.close();
    }
  });
});
