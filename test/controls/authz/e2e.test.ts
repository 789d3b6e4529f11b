/**
 * End to end: a real gateway (identity + contract + authz, the configuration proposed for
 * examples/rampart.yaml) in front of the real demo upstream, with tokens from a real
 * oidc-provider. Each flaw of the demo API is shown blocked, with exactly one event per rejection.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type DemoUpstream, startDemoUpstream } from '../../../examples/demo-upstream.ts';
import { ROOT, startTestGateway, type TestGateway } from '../../helpers/gateway.ts';
import { startOidcProvider, type TestOidcProvider } from '../../helpers/oidc.ts';

const AUD = 'https://accounts.demo.rampart';
const CLIENTS = [
  { client_id: 'alice-app', client_secret: 'alice-secret-0123456789abcdef', user_id: 1002, roles: ['customer'] },
  { client_id: 'admin-app', client_secret: 'admin-secret-0123456789abcdef', user_id: 1001, roles: ['admin'] },
];

/** The controls proposed for the `accounts` API of examples/rampart.yaml (document path made absolute). */
export function demoControls(issuer: string): Record<string, unknown> {
  const openapi = join(ROOT, 'examples/openapi.yaml');
  return {
    identity: { providers: { jwt: { issuer, audiences: [AUD] } }, require: { scopes: ['accounts:read'] } },
    contract: { openapi, mode: 'enforce', response: { filter: 'strip' } },
    authz: {
      openapi,
      rules: [
        { name: 'admins-only', kind: 'function', tags: ['admin'], allow: "'admin' in identity.claims.roles" },
        {
          name: 'own-user',
          operations: ['getUser', 'listUserAccounts', 'getTaxProfile'],
          allow: "request.path.id == identity.claims.user_id || 'admin' in identity.claims.roles",
        },
      ],
      response_rules: [
        {
          name: 'own-account',
          operations: ['getAccount'],
          allow: "string(response.body.user_id) == identity.claims.user_id || 'admin' in identity.claims.roles",
        },
      ],
      enumeration: { max_distinct: 20, window_ms: 60_000, action: 'block' },
    },
  };
}

