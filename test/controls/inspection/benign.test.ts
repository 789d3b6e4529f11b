/**
 * False-positive regression on legitimate API data: values from the Stripe and GitHub OpenAPI
 * documents (request-field examples, enum members and defaults, and `description` prose sent as a
 * free-text JSON body), vendored in test/fixtures/benign (MIT, see SOURCE.md). Every one passed at
 * paranoia levels 1, 2 and 3 when sampled and must keep passing at levels 1 and 2. The full
 * measurement is bench/inspection/benign.ts.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fieldRequest, inspectionStage, runStage, textRequest } from '../../../bench/inspection/benign-lib.ts';

interface Fixture {
  fields: { source: string; in: string; name: string; value: string }[];
  prose: { source: string; text: string }[];
}
const fixture = JSON.parse(readFileSync(new URL('../../fixtures/benign/values.json', import.meta.url), 'utf8')) as Fixture;

describe('inspection: legitimate API values pass (test/fixtures/benign)', () => {
  it('holds a sample of both kinds', () => {
    assert.ok(fixture.fields.length >= 50, `only ${fixture.fields.length} field values`);
    assert.ok(fixture.prose.length >= 50, `only ${fixture.prose.length} descriptions`);
  });
  for (const pl of [1, 2]) {
    it(`field values in their locations pass at paranoia level ${pl}`, async () => {
      const stage = await inspectionStage(pl);
      const blocked: string[] = [];
      for (const f of fixture.fields) {
        const o = await runStage(stage, fieldRequest(f));
        if (o.blocked) blocked.push(`${f.source} ${f.in}:${f.name} ${JSON.stringify(f.value.slice(0, 80))} -> ${o.code} ${JSON.stringify(o.hits)}`);
      }
      assert.deepEqual(blocked, []);
    });
    it(`descriptions as free-text bodies pass at paranoia level ${pl}`, async () => {
      const stage = await inspectionStage(pl);
      const blocked: string[] = [];
      for (const p of fixture.prose) {
        const o = await runStage(stage, textRequest(p.text));
        if (o.blocked) blocked.push(`${p.source} ${JSON.stringify(p.text.slice(0, 80))} -> ${o.code} ${JSON.stringify(o.hits)}`);
      }
      assert.deepEqual(blocked, []);
    });
  }
  it('a detection still blocks through the same driver (the harness is live)', async () => {
    const stage = await inspectionStage(1);
    const o = await runStage(stage, textRequest("x' UNION SELECT password FROM users--"));
    assert.equal(o.blocked, true);
    assert.equal(o.status, 403);
  });
});
