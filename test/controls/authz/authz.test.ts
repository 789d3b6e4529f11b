/**
 * Authz control: OpenAPI security requirements (scopes, RFC 6750 §3.1 challenge), function- and
 * object-level CEL rules (BFLA, BOLA), the enumeration signal in the state store, and response
 * ownership rules; against the demo document and a real MemoryStore.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { authzSchema, createAuthz, type AuthzConfigInput } from '../../../src/controls/authz/index.ts';
import { contractSchema, createContract } from '../../../src/controls/contract/index.ts';
import type { Identity } from '../../../src/pipeline/context.ts';
import { ROOT } from '../../helpers/gateway.ts';
import { makeCtx, makeEnv, makeResponse, type TestCtx } from '../contract/util.ts';

const DEMO = join(ROOT, 'examples/openapi.yaml');

function who(sub: string, scopes: string[], claims: Record<string, unknown> = {}, methods = ['jwt']): Identity {
  return { subject: sub, scopes, methods, claims: { sub, ...claims } };
}

async function setup(cfg: AuthzConfigInput = {}) {
  const env = makeEnv(ROOT);
  const authz = await createAuthz(authzSchema.parse({ openapi: DEMO, ...cfg }), env);
  const contract = await createContract(contractSchema.parse({ openapi: DEMO }), ROOT);
  /** Runs contract then authz, like the gateway's phase order. */
  const request = async (ctx: TestCtx, identity?: Identity) => {
    ctx.identity = identity;
    const c = await contract.checkRequest(ctx);
    if (c !== undefined) return c;
    return authz.checkRequest(ctx);
  };
  return { env, authz, contract, request };
}

const READ = ['accounts:read'];

describe('authz: OpenAPI security requirements', () => {
  it('missing scope → 403 insufficient-scope with the RFC 6750 §3.1 challenge', async () => {
    const { request } = await setup();
    const r = await request(makeCtx('DELETE', '/users/1003'), who('1002', READ));
    assert.equal(r?.problem.status, 403);
    assert.equal(r?.problem.code, 'insufficient-scope');
    assert.equal(
      r?.problem.headers['www-authenticate'],
      'Bearer realm="demo", error="insufficient_scope", error_description="The access token lacks a required scope", scope="admin"',
    );
  });

  it('granted scope passes; an anonymous operation needs no identity; a secured one does', async () => {
    const { request } = await setup();
    assert.equal(await request(makeCtx('DELETE', '/users/1003'), who('1001', ['admin'])), undefined);
    assert.equal(await request(makeCtx('GET', '/health')), undefined);
    const r = await request(makeCtx('GET', '/users/1002'));
    assert.equal(r?.problem.status, 401);
    assert.equal(r?.problem.code, 'authentication-required');
    assert.equal(r?.problem.headers['www-authenticate'], 'Bearer realm="demo"');
  });

  it('an identity from a method the scheme does not accept → 401; scheme_methods overrides', async () => {
    const { request } = await setup();
    const r = await request(makeCtx('GET', '/users/1002'), who('1002', READ, {}, ['api_key']));
    assert.equal(r?.problem.code, 'authentication-method-not-accepted');
    const { request: r2 } = await setup({ scheme_methods: { oauth: ['jwt', 'api_key'] } });
    assert.equal(await r2(makeCtx('GET', '/users/1002'), who('1002', READ, {}, ['api_key'])), undefined);
  });

  it('operation_scopes overrides the document', async () => {
    const { request } = await setup({ operation_scopes: { getUser: ['users:self'] } });
    assert.equal((await request(makeCtx('GET', '/users/1002'), who('1002', READ)))?.problem.code, 'insufficient-scope');
    assert.equal(await request(makeCtx('GET', '/users/1002'), who('1002', ['users:self'])), undefined);
  });
});

