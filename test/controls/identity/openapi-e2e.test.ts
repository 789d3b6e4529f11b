/**
 * End to end: the OpenAPI document drives identity through a real gateway (in-process), with
 * tokens from a real oidc-provider and API keys in a real SQLite store:
 * - the demo API (examples/openapi.yaml, identity + contract + authz) in front of the real demo
 *   upstream: `GET /health` (`security: []`) needs no token, `GET /users/{id}` does;
 * - the fixture document test/fixtures/openapi/identity-schemes.yaml in front of an echo upstream:
 *   an apiKey-scheme operation takes an API key and refuses a bearer token; the `operations:`
 *   override map. Each rejection is problem+json with the challenge of the schemes the operation
 *   accepts, and exactly one event.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type DemoUpstream, startDemoUpstream } from '../../../examples/demo-upstream.ts';
import { ApiKeyStore } from '../../../src/controls/identity/keys/store.ts';
import { echoUpstream, ROOT, startTestGateway, type TestGateway, type TestUpstream } from '../../helpers/gateway.ts';
import { startOidcProvider, type TestOidcProvider } from '../../helpers/oidc.ts';

const PEPPER = 'pepper-for-identity-openapi-e2e-0123456789';

describe('identity + the demo document through the gateway (demo upstream)', () => {
  const AUD = 'https://accounts.demo.rampart';
  let idp: TestOidcProvider;
  let upstream: DemoUpstream;
  let gw: TestGateway;

  before(async () => {
    idp = await startOidcProvider({
      audience: AUD,
      scopes: ['accounts:read', 'accounts:write', 'admin'],
      extraTokenClaims: () => ({ user_id: '1002', roles: ['customer'] }),
    });
    upstream = await startDemoUpstream();
    const openapi = join(ROOT, 'examples/openapi.yaml');
    gw = await startTestGateway({
      apis: [
        {
          name: 'accounts',
          upstream: { targets: [upstream.url] },
          controls: {
            identity: { openapi, providers: { jwt: { issuer: idp.issuer, audiences: [AUD] } }, require: { scopes: ['accounts:read'] } },
            contract: { openapi, mode: 'enforce', response: { filter: 'strip' } },
            authz: { openapi, rules: [{ name: 'own-user', operations: ['getUser'], allow: 'request.path.id == identity.claims.user_id' }] },
          },
        },
      ],
    });
  });
  after(async () => {
    await gw?.close();
    await upstream?.close();
    await idp?.close();
  });

  it('GET /health without a token → 200, no event', async () => {
    const r = await fetch(`${gw.url}/health`);
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { status: 'ok' });
    assert.equal(gw.events.length, 0);
  });

  it('GET /users/1002 without a token → 401 credentials-missing, Bearer challenge, one identity event; with one → 200', async () => {
    gw.events.length = 0;
    const r = await fetch(`${gw.url}/users/1002`);
    assert.equal(r.status, 401);
    assert.equal(r.headers.get('content-type'), 'application/problem+json');
    assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="accounts", DPoP realm="accounts", algs="ES256 ES384 EdDSA Ed25519 PS256 RS256"');
    assert.equal(((await r.json()) as { type: string }).type, 'https://rampart.dev/problems/credentials-missing');
    assert.deepEqual(
      gw.events.map((e) => [e.control, e.reason, e.status]),
      [['identity', 'credentials-missing', 401]],
    );
    const token = await idp.token({ scope: 'accounts:read' });
    const ok = await fetch(`${gw.url}/users/1002`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(ok.status, 200);
    assert.equal(((await ok.json()) as { id: number }).id, 1002);
  });

  it('GET /health with an invalid token → 401 (a credential sent is verified); an undocumented path still needs a token', async () => {
    gw.events.length = 0;
    const r = await fetch(`${gw.url}/health`, { headers: { authorization: 'Bearer eyJhbGciOiJub25lIn0.e30.' } });
    assert.equal(r.status, 401);
    await r.arrayBuffer();
    assert.equal(gw.events.length, 1);
    assert.equal(gw.events[0]?.control, 'identity');
    const d = await fetch(`${gw.url}/debug/config`);
    assert.equal(d.status, 401);
    await d.arrayBuffer();
  });
});

describe('identity + a document with API-key, optional and overridden operations (echo upstream)', () => {
  let idp: TestOidcProvider;
  let up: TestUpstream;
  let gw: TestGateway;
  let store: ApiKeyStore;
  let token = '';
  const keyFor: Record<string, string> = {};

  before(async () => {
    idp = await startOidcProvider();
    up = await echoUpstream();
    const dir = mkdtempSync(join(tmpdir(), 'rampart-id-openapi-e2e-'));
    process.env.RAMPART_TEST_E2E_PEPPER = PEPPER;
    store = new ApiKeyStore(join(dir, 'keys.db'), Buffer.from(PEPPER));
    for (const api of ['partners', 'overrides']) keyFor[api] = store.create({ api, scopes: ['read'], subject: `${api}-client` }).key;
    const openapi = join(ROOT, 'test/fixtures/openapi/identity-schemes.yaml');
    const identity = (extra: Record<string, unknown>) => ({
      openapi,
      providers: {
        jwt: { issuer: idp.issuer, audiences: [idp.audience] },
        api_key: { database: join(dir, 'keys.db'), pepper_env: 'RAMPART_TEST_E2E_PEPPER', cache_ttl_ms: 1 },
      },
      require: { scopes: ['read'] },
      ...extra,
    });
    gw = await startTestGateway({
      apis: [
        { name: 'partners', match: { path_prefix: '/v1' }, upstream: { targets: [up.url] }, controls: { identity: identity({ base_path: '/v1' }) } },
        {
          name: 'overrides',
          match: { path_prefix: '/v2' },
          upstream: { targets: [up.url] },
          controls: { identity: identity({ base_path: '/v2', operations: { listOrders: { public: true }, getReport: { providers: ['jwt'] } } }) },
        },
      ],
    });
    token = await idp.token({ scope: 'read' });
  });
  after(async () => {
    await gw?.close();
    await up?.close();
    await idp?.close();
    store?.close();
  });

  const call = async (path: string, headers: Record<string, string> = {}) => {
    const before = gw.events.length;
    const r = await fetch(gw.url + path, { headers });
    const text = await r.text();
    return { status: r.status, headers: r.headers, json: text ? JSON.parse(text) : undefined, events: gw.events.slice(before) };
  };

  it('the apiKey-scheme operation accepts an API key from X-Partner-Key and strips it before the upstream', async () => {
    const r = await call('/v1/reports/7', { 'x-partner-key': keyFor.partners as string });
    assert.equal(r.status, 200);
    assert.equal(r.json.headers['x-partner-key'], undefined);
    assert.equal(r.json.headers['x-rampart-subject'], 'partners-client');
    assert.equal(r.json.headers['x-rampart-auth-method'], 'api_key');
    assert.equal(r.events.length, 0);
  });

  it('… and refuses a bearer token: 401 credentials-not-accepted with the ApiKey challenge, one event', async () => {
    const r = await call('/v1/reports/7', { authorization: `Bearer ${token}` });
    assert.equal(r.status, 401);
    assert.equal(r.headers.get('content-type'), 'application/problem+json');
    assert.equal(r.headers.get('www-authenticate'), 'ApiKey realm="partners", header="x-partner-key"');
    assert.equal(r.json.type, 'https://rampart.dev/problems/credentials-not-accepted');
    assert.equal(r.json.detail, 'This operation does not accept access tokens; send an API key in the x-partner-key header.');
    assert.deepEqual(
      r.events.map((e) => [e.control, e.reason, e.status, e.details?.operation]),
      [['identity', 'credentials-not-accepted', 401, 'getReport']],
    );
    assert.equal(JSON.stringify(r.events).includes(token), false);
  });

  it('the query apiKey scheme: the key is accepted and removed from the upstream URL', async () => {
    const r = await call(`/v1/exports?from=1&api_key=${keyFor.partners}`);
    assert.equal(r.status, 200);
    assert.equal(r.json.url, '/v1/exports?from=1');
  });

  it('public and optional operations; client-sent identity headers never reach the upstream', async () => {
    const pub = await call('/v1/status', { 'x-rampart-subject': 'admin', 'x-rampart-scopes': 'admin' });
    assert.equal(pub.status, 200);
    assert.equal(pub.json.headers['x-rampart-subject'], undefined);
    assert.equal(pub.json.headers['x-rampart-scopes'], undefined);
    const anon = await call('/v1/catalog');
    assert.equal(anon.status, 200);
    const named = await call('/v1/catalog', { authorization: `Bearer ${token}` });
    assert.equal(named.json.headers['x-rampart-subject'], idp.clientId);
    const orders = await call('/v1/orders');
    assert.equal(orders.status, 401);
    assert.equal(orders.headers.get('www-authenticate'), 'Bearer realm="partners", DPoP realm="partners", algs="ES256 ES384 EdDSA Ed25519 PS256 RS256"');
  });

  it('the operations map overrides the document: listOrders public, getReport takes tokens only', async () => {
    assert.equal((await call('/v2/orders')).status, 200);
    assert.equal((await call('/v2/reports/7', { authorization: `Bearer ${token}` })).status, 200);
    const k = await call('/v2/reports/7', { 'x-partner-key': keyFor.overrides as string });
    assert.equal(k.status, 401);
    assert.equal(k.json.type, 'https://rampart.dev/problems/credentials-not-accepted');
    assert.equal(k.headers.get('www-authenticate'), 'Bearer realm="overrides", DPoP realm="overrides", algs="ES256 ES384 EdDSA Ed25519 PS256 RS256"');
  });
});
