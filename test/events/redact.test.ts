import assert from 'node:assert/strict';
import { test } from 'node:test';
import { REDACTED, Redactor } from '../../src/events/redact.ts';

test('secret headers, secret-named string values and embedded credentials are redacted; counts are not', () => {
  const r = new Redactor(['x-custom-key']);
  const out = r.value({
    headers: { authorization: 'Bearer abc.def.ghi', cookie: 'a=b', 'x-custom-key': 'k', accept: 'json' },
    password: 'hunter2',
    message: 'failed with Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig attached',
    url: '/login?user=bob&access_token=SECRET&x=1',
    counts: { aws_access_key: 1, api_key: 3 },
    nested: [{ client_secret: 's3cr3t', kid: 'key-1' }],
  });
  assert.deepEqual(out, {
    headers: { authorization: REDACTED, cookie: REDACTED, 'x-custom-key': REDACTED, accept: 'json' },
    password: REDACTED,
    message: `failed with Bearer ${REDACTED} attached`,
    url: `/login?user=bob&access_token=${REDACTED}&x=1`,
    // Regression: numeric detail values under key-like names (DLP counts) were redacted.
    counts: { aws_access_key: 1, api_key: 3 },
    nested: [{ client_secret: REDACTED, kid: 'key-1' }],
  });
});

test('paths keep non-secret parameters and redact secret ones, percent-encoded names included', () => {
  const r = new Redactor();
  assert.equal(r.path('/a?token=x&page=2'), `/a?token=${REDACTED}&page=2`);
  assert.equal(r.path('/a?api%5Fkey=x'), `/a?api%5Fkey=${REDACTED}`);
  assert.equal(r.path('/a?q=1'), '/a?q=1');
  assert.equal(r.path('/a'), '/a');
});

test('detection snippets found in credentials are redacted, others kept', () => {
  const r = new Redactor();
  const ev = (location: string) => r.value({ detector: 'sqli', location, snippet: "secretsid' or '1'='1" }) as { snippet: string };
  for (const loc of ['cookie:sid', 'header:authorization', 'header:x-api-key', 'query:api_key', 'body:/user/password', 'form:token', 'query:session_id']) {
    assert.equal(ev(loc).snippet, REDACTED, loc);
  }
  for (const loc of ['query:q', 'body:/comment', 'path', 'header:user-agent']) {
    assert.equal(ev(loc).snippet, "secretsid' or '1'='1", loc);
  }
});