describe('authz: CEL rules', () => {
  const rules: AuthzConfigInput['rules'] = [
    { name: 'admins-only', kind: 'function', tags: ['admin'], allow: "'admin' in identity.claims.roles" },
    {
      name: 'own-user',
      operations: ['getUser', 'listUserAccounts', 'getTaxProfile'],
      allow: "request.path.id == identity.sub || 'admin' in identity.claims.roles",
    },
    { name: 'own-source-account', operations: ['createTransfer'], allow: 'request.body.from_account in identity.claims.accounts' },
  ];

  it('function level (BFLA): an admin operation without the role → 403 function-denied', async () => {
    const { request } = await setup({ rules });
    const r = await request(makeCtx('GET', '/admin/users'), who('1002', ['admin'], { roles: ['customer'] }));
    assert.equal(r?.problem.status, 403);
    assert.equal(r?.problem.code, 'function-denied');
    assert.deepEqual(r?.details, { rule: 'admins-only', cel_error: undefined });
    assert.equal(await request(makeCtx('GET', '/admin/users'), who('1001', ['admin'], { roles: ['admin'] })), undefined);
  });

  it('a missing claim is an evaluation error and denies (fail closed)', async () => {
    const { request } = await setup({ rules });
    const r = await request(makeCtx('GET', '/admin/users'), who('1002', ['admin']));
    assert.equal(r?.problem.code, 'function-denied');
    assert.match(String(r?.details?.cel_error), /roles/);
  });

  it("object level (BOLA): another user's id → 403 object-denied; one's own passes", async () => {
    const { request } = await setup({ rules });
    const r = await request(makeCtx('GET', '/users/1003'), who('1002', READ, { roles: ['customer'] }));
    assert.equal(r?.problem.code, 'object-denied');
    assert.deepEqual(r?.details, { rule: 'own-user', cel_error: undefined, params: { id: '1003' } });
    assert.equal(await request(makeCtx('GET', '/users/1002'), who('1002', READ, { roles: ['customer'] })), undefined);
    assert.equal(await request(makeCtx('GET', '/users/1003/accounts'), who('1001', READ, { roles: ['admin'] })), undefined);
  });

  it('rules see the parsed request body', async () => {
    const { request } = await setup({ rules });
    const body = (from: number) => JSON.stringify({ from_account: from, to_account: 5009, amount: 10, currency: 'USD' });
    const h = { 'content-type': 'application/json' };
    const me = who('1002', ['accounts:write'], { accounts: [5002, 5003] });
    assert.equal(await request(makeCtx('POST', '/transfers', { headers: h, body: body(5002) }), me), undefined);
    assert.equal((await request(makeCtx('POST', '/transfers', { headers: h, body: body(5001) }), me))?.problem.code, 'object-denied');
  });

  it('an invalid expression is a configuration error showing its position', async () => {
    await assert.rejects(setup({ rules: [{ allow: "'admin' in identity.claims.roles &&" }] }), {
      message: 'rules[0].allow: invalid CEL expression at line 1, column 34: found & but expecting end of input',
    });
  });

  it('an unknown operation or tag is a configuration error', async () => {
    await assert.rejects(setup({ rules: [{ operations: ['nope'], allow: 'true' }] }), { message: `rules[0].operations: no operation "nope" in ${DEMO}` });
    await assert.rejects(setup({ rules: [{ tags: ['nope'], allow: 'true' }] }), { message: 'rules[0].tags: no operation is tagged "nope"' });
  });
});

