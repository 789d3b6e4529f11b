/**
 * The OpenAPI document drives identity (`openapi:`): per operation, `security` and
 * `securitySchemes` select the providers; `security: []` is public; `{}` makes authentication
 * optional; the `operations:` map overrides the document. Real oidc-provider tokens, real API keys
 * in SQLite, the real fixture document test/fixtures/openapi/identity-schemes.yaml.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { IdentityConfigInput, IdentityEngine } from '../../../src/controls/identity/index.ts';
import { ApiKeyStore } from '../../../src/controls/identity/keys/store.ts';
import { startOidcProvider, type TestOidcProvider } from '../../helpers/oidc.ts';
import { challengeOf, engine, makeCtx, makeEnv } from './util.ts';

const FIXTURE = fileURLToPath(new URL('../../fixtures/openapi/identity-schemes.yaml', import.meta.url));
const DEMO = fileURLToPath(new URL('../../../examples/openapi.yaml', import.meta.url));
const PEPPER = Buffer.from('pepper-for-openapi-tests-0123456789abcdef');

describe('identity: the OpenAPI document selects the providers per operation', () => {
  let op: TestOidcProvider;
  let dir: string;
  let keys: ApiKeyStore;
  let token = '';
  const open: IdentityEngine[] = [];

  before(async () => {
    op = await startOidcProvider();
    dir = mkdtempSync(join(tmpdir(), 'rampart-id-openapi-'));
    process.env.RAMPART_TEST_OPENAPI_PEPPER = PEPPER.toString();
    keys = new ApiKeyStore(join(dir, 'keys.db'), PEPPER);
    token = await op.token({ scope: 'read' });
  });
  after(async () => {
    for (const e of open) e.close();
    keys.close();
    await op.close();
  });

  const config = (extra: Partial<IdentityConfigInput> = {}, apiKey: Record<string, unknown> = {}): IdentityConfigInput => ({
    openapi: FIXTURE,
    providers: {
      jwt: { issuer: op.issuer, audiences: [op.audience] },
      api_key: { database: 'keys.db', pepper_env: 'RAMPART_TEST_OPENAPI_PEPPER', cache_ttl_ms: 1, ...apiKey },
    },
    require: { scopes: ['read'] },
    ...extra,
  });
  const build = async (cfg: IdentityConfigInput) => {
    const e = await engine(cfg, makeEnv('orders', dir));
    open.push(e);
    return e;
  };
  const run = async (e: IdentityEngine, method: string, target: string, headers: Record<string, string> = {}) => {
    const ctx = makeCtx(headers, target, method);
    const rejection = await e.run(ctx);
    return { ctx, rejection };
  };

  it('security: [] is public: no credentials needed, client-sent identity headers removed', async () => {
    const e = await build(config());
    const { ctx, rejection } = await run(e, 'GET', '/status', { 'x-rampart-subject': 'admin' });
    assert.equal(rejection, undefined);
    assert.equal(ctx.identity, undefined);
    assert.equal(ctx.upstreamHeaders.get('x-rampart-subject'), null);
    assert.equal(ctx.upstreamHeaders.get('x-rampart-scopes'), null);
    // HEAD is routed as GET (as the contract control does).
    assert.equal((await run(e, 'HEAD', '/status')).rejection, undefined);
  });

  it('public: a credential sent anyway is verified (identity set; an invalid one is a 401); the API-wide scopes do not apply', async () => {
    const e = await build(config());
    const ok = await run(e, 'GET', '/status', { authorization: `Bearer ${await op.token({ scope: 'write' })}` });
    assert.equal(ok.rejection, undefined);
    assert.equal(ok.ctx.identity?.subject, op.clientId);
    assert.equal(ok.ctx.upstreamHeaders.get('authorization'), null);
    const bad = await run(e, 'GET', '/status', { authorization: `Bearer ${token.slice(0, -4)}AAAA` });
    assert.equal(bad.rejection?.problem.status, 401);
    assert.equal(bad.rejection?.problem.code, 'token-signature-invalid');
  });

  it('document-level security (oauth) on an operation without its own: bearer only, API-wide scopes apply', async () => {
    const e = await build(config());
    assert.equal((await run(e, 'GET', '/orders', { authorization: `Bearer ${token}` })).rejection, undefined);
    const none = (await run(e, 'GET', '/orders')).rejection;
    assert.equal(none?.problem.code, 'credentials-missing');
    assert.equal(none?.problem.detail, 'Send an access token in the Authorization header (Bearer).');
    assert.equal(challengeOf(none), 'Bearer realm="orders"');
    const scope = (await run(e, 'GET', '/orders', { authorization: `Bearer ${await op.token({ scope: 'write' })}` })).rejection;
    assert.equal(scope?.problem.code, 'insufficient-scope');
    // An API key (in the header another operation's scheme names) is refused here, naming what is accepted.
    const { key } = keys.create({ api: 'orders', scopes: ['read'] });
    const k = (await run(e, 'GET', '/orders', { 'x-partner-key': key })).rejection;
    assert.equal(k?.problem.status, 401);
    assert.equal(k?.problem.code, 'credentials-not-accepted');
    assert.equal(k?.problem.detail, 'This operation does not accept API keys; send an access token in the Authorization header (Bearer).');
    assert.equal(challengeOf(k), 'Bearer realm="orders"');
    assert.deepEqual(k?.details, { operation: 'listOrders' });
  });

  it('an apiKey scheme (header X-Partner-Key): accepts the key from that header and refuses a bearer token', async () => {
    const e = await build(config());
    const { key, record } = keys.create({ api: 'orders', scopes: ['read'], subject: 'partner-1' });
    const ok = await run(e, 'GET', '/reports/7', { 'x-partner-key': key });
    assert.equal(ok.rejection, undefined);
    assert.deepEqual([ok.ctx.identity?.subject, ok.ctx.identity?.methods, ok.ctx.identity?.tokenId], ['partner-1', ['api_key'], record.id]);
    assert.equal(ok.ctx.upstreamHeaders.get('x-partner-key'), null);
    // The configured default header (x-api-key) is not where this operation takes keys.
    assert.equal((await run(e, 'GET', '/reports/7', { 'x-api-key': key })).rejection?.problem.code, 'credentials-missing');
    const b = (await run(e, 'GET', '/reports/7', { authorization: `Bearer ${token}` })).rejection;
    assert.equal(b?.problem.status, 401);
    assert.equal(b?.problem.code, 'credentials-not-accepted');
    assert.equal(b?.problem.detail, 'This operation does not accept access tokens; send an API key in the x-partner-key header.');
    assert.equal(challengeOf(b), 'ApiKey realm="orders", header="x-partner-key"');
    const none = (await run(e, 'GET', '/reports/7')).rejection;
    assert.equal(none?.problem.code, 'credentials-missing');
    assert.equal(none?.problem.detail, 'Send an API key in the x-partner-key header.');
    assert.equal(challengeOf(none), 'ApiKey realm="orders", header="x-partner-key"');
    // Both at once stays ambiguous.
    assert.equal(
      (await run(e, 'GET', '/reports/7', { 'x-partner-key': key, authorization: `Bearer ${token}` })).rejection?.problem.code,
      'credentials-ambiguous',
    );
  });

  it('an apiKey scheme in the query (api_key): accepted, removed from the upstream query, warned about at load', async () => {
    const env = makeEnv('orders', dir);
    const e = await engine(config(), env);
    open.push(e);
    assert.deepEqual(env.warnings.filter((w) => w.includes('query parameter "api_key"')).length, 1);
    const { key } = keys.create({ api: 'orders', scopes: ['read'] });
    const ok = await run(e, 'GET', `/exports?from=1&api_key=${key}&to=2`);
    assert.equal(ok.rejection, undefined);
    assert.equal(ok.ctx.upstreamQuery, 'from=1&to=2');
    const none = (await run(e, 'GET', '/exports?from=1')).rejection;
    assert.equal(challengeOf(none), 'ApiKey realm="orders", query="api_key"');
  });

  it('the configuration overrides the document: an explicit providers.api_key.header is where keys are read', async () => {
    const e = await build(config({}, { header: 'x-api-key' }));
    const { key } = keys.create({ api: 'orders', scopes: ['read'] });
    assert.equal((await run(e, 'GET', '/reports/7', { 'x-api-key': key })).rejection, undefined);
    assert.equal((await run(e, 'GET', '/reports/7', { 'x-partner-key': key })).rejection?.problem.code, 'credentials-missing');
    assert.equal(challengeOf((await run(e, 'GET', '/reports/7')).rejection), 'ApiKey realm="orders", header="x-api-key"');
  });

  it('alternatives: a token or an API key; {} makes authentication optional', async () => {
    const e = await build(config());
    const { key } = keys.create({ api: 'orders', scopes: ['read'] });
    assert.equal((await run(e, 'GET', '/mixed', { authorization: `Bearer ${token}` })).rejection, undefined);
    assert.equal((await run(e, 'GET', '/mixed', { 'x-partner-key': key })).rejection, undefined);
    const none = (await run(e, 'GET', '/mixed')).rejection;
    assert.equal(none?.problem.detail, 'Send an access token in the Authorization header (Bearer) or an API key in the x-partner-key header.');
    assert.deepEqual(challengeOf(none), ['Bearer realm="orders"', 'ApiKey realm="orders", header="x-partner-key"']);

    const anon = await run(e, 'GET', '/catalog');
    assert.equal(anon.rejection, undefined);
    assert.equal(anon.ctx.identity, undefined);
    const named = await run(e, 'GET', '/catalog', { authorization: `Bearer ${token}` });
    assert.equal(named.rejection, undefined);
    assert.equal(named.ctx.upstreamHeaders.get('x-rampart-subject'), op.clientId);
    assert.equal((await run(e, 'GET', '/catalog', { authorization: 'Bearer not-a-token' })).rejection?.problem.status, 401);
  });

  it('mutualTLS: the transport identity (method mtls) suffices; without it, 403 client-certificate-required', async () => {
    const e = await build(config({ require: { scopes: [] } }));
    const ctx = makeCtx({}, '/internal');
    ctx.identity = { subject: 'spiffe://example.org/billing', scopes: [], methods: ['mtls'], claims: {} };
    assert.equal(await e.run(ctx), undefined);
    assert.equal(ctx.identity?.subject, 'spiffe://example.org/billing');
    assert.equal(ctx.upstreamHeaders.get('x-rampart-subject'), 'spiffe://example.org/billing');
    const r = (await run(e, 'GET', '/internal')).rejection;
    assert.equal(r?.problem.status, 403);
    assert.equal(r?.problem.code, 'client-certificate-required');
    assert.equal(challengeOf(r), undefined);
    const t = (await run(e, 'GET', '/internal', { authorization: `Bearer ${token}` })).rejection;
    assert.deepEqual([t?.problem.status, t?.problem.code], [403, 'credentials-not-accepted']);
  });

  it('unmatched paths and undocumented methods keep the API-wide behaviour (every provider; contract answers 404/405 later)', async () => {
    const e = await build(config());
    const { key } = keys.create({ api: 'orders', scopes: ['read'] });
    for (const [m, p] of [
      ['GET', '/debug/config'],
      ['DELETE', '/status'],
      ['GET', '/status/'],
      ['GET', '/STATUS'],
    ] as const) {
      const none = (await run(e, m, p)).rejection;
      assert.equal(none?.problem.code, 'credentials-missing', `${m} ${p}`);
      assert.deepEqual(challengeOf(none), ['Bearer realm="orders"', 'ApiKey realm="orders", header="x-api-key"']);
      assert.equal((await run(e, m, p, { authorization: `Bearer ${token}` })).rejection, undefined);
      assert.equal((await run(e, m, p, { 'x-api-key': key })).rejection, undefined);
    }
  });

  it('the operations map overrides the document: public, or a provider list', async () => {
    const e = await build(
      config({
        operations: { listOrders: { public: true }, getLegacy: { providers: ['api_key'] }, getReport: { providers: ['jwt', 'api_key'] } },
      }),
    );
    assert.equal((await run(e, 'GET', '/orders')).rejection, undefined);
    const { key } = keys.create({ api: 'orders', scopes: ['read'] });
    // getLegacy has no apiKey scheme in the document: the configured location (x-api-key).
    assert.equal((await run(e, 'GET', '/legacy', { 'x-api-key': key })).rejection, undefined);
    const b = (await run(e, 'GET', '/legacy', { authorization: `Bearer ${token}` })).rejection;
    assert.equal(b?.problem.code, 'credentials-not-accepted');
    assert.equal(challengeOf(b), 'ApiKey realm="orders", header="x-api-key"');
    // getReport: its document location (x-partner-key) and tokens.
    assert.equal((await run(e, 'GET', '/reports/1', { authorization: `Bearer ${token}` })).rejection, undefined);
    assert.equal((await run(e, 'GET', '/reports/1', { 'x-partner-key': key })).rejection, undefined);
  });

  it('base_path: the document is served under a prefix', async () => {
    const e = await build(config({ base_path: '/v1' }));
    assert.equal((await run(e, 'GET', '/v1/status')).rejection, undefined);
    assert.equal((await run(e, 'GET', '/status')).rejection?.problem.code, 'credentials-missing');
    assert.equal((await run(e, 'GET', '/v1/orders')).rejection?.problem.code, 'credentials-missing');
  });

  it('the demo document: GET /health is public, GET /users/{id} needs a token', async () => {
    const e = await build({ openapi: DEMO, providers: { jwt: { issuer: op.issuer, audiences: [op.audience] } }, require: { scopes: ['read'] } });
    assert.equal((await run(e, 'GET', '/health')).rejection, undefined);
    assert.equal((await run(e, 'GET', '/users/1002')).rejection?.problem.code, 'credentials-missing');
    assert.equal((await run(e, 'GET', '/users/1002', { authorization: `Bearer ${token}` })).rejection, undefined);
  });

  it('configuration errors name the setting, the operation and the JSON pointer', async () => {
    const write = (name: string, body: string): string => {
      const f = join(dir, name);
      writeFileSync(f, body);
      return f;
    };
    const head = 'openapi: 3.1.0\ninfo: { title: t, version: "1" }\n';
    const jwtOnly = { jwt: { issuer: op.issuer, audiences: [op.audience] } };
    const fail = async (cfg: IdentityConfigInput, message: string | RegExp) => {
      await assert.rejects(engine(cfg, makeEnv('orders', dir)), typeof message === 'string' ? { message } : message);
    };
    const cookie = write(
      'cookie.yaml',
      `${head}paths:\n  /a:\n    get:\n      operationId: a\n      security: [{ c: [] }]\n      responses: { '200': { description: x } }\ncomponents:\n  securitySchemes:\n    c: { type: apiKey, in: cookie, name: sid }\n`,
    );
    await fail(
      { openapi: cookie, providers: { api_key: { database: 'keys.db', pepper_env: 'RAMPART_TEST_OPENAPI_PEPPER' } } },
      `${cookie}: at /components/securitySchemes/c/in: API keys in "cookie" are not supported (header or query; or set providers.api_key.header to override the document)`,
    );
    const unknown = write(
      'unknown.yaml',
      `${head}paths:\n  /a:\n    get:\n      operationId: a\n      security: [{ nope: [] }]\n      responses: { '200': { description: x } }\n`,
    );
    await fail(
      { openapi: unknown, providers: jwtOnly },
      `${unknown}: operation "a" (/paths/~1a/get/security/0): unknown security scheme "nope" (not in components.securitySchemes)`,
    );
    await fail(
      { openapi: FIXTURE, providers: jwtOnly },
      `${FIXTURE}: operation "getReport" (/paths/~1reports~1{id}/get/security): none of its security requirements can be met by the configured providers ([partnerKey]: needs providers.api_key); configure a provider or override the operation under operations`,
    );
    await fail(
      { openapi: FIXTURE, providers: jwtOnly, operations: { getReport: { public: true }, getExport: { providers: ['api_key'] } } },
      'operations.getExport.providers: provider "api_key" is not configured under providers',
    );
    await fail(
      { openapi: FIXTURE, providers: jwtOnly, operations: { nope: { public: true } } },
      `operations.nope: no operation with this operationId in ${FIXTURE}`,
    );
    await fail({ providers: jwtOnly, operations: { a: { public: true } } }, 'operations: overriding operations needs "openapi"');
    await fail({ openapi: join(dir, 'missing.yaml'), providers: jwtOnly }, `openapi: ${join(dir, 'missing.yaml')}: at (document): file not found`);
  });

  it('no security declared anywhere: the API-wide behaviour (only an explicit declaration opens an operation)', async () => {
    const f = join(dir, 'undeclared.yaml');
    writeFileSync(
      f,
      'openapi: 3.0.3\ninfo: { title: t, version: "1" }\npaths:\n  /a:\n    get:\n      operationId: a\n      responses: { "200": { description: x } }\n',
    );
    const e = await build({ openapi: f, providers: { jwt: { issuer: op.issuer, audiences: [op.audience] } } });
    assert.equal((await run(e, 'GET', '/a')).rejection?.problem.code, 'credentials-missing');
  });
});
