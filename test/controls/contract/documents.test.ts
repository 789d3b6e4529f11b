/**
 * Real documents: the demo document (3.1), the Swagger Petstore 3.0 document and VAmPI (vendored
 * in test/fixtures/openapi), and the large real documents of ../shared/corpora/openapi when that
 * directory exists (GitHub, Stripe, Slack, crAPI). Every documented path template routes to its
 * own operation, and sampled undocumented paths and methods are blocked.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { contractSchema, createContract } from '../../../src/controls/contract/index.ts';
import { HTTP_METHODS } from '../../../src/openapi/compile.ts';
import { ROOT } from '../../helpers/gateway.ts';
import { makeCtx } from './util.ts';

const CORPUS = join(ROOT, '../shared/corpora/openapi');
const DOCS: [string, string][] = [
  ['demo (3.1)', join(ROOT, 'examples/openapi.yaml')],
  ['Swagger Petstore (3.0)', join(ROOT, 'test/fixtures/openapi/petstore.yaml')],
  ['VAmPI (3.0)', join(ROOT, 'test/fixtures/openapi/vampi.yml')],
  ...['crapi.json', 'slack.json', 'stripe.json', 'github.json']
    .filter((f) => existsSync(join(CORPUS, f)))
    .map((f): [string, string] => [`corpus ${f}`, join(CORPUS, f)]),
];

/** A concrete path for a template: every expression replaced by a value no literal segment uses. */
function fill(template: string): string {
  return template.replace(/\{[^}]+\}/g, 'zq9');
}

for (const [name, file] of DOCS) {
  describe(`documents: ${name}`, () => {
    it('every documented path template routes to its own operation; other methods get 405; sampled undocumented paths 404', async () => {
      const c = await createContract(contractSchema.parse({ openapi: file }), ROOT);
      const ops = c.doc.operations;
      assert.ok(ops.length > 0);
      let routed = 0;
      for (const op of ops) {
        const path = fill(op.template);
        const m = c.doc.router.match(path);
        assert.equal(m?.template, op.template, `${op.method} ${op.template} routed to ${m?.template}`);
        assert.equal(m?.methods.get(op.method), op, `${op.method} ${op.template}`);
        routed++;
      }
      assert.equal(routed, ops.length);
      // Through the request check: methods the path does not document → 405 with Allow.
      const seen = new Set<string>();
      for (const op of ops) {
        if (seen.has(op.template)) continue;
        seen.add(op.template);
        const m = c.doc.router.match(fill(op.template));
        const other = HTTP_METHODS.map((x) => x.toUpperCase()).find((x) => !m?.methods.has(x) && x !== 'HEAD');
        if (other === undefined) continue;
        const r = await c.checkRequest(makeCtx(other, fill(op.template)));
        assert.equal(r?.problem.status, 405, `${other} ${op.template}`);
        assert.equal(r?.problem.code, 'method-undocumented');
        // Undocumented: an extra segment under a documented path (unless another template covers it).
        const deeper = `${fill(op.template).replace(/\/$/, '')}/zz-undocumented`;
        const dm = c.doc.router.match(deeper);
        if (dm === undefined) assert.equal((await c.checkRequest(makeCtx('GET', deeper)))?.problem.code, 'operation-undocumented', deeper);
      }
      for (const p of ['/debug/config', '/.env', '/admin.php', '/actuator/env', '/zz-undocumented']) {
        if (c.doc.router.match(p) !== undefined) continue;
        assert.equal((await c.checkRequest(makeCtx('GET', p)))?.problem.status, 404, p);
      }
    });
  });
}

describe('documents: Swagger Petstore specifics', () => {
  it('checks the documented rules (enum query, int64 path, required body properties, form bodies)', async () => {
    const c = await createContract(contractSchema.parse({ openapi: join(ROOT, 'test/fixtures/openapi/petstore.yaml'), base_path: '/api/v3' }), ROOT);
    assert.equal(await c.checkRequest(makeCtx('GET', '/api/v3/pet/findByStatus?status=sold')), undefined);
    assert.equal((await c.checkRequest(makeCtx('GET', '/api/v3/pet/findByStatus?status=lost')))?.problem.code, 'parameter-invalid');
    assert.equal(await c.checkRequest(makeCtx('GET', '/api/v3/pet/findByTags?tags=a&tags=b')), undefined);
    assert.equal((await c.checkRequest(makeCtx('GET', '/api/v3/pet/doggie')))?.problem.code, 'parameter-invalid');
    const json = { 'content-type': 'application/json' };
    assert.equal(await c.checkRequest(makeCtx('POST', '/api/v3/pet', { headers: json, body: JSON.stringify({ name: 'rex', photoUrls: [] }) })), undefined);
    const missing = await c.checkRequest(makeCtx('POST', '/api/v3/pet', { headers: json, body: JSON.stringify({ name: 'rex' }) }));
    assert.deepEqual(missing?.problem.extensions.errors, [
      { location: 'body', kind: 'missing', pointer: '/photoUrls', keyword: 'required', message: 'is required' },
    ]);
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    assert.equal(await c.checkRequest(makeCtx('POST', '/api/v3/pet', { headers: form, body: 'name=rex&photoUrls[]=a&id=7&category[name]=Dogs' })), undefined);
    assert.equal(
      (await c.checkRequest(makeCtx('POST', '/api/v3/pet', { headers: form, body: 'name=rex&photoUrls[]=a&id=seven' })))?.problem.code,
      'body-invalid',
    );
    // XML is documented: accepted without schema validation.
    assert.equal(await c.checkRequest(makeCtx('POST', '/api/v3/pet', { headers: { 'content-type': 'application/xml' }, body: '<pet/>' })), undefined);
    assert.equal((await c.checkRequest(makeCtx('POST', '/api/v3/pet', { headers: { 'content-type': 'text/plain' }, body: 'x' })))?.problem.status, 415);
  });
});