describe('authz: BOLA enumeration signal', () => {
  it('alert: one event when an identity walks more distinct ids than allowed in the window', async () => {
    const { request } = await setup({ enumeration: { max_distinct: 3, window_ms: 60_000 } });
    const me = who('1002', READ);
    const events = [];
    for (const id of [1001, 1002, 1003, 1003, 1004, 1005, 1006]) {
      const ctx = makeCtx('GET', `/accounts/${5000 + id - 1000}`);
      assert.equal(await request(ctx, me), undefined);
      events.push(...ctx.events);
    }
    assert.deepEqual(events, [
      {
        control: 'authz',
        reason: 'bola-enumeration',
        action: 'alert',
        severity: 'high',
        details: { operation: 'getAccount', distinct: 4, max_distinct: 3, window_ms: 60_000 },
      },
    ]);
    // Another identity has its own budget.
    const other = makeCtx('GET', '/accounts/5001');
    assert.equal(await request(other, who('1003', READ)), undefined);
    assert.deepEqual(other.events, []);
  });

  it('block: 429 bola-enumeration with Retry-After; repeats are quiet (one event per window)', async () => {
    const { request } = await setup({ enumeration: { max_distinct: 2, window_ms: 30_000, action: 'block' } });
    const me = who('1002', READ);
    assert.equal(await request(makeCtx('GET', '/accounts/5001'), me), undefined);
    assert.equal(await request(makeCtx('GET', '/accounts/5002'), me), undefined);
    const r = await request(makeCtx('GET', '/accounts/5003'), me);
    assert.equal(r?.problem.status, 429);
    assert.equal(r?.problem.code, 'bola-enumeration');
    assert.equal(r?.problem.headers['retry-after'], '30');
    assert.equal(r?.quiet, false);
    const again = await request(makeCtx('GET', '/accounts/5004'), me);
    assert.equal(again?.problem.code, 'bola-enumeration');
    assert.equal(again?.quiet, true);
  });
});

describe('authz: response ownership rules', () => {
  const response_rules: AuthzConfigInput['response_rules'] = [
    { name: 'own-account', operations: ['getAccount'], allow: 'string(response.body.user_id) == identity.sub' },
    { name: 'own-transactions', operations: ['listTransactions'], allow: 'response.body.items.all(t, t.account_id in identity.claims.accounts)' },
  ];
  const account = (owner: number) => ({
    id: 5001,
    user_id: owner,
    type: 'checking',
    currency: 'USD',
    balance: 1,
    iban: 'DE89370400440532013000',
    status: 'active',
    opened_at: '2024-01-01T00:00:00Z',
  });

  it("someone else's object → 403 response-object-denied; one's own passes", async () => {
    const { authz, request } = await setup({ response_rules });
    const ctx = makeCtx('GET', '/accounts/5001');
    assert.equal(await request(ctx, who('1002', READ)), undefined);
    const r = await authz.checkResponse(ctx, makeResponse(200, account(1001)));
    assert.equal(r?.problem.status, 403);
    assert.equal(r?.problem.code, 'response-object-denied');
    assert.deepEqual(r?.details, { rule: 'own-account', cel_error: undefined, status: 200 });
    const ok = makeCtx('GET', '/accounts/5001');
    await request(ok, who('1001', READ));
    assert.equal(await authz.checkResponse(ok, makeResponse(200, account(1001))), undefined);
  });

  it('every item of a list must belong to the caller', async () => {
    const { authz, request } = await setup({ response_rules });
    const me = who('1002', READ, { accounts: [5002] });
    const ctx = makeCtx('GET', '/accounts/5002/transactions');
    await request(ctx, me);
    const items = [5002, 5002, 5001].map((a, i) => ({ id: i, account_id: a }));
    assert.equal((await authz.checkResponse(ctx, makeResponse(200, { items, total: 3, limit: 20, offset: 0 })))?.problem.code, 'response-object-denied');
    assert.equal(await authz.checkResponse(ctx, makeResponse(200, { items: items.slice(0, 2), total: 2, limit: 20, offset: 0 })), undefined);
  });

  it('error responses are not evaluated; a body too large to authorize is refused (502)', async () => {
    const { authz, request } = await setup({ response_rules, response: { max_body_bytes: 16 } });
    const ctx = makeCtx('GET', '/accounts/5001');
    await request(ctx, who('1002', READ));
    assert.equal(await authz.checkResponse(ctx, makeResponse(404, { error: 'not_found', message: 'x' })), undefined);
    const r = await authz.checkResponse(ctx, makeResponse(200, account(1002)));
    assert.equal(r?.problem.status, 502);
    assert.equal(r?.problem.code, 'response-unauthorizable');
  });
});
