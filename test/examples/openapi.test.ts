/**
 * examples/openapi.yaml: parses, has the structure the gateway relies on (operationIds, scopes,
 * closed request bodies, public-only user schema), and every documented operation is served by
 * the demo upstream, whose responses match the schemas except where the upstream deliberately
 * over-exposes.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { parse } from 'yaml';
import { startDemoUpstream } from '../../examples/demo-upstream.ts';
import type { DemoUpstream } from '../../examples/demo-upstream.ts';

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'] as const;

// biome-ignore lint/suspicious/noExplicitAny: a parsed YAML document is untyped by nature.
const doc: any = parse(readFileSync(new URL('../../examples/openapi.yaml', import.meta.url), 'utf8'));

interface Op {
  path: string;
  method: string;
  // biome-ignore lint/suspicious/noExplicitAny: OpenAPI operation object.
  op: any;
}

function operations(): Op[] {
  const out: Op[] = [];
  for (const [path, item] of Object.entries<Record<string, unknown>>(doc.paths)) {
    for (const method of METHODS) if (item[method]) out.push({ path, method, op: item[method] });
  }
  return out;
}

/** Scopes an operation requires (its own `security`, else the document's). */
function scopes(op: Op['op']): string[] {
  const security: Array<Record<string, string[]>> = op.security ?? doc.security ?? [];
  return security.flatMap((req) => Object.values(req).flat());
}

/** Validator for `#/components/schemas/<name>` (formats are not asserted). */
function validator(name: string): (data: unknown) => boolean {
  const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
  ajv.addSchema({ $id: 'https://rampart.test/openapi.json', components: doc.components });
  return ajv.compile({ $ref: `https://rampart.test/openapi.json#/components/schemas/${name}` });
}

describe('examples/openapi.yaml', () => {
  it('is an OpenAPI 3.1.0 document with an oauth2 scheme and its three scopes', () => {
    assert.equal(doc.openapi, '3.1.0');
    assert.ok(doc.info.title && doc.info.version);
    const oauth = doc.components.securitySchemes.oauth;
    assert.equal(oauth.type, 'oauth2');
    assert.deepEqual(Object.keys(oauth.flows.clientCredentials.scopes).sort(), ['accounts:read', 'accounts:write', 'admin']);
  });

  it('has a unique operationId and an explicit security on every operation', () => {
    const ids = operations().map((o) => o.op.operationId);
    assert.ok(ids.every((id) => typeof id === 'string' && id.length > 0));
    assert.equal(new Set(ids).size, ids.length);
    for (const { path, method, op } of operations()) assert.ok(Array.isArray(op.security), `${method} ${path}`);
  });

  it('requires the admin scope exactly on the admin operations', () => {
    const adminOps = operations()
      .filter((o) => scopes(o.op).includes('admin'))
      .map((o) => `${o.method.toUpperCase()} ${o.path}`)
      .sort();
    assert.deepEqual(adminOps, ['DELETE /users/{id}', 'GET /admin/users']);
    const health = operations().find((o) => o.path === '/health');
    assert.deepEqual(health?.op.security, []);
  });

  it('declares only public user fields, closed request bodies and bounded paging', () => {
    const s = doc.components.schemas;
    assert.deepEqual(Object.keys(s.User.properties).sort(), ['address', 'email', 'id', 'name', 'phone']);
    assert.equal(s.User.properties.id.readOnly, true);
    for (const name of ['UserCreate', 'TransferRequest', 'Address']) assert.equal(s[name].additionalProperties, false, name);
    for (const { op } of operations()) {
      const schema = op.requestBody?.content?.['application/json']?.schema;
      if (!schema) continue;
      const target = s[String(schema.$ref).split('/').pop() as string];
      assert.equal(target.additionalProperties, false, schema.$ref);
    }
    assert.equal(doc.components.parameters.Limit.schema.maximum, 100);
    assert.equal(doc.components.parameters.UserId.schema.type, 'integer');
    assert.ok('ssn' in s.TaxProfile.properties);
    assert.equal(doc.paths['/debug/config'], undefined);
    assert.equal(doc.paths['/export/users'], undefined);
  });

  it('rejects a mass-assignment body and accepts a clean one (schema sanity)', () => {
    const validate = validator('UserCreate');
    assert.equal(validate({ name: 'A', email: 'a@example.com' }), true);
    assert.equal(validate({ name: 'A', email: 'a@example.com', role: 'admin' }), false);
    const transfer = validator('TransferRequest');
    assert.equal(transfer({ from_account: 5001, to_account: 5002, amount: 10, currency: 'USD' }), true);
    assert.equal(transfer({ from_account: 5001, to_account: 5002, amount: -10, currency: 'USD' }), false);
  });
});

describe('examples/openapi.yaml against the demo upstream', () => {
  let up: DemoUpstream;

  before(async () => {
    up = await startDemoUpstream({ port: 0 });
  });
  after(async () => {
    await up.close();
  });

  it('every documented operation is served (2xx) for a sample id', async () => {
    const usd = [...up.data.accounts.values()].filter((a) => a.currency === 'USD' && a.balance > 100);
    const bodies: Record<string, unknown> = {
      'POST /users': { name: 'Doc Sample', email: 'doc.sample@example.com' },
      'POST /transfers': { from_account: usd[0]?.id, to_account: usd[1]?.id, amount: 1, currency: 'USD' },
    };
    // DELETE last, on its own id, so it does not break the GETs.
    const ops = operations().sort((a, b) => Number(a.method === 'delete') - Number(b.method === 'delete'));
    for (const { path, method, op } of ops) {
      const key = `${method.toUpperCase()} ${path}`;
      const sampleId = method === 'delete' ? '1050' : path.startsWith('/accounts') ? '5001' : '1002';
      const url = `${up.url}${path.replace('{id}', sampleId)}`;
      const body = bodies[key];
      const res = await fetch(url, {
        method: method.toUpperCase(),
        headers: body ? { 'content-type': 'application/json' } : {},
        body: body ? JSON.stringify(body) : undefined,
      });
      await res.arrayBuffer();
      const documented = Object.keys(op.responses).filter((c) => c.startsWith('2'));
      assert.ok(documented.includes(String(res.status)), `${key} (${op.operationId}) answered ${res.status}`);
    }
  });

  it('responses match their schemas, except users which over-expose on purpose', async () => {
    const get = async (path: string): Promise<unknown> => (await fetch(`${up.url}${path}`)).json();
    assert.ok(validator('Health')(await get('/health')));
    assert.ok(validator('Account')(await get('/accounts/5001')));
    assert.ok(validator('TransactionList')(await get('/accounts/5001/transactions')));
    assert.ok(validator('AccountList')(await get('/users/1003/accounts')));
    assert.ok(validator('TaxProfile')(await get('/users/1002/tax-profile')));

    const user = (await get('/users/1002')) as Record<string, unknown>;
    assert.equal(validator('User')(user), false, 'the upstream sends undeclared fields');
    const publicView = Object.fromEntries(Object.entries(user).filter(([k]) => k in doc.components.schemas.User.properties));
    assert.ok(validator('User')(publicView), 'the declared fields alone are valid');
  });
});
