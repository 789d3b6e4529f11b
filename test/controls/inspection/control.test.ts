import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { inspectionControl } from '../../../src/controls/inspection/index.ts';
import type { RequestStage } from '../../../src/pipeline/stage.ts';
import { MemoryStore } from '../../../src/state/memory.ts';
import { inspectionStage, runInspection } from '../../helpers/inspection.ts';
import { settle } from '../../helpers/settle.ts';

interface Req {
  method?: string;
  target?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

const stageFor = inspectionStage;
const run = (stage: RequestStage, r: Req) => runInspection(stage, r);

const json = (o: unknown): Req => ({ body: typeof o === 'string' ? o : JSON.stringify(o), headers: { 'content-type': 'application/json' } });

describe('inspection control', () => {
  it('is on by default with a default config', () => {
    assert.deepEqual(inspectionControl.defaultConfig, {});
    const cfg = inspectionControl.schema.parse({});
    assert.equal(cfg.mode, 'block');
    assert.equal(cfg.paranoia_level, 1);
    assert.equal(cfg.anomaly_threshold, 5);
  });

  it('blocks SQL injection in a JSON leaf with 403 naming detector and location', async () => {
    const { v, reads } = await run(await stageFor(), json({ user: { comment: "x' or '1'='1" } }));
    assert.equal(reads, 1);
    assert.equal(v?.problem.status, 403);
    assert.equal(v?.problem.code, 'injection-detected');
    assert.equal(v?.problem.extensions.detector, 'sqli');
    assert.equal(v?.problem.extensions.location, 'body:/user/comment');
    assert.equal(v?.details?.detector, 'sqli');
    assert.equal(v?.details?.location, 'body:/user/comment');
    assert.equal(v?.details?.snippet, "x' or '1'='1");
  });

  it('names query, header, cookie, path and form locations', async () => {
    const s = await stageFor();
    assert.equal((await run(s, { target: '/search?q=%3Cscript%3Ealert(1)%3C/script%3E' })).v?.details?.location, 'query:q');
    assert.equal((await run(s, { headers: { referer: 'javascript:alert(1)' } })).v?.details?.location, 'header:referer');
    assert.equal((await run(s, { headers: { cookie: 'a=1; pref=..%2F..%2Fetc%2Fpasswd' } })).v?.details?.location, 'cookie:pref');
    assert.equal((await run(s, { target: '/files/..%2F..%2Fetc%2Fpasswd' })).v?.details?.location, 'path:2');
    const form = await run(s, { body: 'name=bob&cmd=%3B+cat+%2Fetc%2Fpasswd', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(form.v?.details?.location, 'body:/cmd');
    assert.equal(form.v?.details?.detector, 'cmdi');
  });

  it('detects double-encoded and entity-encoded payloads', async () => {
    const s = await stageFor();
    assert.equal((await run(s, { target: '/?x=%253Cscript%253Ealert(1)%253C%252Fscript%253E' })).v?.details?.detector, 'xss');
    assert.equal((await run(s, json({ html: '&lt;img src=x onerror=alert(1)&gt;' }))).v?.details?.detector, 'xss');
  });

  it('detects SSRF, NoSQL, SSTI and LDAP in JSON', async () => {
    const s = await stageFor();
    assert.equal((await run(s, json({ webhook: 'http://0x7f000001:8080/admin' }))).v?.details?.detector, 'ssrf');
    const nosql = await run(s, json({ user: 'admin', password: { $ne: null } }));
    assert.equal(nosql.v?.details?.detector, 'nosql');
    assert.equal(nosql.v?.details?.location, 'body:/password/$ne');
    assert.equal((await run(s, json({ name: '{{7*7}}' }))).v?.details?.detector, 'ssti');
    assert.equal((await run(s, json({ uid: '*)(uid=*))(|(uid=*' }))).v?.details?.detector, 'ldap');
  });

  it('lets ordinary traffic through and reads the body once', async () => {
    const s = await stageFor();
    const r = await run(
      s,
      json({ name: "O'Reilly", bio: 'I like cats; cat food is great. See https://example.com/a?b=1', tags: ['a', 'b'], n: 12.5, ok: true, none: null }),
    );
    assert.equal(r.v, undefined);
    assert.equal(r.reads, 1);
    assert.equal(
      (
        await run(s, {
          target: '/users/42?sort=name&page=2',
          headers: { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)' },
        })
      ).v,
      undefined,
    );
  });

  it('reads a body of unknown type only when its declared length fits the limit; binary ones pass', async () => {
    const jpeg = { body: Buffer.from([0xff, 0xd8, 0xff]), headers: { 'content-type': 'image/jpeg' } };
    const r = await run(await stageFor(), jpeg);
    assert.equal(r.v, undefined);
    assert.equal(r.reads, 1);
    const big = await run(await stageFor({ body: { max_bytes: 2 } }), jpeg);
    assert.equal(big.v, undefined);
    assert.equal(big.reads, 0);
    // a charset the decoder does not know cannot be read one way only: refused (415), not skipped
    const odd = await run(await stageFor(), { body: 'plain words', headers: { 'content-type': 'application/octet-stream; charset=x-unknown' } });
    assert.deepEqual([odd.v?.problem.status, odd.v?.problem.code, odd.reads], [415, 'unsupported-charset', 1]);
  });

  it('rejects unparsable bodies with 400 naming the parser error', async () => {
    const s = await stageFor();
    const j = await run(s, json('{"a": 1,}'));
    assert.equal(j.v?.problem.status, 400);
    assert.equal(j.v?.problem.code, 'body-malformed');
    assert.equal(j.v?.problem.extensions.parser, 'json');
    assert.equal(j.v?.problem.extensions.error, 'expected member name at offset 8');
    const x = await run(s, { body: '<a><b></a>', headers: { 'content-type': 'application/xml' } });
    assert.equal(x.v?.problem.code, 'body-malformed');
    assert.equal(x.v?.problem.extensions.parser, 'xml');
    const m = await run(s, { body: 'garbage', headers: { 'content-type': 'multipart/form-data' } });
    assert.equal(m.v?.problem.code, 'body-malformed');
    assert.equal(m.v?.problem.extensions.parser, 'multipart');
  });

  it('accepts 64-bit integer IDs and sane decimals, refuses huge exponents and non-finite numbers (json-number-out-of-range)', async () => {
    const s = await stageFor();
    const code = async (body: string) => {
      const v = (await run(s, json(body))).v;
      return [v?.problem.status, v?.problem.code, v?.problem.extensions.limit, v?.problem.title];
    };
    const ok = [undefined, undefined, undefined, undefined];
    assert.deepEqual(await code('{"id":18446744073709551615}'), ok);
    assert.deepEqual(await code('{"id":-9223372036854775808}'), ok);
    assert.deepEqual(await code('{"id":99999999999999999999}'), ok);
    assert.deepEqual(await code('[9007199254740993, 1.7976931348623157e308, 2.2250738585072014e-308, 3.14159265358979323846, 1E+308, 2.5e-308]'), ok);
    const range = (limit: string) => [400, 'json-number-out-of-range', limit, 'JSON Number Out of Range'];
    assert.deepEqual(await code('{"n":1e400}'), range('max_number_exponent'));
    assert.deepEqual(await code('{"n":-1E-400}'), range('max_number_exponent'));
    assert.deepEqual(await code('{"n":1e99999999999}'), range('max_number_exponent'));
    assert.deepEqual(await code('{"n":9e308}'), range('finite'));
    assert.deepEqual(await code(`{"n":${'1'.repeat(41)}}`), range('max_number_digits'));
    assert.deepEqual(await code(`{"n":0.${'1'.repeat(40)}}`), range('max_number_digits'));
    const v = (await run(s, json('{"n":1e400}'))).v;
    assert.equal(v?.problem.detail, "A JSON number's exponent exceeds 308 in magnitude at offset 5.");
    // still configurable
    const strict = await stageFor({ body: { json: { max_number: Number.MAX_SAFE_INTEGER, max_number_digits: 20, max_number_exponent: 10 } } });
    const c2 = async (body: string) => (await run(strict, json(body))).v?.problem.extensions.limit;
    assert.equal(await c2('[18446744073709551615]'), 'max_number');
    assert.equal(await c2('[9007199254740991]'), undefined);
    assert.equal(await c2(`[${'1'.repeat(21)}]`), 'max_number_digits');
    assert.equal(await c2('[1e11]'), 'max_number_exponent');
  });

  it('enforces JSON structural limits', async () => {
    const s = await stageFor({ body: { json: { max_depth: 4, max_keys: 3, max_array: 3, max_string: 12, max_number: 1000 } } });
    const code = async (body: string) => {
      const v = (await run(s, json(body))).v;
      return [v?.problem.status, v?.problem.code, v?.problem.extensions.limit];
    };
    assert.deepEqual(await code('[[[[[1]]]]]'), [400, 'json-limit-exceeded', 'max_depth']);
    assert.deepEqual(await code('{"a":1,"b":2,"c":3,"d":4}'), [400, 'json-limit-exceeded', 'max_keys']);
    assert.deepEqual(await code('[1,2,3,4]'), [400, 'json-limit-exceeded', 'max_array']);
    assert.deepEqual(await code('["abcdefghijklm"]'), [400, 'json-limit-exceeded', 'max_string']);
    assert.deepEqual(await code('[1001]'), [400, 'json-limit-exceeded', 'max_number']);
    assert.deepEqual(await code('{"a":{"__proto__":{"admin":true}}}'), [400, 'prototype-pollution', 'forbidden_keys']);
    assert.deepEqual(await code('{"constructor":{"prototype":{}}}'), [400, 'prototype-pollution', 'forbidden_keys']);
    assert.deepEqual(await code('{"role":"user","role":"admin"}'), [400, 'duplicate-key', 'duplicate_keys']);
    assert.deepEqual(await code('{"a":[1,2,3],"b":{"c":"short"}}'), [undefined, undefined, undefined]);
  });

  it('refuses XML DTDs (XXE, billion laughs) and deep nesting', async () => {
    const s = await stageFor({ body: { xml: { max_depth: 3 } } });
    const xxe = await run(s, {
      body: '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>',
      headers: { 'content-type': 'application/xml' },
    });
    assert.equal(xxe.v?.problem.code, 'xml-dtd-refused');
    const deep = await run(s, { body: '<a><b><c><d>x</d></c></b></a>', headers: { 'content-type': 'text/xml' } });
    assert.equal(deep.v?.problem.code, 'xml-limit-exceeded');
    const attr = await run(s, { body: '<a><b href="javascript:alert(1)">x</b></a>', headers: { 'content-type': 'application/xml' } });
    assert.equal(attr.v?.details?.location, 'body:/a/b/@href');
  });

  it('inspects multipart fields and filenames, with limits', async () => {
    const s = await stageFor({ body: { form: { max_files: 1 } } });
    const mp = (parts: string[]) => ({
      body: `${parts.map((p) => `--XX\r\n${p}\r\n`).join('')}--XX--\r\n`,
      headers: { 'content-type': 'multipart/form-data; boundary=XX' },
    });
    const field = await run(s, mp(['Content-Disposition: form-data; name="q"\r\n\r\n1 union select password from users']));
    assert.equal(field.v?.details?.location, 'body:/q');
    const file = await run(s, mp(['Content-Disposition: form-data; name="f"; filename="../../etc/passwd"\r\nContent-Type: text/plain\r\n\r\nhi']));
    assert.equal(file.v?.details?.location, 'body:/f/filename');
    const two = await run(
      s,
      mp(['Content-Disposition: form-data; name="a"; filename="a.txt"\r\n\r\nx', 'Content-Disposition: form-data; name="b"; filename="b.txt"\r\n\r\ny']),
    );
    assert.equal(two.v?.problem.code, 'multipart-limit-exceeded');
  });

  it('rejects malformed UTF-8 and overlong encodings', async () => {
    const s = await stageFor();
    assert.equal((await run(s, { target: '/a/%c0%ae%c0%ae/etc' })).v?.problem.code, 'invalid-encoding');
    assert.equal((await run(s, { target: '/?q=%ff' })).v?.problem.code, 'invalid-encoding');
    const body = await run(s, {
      body: Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc0, 0xaf, 0x22, 0x7d]),
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(body.v?.problem.code, 'invalid-encoding');
  });

  it('enforces parameter, cookie and header limits', async () => {
    const s = await stageFor({ limits: { query_params: 2, cookie_bytes: 8, header_value_bytes: 16 } });
    assert.equal((await run(s, { target: '/?a=1&b=2&c=3' })).v?.problem.code, 'parameter-limit-exceeded');
    assert.equal((await run(s, { headers: { cookie: 'sid=123456789' } })).v?.problem.code, 'parameter-limit-exceeded');
    assert.equal((await run(s, { headers: { 'x-thing': 'a'.repeat(17) } })).v?.problem.code, 'parameter-limit-exceeded');
  });

  it('applies paranoia levels', async () => {
    const pl1 = await stageFor();
    const pl2 = await stageFor({ paranoia_level: 2 });
    // `count(` is an ordinary word as a call: evidence from paranoia level 2 (`ord(` or `concat(` count at 1)
    const req = json({ q: 'count(' });
    assert.equal((await run(pl1, req)).v, undefined);
    assert.equal((await run(pl2, req)).v?.details?.detector, 'sqli');
  });

  it('honours per-route exclusions for fields that carry code', async () => {
    const s = await stageFor({ exclusions: [{ path_prefix: '/posts', methods: ['POST'], locations: ['body:/content'], detectors: ['xss'] }] });
    const post = { ...json({ content: '<script>alert(1)</script>' }), target: '/posts/1' };
    assert.equal((await run(s, post)).v, undefined);
    assert.equal((await run(s, { ...post, target: '/comments/1' })).v?.details?.detector, 'xss');
    // the exclusion covers xss only
    assert.equal((await run(s, { ...json({ content: "' or 1=1--" }), target: '/posts/1' })).v?.details?.detector, 'sqli');
  });

  it('emits monitor events (detector, location, snippet) and lets the request through in monitor mode', async () => {
    const r = await run(await stageFor({ mode: 'monitor' }), json({ a: '<script>alert(1)</script>', b: "1' or '1'='1" }));
    assert.equal(r.v, undefined);
    assert.deepEqual(
      r.events.map((e) => [e.reason, e.action, e.details?.detector, e.details?.location]),
      [
        ['injection-detected', 'monitor', 'xss', 'body:/a'],
        ['injection-detected', 'monitor', 'sqli', 'body:/b'],
      ],
    );
    assert.equal(r.events[0]?.details?.snippet, '<script>alert(1)</script>');
  });

  it('truncates and redacts snippets', async () => {
    const r = await run(await stageFor(), json({ a: `<script>alert('alice@example.com 4111111111111111 ${'x'.repeat(100)}')</script>` }));
    assert.equal(r.v?.details?.snippet, "<script>alert('[email] [number]…");
  });

  it('turns off with enabled: false', async () => {
    const inst = await inspectionControl.create(inspectionControl.schema.parse({ enabled: false }), {
      apiName: 'api',
      configDir: '.',
      store: new MemoryStore(),
      emit() {},
      log: { info() {}, warn() {}, error() {} },
    });
    assert.equal(inst.request, undefined);
  });

  it('survives pathological bodies', { timeout: 20_000 }, async () => {
    const s = await stageFor();
    assert.equal((await run(s, json(`${'['.repeat(100_000)}`))).v?.problem.code, 'json-limit-exceeded');
    const quotes = await run(s, json(`["${"'".repeat(100_000)}"]`));
    assert.deepEqual([quotes.v?.problem.code, quotes.v?.details?.detector], [undefined, undefined]);
    assert.equal((await run(s, json(`["${'('.repeat(100_000)}"]`))).v, undefined);
    assert.equal((await run(s, json(`["${'<'.repeat(100_000)}"]`))).v, undefined);
    assert.equal((await run(s, { body: '<a>'.repeat(50_000), headers: { 'content-type': 'application/xml' } })).v?.problem.status, 400);
    await settle(); // lets an overrun timeout fail the test (node:test cannot interrupt synchronous work)
  });
});
