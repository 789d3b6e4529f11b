/**
 * Contract control: routing, parameters, bodies, mass assignment, modes and response filtering,
 * against the demo document (examples/openapi.yaml, OpenAPI 3.1) and small inline documents.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, it } from 'node:test';
import { contractSchema, createContract, type ContractConfigInput } from '../../../src/controls/contract/index.ts';
import { requestFacts } from '../../../src/openapi/http.ts';
import type { Rejection } from '../../../src/pipeline/verdict.ts';
import { ROOT } from '../../helpers/gateway.ts';
import { bodyText, makeCtx, makeResponse } from './util.ts';

const DEMO = join(ROOT, 'examples/openapi.yaml');

async function engine(cfg: Partial<ContractConfigInput> = {}) {
  return createContract(contractSchema.parse({ openapi: DEMO, ...cfg }), ROOT);
}

function errorsOf(r: Rejection | undefined): unknown {
  return r?.problem.extensions.errors;
}

describe('contract: routing', () => {
  it('sets ctx.operation for a documented operation and continues', async () => {
    const c = await engine();
    const ctx = makeCtx('GET', '/users/1002');
    assert.equal(await c.checkRequest(ctx), undefined);
    assert.deepEqual(ctx.operation, { id: 'getUser', template: '/users/{id}', params: { id: '1002' } });
  });

  it('refuses an undocumented path with 404 operation-undocumented', async () => {
    const c = await engine();
    const r = await c.checkRequest(makeCtx('GET', '/debug/config'));
    assert.equal(r?.problem.status, 404);
    assert.equal(r?.problem.code, 'operation-undocumented');
  });

  it('refuses an undocumented method with 405 and Allow', async () => {
    const c = await engine();
    const r = await c.checkRequest(makeCtx('PUT', '/users/1002'));
    assert.equal(r?.problem.status, 405);
    assert.equal(r?.problem.code, 'method-undocumented');
    assert.equal(r?.problem.headers.allow, 'GET, DELETE, HEAD');
  });

  it('routes HEAD to the GET operation', async () => {
    const c = await engine();
    const ctx = makeCtx('HEAD', '/accounts/5001');
    assert.equal(await c.checkRequest(ctx), undefined);
    assert.equal(ctx.operation?.id, 'getAccount');
  });

  it('prefers a concrete path over a template, and honours base_path', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'contract-'));
    const file = join(dir, 'doc.yaml');
    writeFileSync(
      file,
      `openapi: 3.0.3
info: {title: t, version: '1'}
paths:
  /users/{id}:
    get: {operationId: byId, parameters: [{name: id, in: path, required: true, schema: {type: string}}], responses: {'200': {description: ok}}}
  /users/me:
    get: {operationId: me, responses: {'200': {description: ok}}}
  /files/{name}.{ext}:
    get:
      operationId: file
      parameters:
        - {name: name, in: path, required: true, schema: {type: string}}
        - {name: ext, in: path, required: true, schema: {type: string, enum: [txt, md]}}
      responses: {'200': {description: ok}}
`,
    );
    const c = await createContract(contractSchema.parse({ openapi: file, base_path: '/api' }), dir);
    const me = makeCtx('GET', '/api/users/me');
    assert.equal(await c.checkRequest(me), undefined);
    assert.equal(me.operation?.id, 'me');
    const byId = makeCtx('GET', '/api/users/m%C3%A9');
    assert.equal(await c.checkRequest(byId), undefined);
    assert.deepEqual(byId.operation?.params, { id: 'mé' });
    const f = makeCtx('GET', '/api/files/report.final.md');
    assert.equal(await c.checkRequest(f), undefined);
    assert.deepEqual(f.operation?.params, { name: 'report.final', ext: 'md' });
    assert.equal((await c.checkRequest(makeCtx('GET', '/users/me')))?.problem.code, 'operation-undocumented');
    assert.equal((await c.checkRequest(makeCtx('GET', '/api/users/me/')))?.problem.code, 'operation-undocumented');
    assert.equal((await c.checkRequest(makeCtx('GET', '/api/files/a.exe')))?.problem.code, 'parameter-invalid');
  });
});

describe('contract: parameters', () => {
  it('refuses an undeclared query parameter', async () => {
    const c = await engine();
    const r = await c.checkRequest(makeCtx('GET', '/users?limit=10&admin=true'));
    assert.equal(r?.problem.status, 400);
    assert.equal(r?.problem.code, 'parameter-undeclared');
    assert.deepEqual(errorsOf(r), [{ location: 'query', kind: 'undeclared', name: 'admin', message: 'is not declared by the operation' }]);
  });

  it('lists every type and range violation with its location', async () => {
    const c = await engine();
    const r = await c.checkRequest(makeCtx('GET', '/users/abc/accounts?limit=1000&offset=-1'));
    assert.equal(r?.problem.code, 'parameter-invalid');
    assert.deepEqual(errorsOf(r), [
      { location: 'path', kind: 'invalid', name: 'id', keyword: 'type', message: 'must be of type integer' },
      { location: 'query', kind: 'invalid', name: 'limit', keyword: 'maximum', message: 'must be <= 100' },
      { location: 'query', kind: 'invalid', name: 'offset', keyword: 'minimum', message: 'must be >= 0' },
    ]);
  });

  it('publishes coerced parameter values for later stages', async () => {
    const c = await engine();
    const ctx = makeCtx('GET', '/users/1002/accounts?limit=10');
    assert.equal(await c.checkRequest(ctx), undefined);
    assert.deepEqual(requestFacts.get(ctx), { params: { path: { id: 1002 }, query: { limit: 10 }, header: {}, cookie: {} }, body: undefined });
  });

  it('deserializes style/explode: form arrays, deepObject, label, matrix, headers, cookies', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'contract-'));
    const file = join(dir, 'doc.json');
    writeFileSync(
      file,
      JSON.stringify({
        openapi: '3.1.0',
        info: { title: 't', version: '1' },
        paths: {
          '/a/{lab}/{mat}': {
            get: {
              operationId: 'a',
              parameters: [
                { name: 'lab', in: 'path', required: true, style: 'label', explode: true, schema: { type: 'array', items: { type: 'integer' } } },
                { name: 'mat', in: 'path', required: true, style: 'matrix', schema: { type: 'integer', maximum: 5 } },
                { name: 'ids', in: 'query', schema: { type: 'array', items: { type: 'integer' }, maxItems: 3 } },
                { name: 'tags', in: 'query', style: 'pipeDelimited', explode: false, schema: { type: 'array', items: { type: 'string', enum: ['x', 'y'] } } },
                {
                  name: 'filter',
                  in: 'query',
                  style: 'deepObject',
                  schema: { type: 'object', properties: { min: { type: 'integer' } }, additionalProperties: false },
                },
                { name: 'X-Trace', in: 'header', required: true, schema: { type: 'string', pattern: '^[a-f0-9]{4}$' } },
                { name: 'session', in: 'cookie', required: true, schema: { type: 'string', minLength: 3 } },
              ],
              responses: { '200': { description: 'ok' } },
            },
          },
        },
      }),
    );
    const c = await createContract(contractSchema.parse({ openapi: file }), dir);
    const good = makeCtx('GET', '/a/.1.2/;mat=4?ids=1&ids=2&tags=x|y&filter[min]=3', { headers: { 'x-trace': 'ab12', cookie: 'a=b; session=xyz' } });
    assert.equal(await c.checkRequest(good), undefined);
    const bad = makeCtx('GET', '/a/.1.z/;mat=9?ids=1&ids=2&ids=3&ids=4&tags=x|q&filter[max]=3', { headers: { 'x-trace': 'nothex', cookie: 'session=x' } });
    const r = await c.checkRequest(bad);
    // `filter[max]` is a property the deepObject parameter does not declare.
    assert.equal(r?.problem.code, 'parameter-undeclared');
    assert.deepEqual(
      (errorsOf(r) as { location: string; name: string; pointer?: string; keyword: string }[]).map(
        (e) => `${e.location}:${e.name}${e.pointer ?? ''}:${e.keyword}`,
      ),
      [
        'path:lab/1:type',
        'path:mat:maximum',
        'query:ids:maxItems',
        'query:tags/1:enum',
        'query:filter/max:additionalProperties',
        'header:x-trace:pattern',
        'cookie:session:minLength',
      ],
    );
    const missing = await c.checkRequest(makeCtx('GET', '/a/.1/;mat=1'));
    assert.deepEqual(
      (errorsOf(missing) as { location: string; name: string; kind: string }[]).map((e) => `${e.location}:${e.name}:${e.kind}`),
      ['header:x-trace:missing', 'cookie:session:missing'],
    );
  });
});

describe('contract: request bodies', () => {
  const json = { 'content-type': 'application/json' };

  it('accepts a valid body', async () => {
    const c = await engine();
    const ctx = makeCtx('POST', '/users', { headers: json, body: JSON.stringify({ name: 'Ada', email: 'ada@example.com' }) });
    assert.equal(await c.checkRequest(ctx), undefined);
  });

  it('refuses mass assignment: an undeclared property, with its JSON pointer', async () => {
    const c = await engine();
    const r = await c.checkRequest(
      makeCtx('POST', '/users', { headers: json, body: JSON.stringify({ name: 'Ada', email: 'ada@example.com', role: 'admin' }) }),
    );
    assert.equal(r?.problem.status, 400);
    assert.equal(r?.problem.code, 'mass-assignment');
    assert.equal(r?.severity, 'high');
    assert.deepEqual(errorsOf(r), [
      { location: 'body', kind: 'undeclared', pointer: '/role', keyword: 'additionalProperties', message: 'is not declared in the schema' },
    ]);
  });

  it('lists every body violation with its pointer', async () => {
    const c = await engine();
    const r = await c.checkRequest(
      makeCtx('POST', '/transfers', { headers: json, body: JSON.stringify({ from_account: 0, to_account: 5002, amount: -5, currency: 'XXX' }) }),
    );
    assert.equal(r?.problem.code, 'body-invalid');
    assert.deepEqual(
      (errorsOf(r) as { pointer: string; keyword: string }[]).map((e) => `${e.pointer}:${e.keyword}`),
      ['/from_account:minimum', '/amount:exclusiveMinimum', '/currency:enum'],
    );
  });

  it('refuses a missing body, invalid JSON, a wrong Content-Type (415) and a body on a body-less operation', async () => {
    const c = await engine();
    assert.equal((await c.checkRequest(makeCtx('POST', '/users')))?.problem.code, 'body-missing');
    const bad = await c.checkRequest(makeCtx('POST', '/users', { headers: json, body: '{"name":' }));
    assert.equal(bad?.problem.code, 'body-invalid');
    assert.deepEqual(errorsOf(bad), [{ location: 'body', kind: 'malformed', message: 'is not valid JSON' }]);
    const r415 = await c.checkRequest(makeCtx('POST', '/users', { headers: { 'content-type': 'text/xml' }, body: '<a/>' }));
    assert.equal(r415?.problem.status, 415);
    assert.equal(r415?.problem.code, 'media-type-unsupported');
    assert.deepEqual(r415?.problem.extensions.supported, ['application/json']);
    const get = await c.checkRequest(makeCtx('GET', '/users/1002', { headers: json, body: '{}' }));
    assert.equal(get?.problem.code, 'mass-assignment');
  });

  it('refuses a readOnly property in a request (OpenAPI 3.0, nullable and boolean exclusiveMinimum)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'contract-'));
    const file = join(dir, 'doc.yaml');
    writeFileSync(
      file,
      `openapi: 3.0.3
info: {title: t, version: '1'}
paths:
  /items:
    post:
      operationId: createItem
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: '#/components/schemas/Item'}
      responses:
        '201':
          description: created
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Item'}
components:
  schemas:
    Base:
      type: object
      required: [id]
      properties:
        id: {type: integer, readOnly: true}
    Item:
      allOf:
        - $ref: '#/components/schemas/Base'
        - type: object
          required: [price]
          properties:
            price: {type: number, minimum: 0, exclusiveMinimum: true}
            note: {type: string, nullable: true}
            secret: {type: string, writeOnly: true}
`,
    );
    const c = await createContract(contractSchema.parse({ openapi: file }), dir);
    const ok = makeCtx('POST', '/items', { headers: json, body: JSON.stringify({ price: 1, note: null, secret: 's' }) });
    assert.equal(await c.checkRequest(ok), undefined);
    const r = await c.checkRequest(makeCtx('POST', '/items', { headers: json, body: JSON.stringify({ id: 7, price: 0, extra: 1 }) }));
    assert.equal(r?.problem.code, 'mass-assignment');
    assert.deepEqual(
      (errorsOf(r) as { pointer: string; kind: string }[]).map((e) => `${e.pointer}:${e.kind}`),
      ['/id:read-only', '/price:invalid', '/extra:undeclared'],
    );
    // Response: writeOnly `secret` and undeclared `internal` are stripped; readOnly `id` stays.
    const ctx = makeCtx('POST', '/items', { headers: json, body: JSON.stringify({ price: 2 }) });
    assert.equal(await c.checkRequest(ctx), undefined);
    const res = makeResponse(201, { id: 1, price: 2, note: null, secret: 's', internal: 'x' });
    assert.equal(await c.checkResponse(ctx, res), undefined);
    assert.deepEqual(JSON.parse(await bodyText(res)), { id: 1, price: 2, note: null });
    assert.deepEqual(
      ctx.events.map((e) => [e.reason, e.action, e.details?.pointers]),
      [['response-properties-stripped', 'redact', ['/internal', '/secret']]],
    );
  });
});

describe('contract: modes', () => {
  it('monitor lets violations through and emits one event each', async () => {
    const c = await engine({ mode: 'monitor' });
    const ctx = makeCtx('GET', '/debug/config');
    assert.equal(await c.checkRequest(ctx), undefined);
    assert.deepEqual(
      ctx.events.map((e) => [e.control, e.reason, e.action]),
      [['contract', 'operation-undocumented', 'monitor']],
    );
  });

  it('a per-operation override puts one operation in monitor mode', async () => {
    const c = await engine({ operations: { listUsers: { mode: 'monitor' } } });
    const ctx = makeCtx('GET', '/users?limit=5000');
    assert.equal(await c.checkRequest(ctx), undefined);
    assert.deepEqual(
      ctx.events.map((e) => [e.reason, e.action]),
      [['parameter-invalid', 'monitor']],
    );
    assert.equal((await c.checkRequest(makeCtx('GET', '/accounts/5001/transactions?limit=5000')))?.problem.code, 'parameter-invalid');
  });

  it('an override naming an unknown operation is a configuration error', async () => {
    await assert.rejects(engine({ operations: { nope: { mode: 'monitor' } } }), /operations\.nope: no operation with this operationId/);
  });
});

describe('contract: response filtering', () => {
  const user = { id: 1002, name: 'Ada', email: 'ada@example.com', phone: null, address: null };
  const leaked = { ...user, role: 'customer', password_hash: '$2b$12$x', ssn: '123-45-6789' };

  it('strips undeclared properties (nested in lists too) and reports the pointers', async () => {
    const c = await engine();
    const ctx = makeCtx('GET', '/users?limit=2');
    await c.checkRequest(ctx);
    const res = makeResponse(200, { items: [leaked, leaked], total: 2, limit: 2, offset: 0 });
    assert.equal(await c.checkResponse(ctx, res), undefined);
    assert.deepEqual(JSON.parse(await bodyText(res)), { items: [user, user], total: 2, limit: 2, offset: 0 });
    assert.equal(ctx.events.length, 1);
    assert.deepEqual(ctx.events[0]?.details, {
      status: 200,
      count: 6,
      pointers: ['/items/0/password_hash', '/items/0/role', '/items/0/ssn', '/items/1/password_hash', '/items/1/role', '/items/1/ssn'],
    });
  });

  it('decodes a gzip response before filtering and sends it identity-encoded', async () => {
    const c = await engine();
    const ctx = makeCtx('GET', '/users/1002');
    await c.checkRequest(ctx);
    const res = makeResponse(200, gzipSync(JSON.stringify(leaked)), { 'content-encoding': 'gzip' });
    assert.equal(await c.checkResponse(ctx, res), undefined);
    assert.equal(res.headers['content-encoding'], undefined);
    assert.deepEqual(JSON.parse(await bodyText(res)), user);
  });

  it('block mode answers 502 and sends nothing of the body', async () => {
    const c = await engine({ response: { filter: 'block' } });
    const ctx = makeCtx('GET', '/users/1002');
    await c.checkRequest(ctx);
    const r = await c.checkResponse(ctx, makeResponse(200, leaked));
    assert.equal(r?.problem.status, 502);
    assert.equal(r?.problem.code, 'response-properties-undeclared');
  });

  it('reports an undeclared status code and schema violations', async () => {
    const c = await engine();
    const ctx = makeCtx('GET', '/users/1002');
    await c.checkRequest(ctx);
    assert.equal(await c.checkResponse(ctx, makeResponse(418, {})), undefined);
    const ctx2 = makeCtx('GET', '/users/1002');
    await c.checkRequest(ctx2);
    assert.equal(await c.checkResponse(ctx2, makeResponse(200, { id: 'x', name: 'A' })), undefined);
    assert.deepEqual(
      [...ctx.events, ...ctx2.events].map((e) => [e.reason, e.action]),
      [
        ['response-status-undeclared', 'alert'],
        ['response-schema-violation', 'alert'],
      ],
    );
    assert.deepEqual(
      ((ctx2.events[0]?.details?.errors ?? []) as { pointer: string; keyword: string }[]).map((e) => `${e.pointer}:${e.keyword}`),
      ['/email:required', '/id:type'],
    );
  });

  it('a response too large to inspect is blocked by default', async () => {
    const c = await engine({ response: { max_body_bytes: 64 } });
    const ctx = makeCtx('GET', '/users/1002');
    await c.checkRequest(ctx);
    const r = await c.checkResponse(ctx, makeResponse(200, leaked));
    assert.equal(r?.problem.code, 'response-uninspectable');
  });
});

describe('contract: bad documents', () => {
  it('a YAML syntax error names the file and the line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'contract-'));
    writeFileSync(join(dir, 'bad.yaml'), 'openapi: 3.0.0\npaths:\n  /a: [\n');
    await assert.rejects(createContract(contractSchema.parse({ openapi: 'bad.yaml' }), dir), (e: Error) => {
      assert.match(e.message, /^openapi: .*bad\.yaml: at \(document\): invalid YAML at line \d+, column \d+/);
      return true;
    });
  });

  it('an unresolvable $ref names the JSON pointer', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'contract-'));
    writeFileSync(
      join(dir, 'doc.json'),
      JSON.stringify({
        openapi: '3.1.0',
        info: { title: 't', version: '1' },
        paths: {
          '/a': { get: { responses: { '200': { description: 'ok', content: { 'application/json': { schema: { $ref: '#/components/schemas/Nope' } } } } } } },
        },
      }),
    );
    await assert.rejects(createContract(contractSchema.parse({ openapi: 'doc.json' }), dir), {
      message: `openapi: ${join(dir, 'doc.json')}: at /paths/~1a/get/responses/200/content/application~1json/schema: unresolvable $ref "#/components/schemas/Nope"`,
    });
  });

  it('an invalid pattern is a compile error naming the schema', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'contract-'));
    writeFileSync(
      join(dir, 'doc.json'),
      JSON.stringify({
        openapi: '3.1.0',
        info: { title: 't', version: '1' },
        paths: {
          '/a': {
            get: { parameters: [{ name: 'q', in: 'query', schema: { type: 'string', pattern: '([a-z' } }], responses: { '200': { description: 'ok' } } },
          },
        },
      }),
    );
    await assert.rejects(
      createContract(contractSchema.parse({ openapi: 'doc.json' }), dir),
      /at \/paths\/~1a\/get\/parameters: the schema cannot be compiled: .*pattern|Invalid regular expression/,
    );
  });

  it('Swagger 2.0 and unknown versions are refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'contract-'));
    writeFileSync(join(dir, 's.json'), JSON.stringify({ swagger: '2.0', paths: {} }));
    await assert.rejects(createContract(contractSchema.parse({ openapi: 's.json' }), dir), /at \/swagger: Swagger 2\.0 is not supported/);
  });
});