describe('contract + authz through the gateway, in front of the demo upstream', () => {
  let idp: TestOidcProvider;
  let upstream: DemoUpstream;
  let gw: TestGateway;
  let alice = '';
  let admin = '';

  before(async () => {
    idp = await startOidcProvider({
      clientId: CLIENTS[0]?.client_id,
      clientSecret: CLIENTS[0]?.client_secret,
      audience: AUD,
      scopes: ['accounts:read', 'accounts:write', 'admin'],
      clients: [
        {
          client_id: 'admin-app',
          client_secret: 'admin-secret-0123456789abcdef',
          grant_types: ['client_credentials'],
          redirect_uris: [],
          response_types: [],
          token_endpoint_auth_method: 'client_secret_basic',
        },
      ],
      extraTokenClaims: (_ctx, token) => {
        const c = CLIENTS.find((d) => d.client_id === (token as { clientId?: string }).clientId);
        return c ? { user_id: String(c.user_id), roles: c.roles } : undefined;
      },
    });
    upstream = await startDemoUpstream();
    gw = await startTestGateway({ apis: [{ name: 'accounts', upstream: { targets: [upstream.url] }, controls: demoControls(idp.issuer) }] });
    alice = await idp.token({ scope: 'accounts:read accounts:write' });
    admin = await idp.token({ scope: 'accounts:read accounts:write admin', clientId: 'admin-app', clientSecret: 'admin-secret-0123456789abcdef' });
  });
  after(async () => {
    await gw?.close();
    await upstream?.close();
    await idp?.close();
  });

  const call = async (method: string, path: string, token: string, body?: unknown) => {
    const before = gw.events.length;
    const r = await fetch(gw.url + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    return { status: r.status, headers: r.headers, json: text ? JSON.parse(text) : undefined, events: gw.events.slice(before) };
  };

  it('own user record: 200 with only the documented properties (over-exposed fields stripped)', async () => {
    const r = await call('GET', '/users/1002', alice);
    assert.equal(r.status, 200);
    assert.deepEqual(Object.keys(r.json).sort(), ['address', 'email', 'id', 'name', 'phone']);
    assert.deepEqual(
      r.events.map((e) => [e.control, e.reason, e.action]),
      [['contract', 'response-properties-stripped', 'redact']],
    );
    assert.deepEqual(r.events[0]?.details?.pointers, ['/internal_notes', '/password_hash', '/risk_score', '/role', '/ssn']);
  });

  it("BOLA on /users/{id}: another user's record → 403 object-denied, one event", async () => {
    const r = await call('GET', '/users/1003', alice);
    assert.equal(r.status, 403);
    assert.equal(r.headers.get('content-type'), 'application/problem+json');
    assert.equal(r.json.type, 'https://rampart.dev/problems/object-denied');
    assert.deepEqual(
      r.events.map((e) => [e.control, e.reason, e.action, e.operation, e.status]),
      [['authz', 'object-denied', 'deny', 'getUser', 403]],
    );
    assert.equal((await call('GET', '/users/1003', admin)).status, 200);
  });

  it("BOLA on /accounts/{id}: another user's account → 403 response-object-denied, no byte of it sent", async () => {
    const accounts = [...(upstream.data.accounts as unknown as Map<number, { id: number; user_id: number }>).values()];
    const mine = accounts.find((a) => a.user_id === 1002) as { id: number };
    const theirs = accounts.find((a) => a.user_id !== 1002) as { id: number };
    const ok = await call('GET', `/accounts/${mine.id}`, alice);
    assert.equal(ok.status, 200);
    assert.equal(ok.json.user_id, 1002);
    const r = await call('GET', `/accounts/${theirs.id}`, alice);
    assert.equal(r.status, 403);
    assert.deepEqual(Object.keys(r.json).sort(), ['detail', 'instance', 'status', 'title', 'type']);
    assert.equal(r.json.type, 'https://rampart.dev/problems/response-object-denied');
    assert.deepEqual(
      r.events.map((e) => [e.control, e.reason, e.action]),
      [['authz', 'response-object-denied', 'deny']],
    );
  });

  it('the undocumented /debug/config → 404 operation-undocumented', async () => {
    const r = await call('GET', '/debug/config', admin);
    assert.equal(r.status, 404);
    assert.equal(r.json.type, 'https://rampart.dev/problems/operation-undocumented');
    assert.deepEqual(
      r.events.map((e) => [e.control, e.reason]),
      [['contract', 'operation-undocumented']],
    );
  });

  it('admin-only operations: missing admin scope → 403 insufficient-scope (RFC 6750 §3.1); admin passes', async () => {
    const r = await call('DELETE', '/users/1010', alice);
    assert.equal(r.status, 403);
    assert.equal(r.json.type, 'https://rampart.dev/problems/insufficient-scope');
    assert.equal(
      r.headers.get('www-authenticate'),
      'Bearer realm="accounts", error="insufficient_scope", error_description="The access token lacks a required scope", scope="admin"',
    );
    assert.equal((await call('GET', '/admin/users', alice)).status, 403);
    assert.equal((await call('GET', '/admin/users', admin)).status, 200);
  });

  it('mass assignment (role: admin), an unbounded limit and an undocumented method are refused', async () => {
    const ma = await call('POST', '/users', alice, { name: 'Eve', email: 'eve@example.com', role: 'admin' });
    assert.equal(ma.status, 400);
    assert.equal(ma.json.type, 'https://rampart.dev/problems/mass-assignment');
    assert.deepEqual(ma.json.errors, [
      { location: 'body', kind: 'undeclared', pointer: '/role', keyword: 'additionalProperties', message: 'is not declared in the schema' },
    ]);
    const lim = await call('GET', '/users?limit=10000', alice);
    assert.equal(lim.status, 400);
    assert.deepEqual(lim.json.errors, [{ location: 'query', kind: 'invalid', name: 'limit', keyword: 'maximum', message: 'must be <= 100' }]);
    const put = await call('PUT', '/users/1002', alice, { name: 'x' });
    assert.equal(put.status, 405);
    assert.equal(put.headers.get('allow'), 'GET, DELETE, HEAD');
  });

  it('walking account ids: blocked (429 bola-enumeration) after 20 distinct ids, one event', async () => {
    const statuses: number[] = [];
    const events = [];
    for (let id = 5001; id <= 5025; id++) {
      const r = await call('GET', `/accounts/${id}`, admin);
      statuses.push(r.status);
      events.push(...r.events.filter((e) => e.reason === 'bola-enumeration'));
    }
    // The mine/theirs test above already read 2 distinct ids as alice, not as admin.
    assert.deepEqual(statuses.slice(0, 20), new Array(20).fill(200));
    assert.deepEqual(statuses.slice(20), [429, 429, 429, 429, 429]);
    assert.equal(events.length, 1);
  });
});
