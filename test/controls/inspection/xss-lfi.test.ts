/**
 * XSS and LFI rules of inspection round 3 (CRS 941120, 941160, 941170, 941181, 941220, 941310,
 * 941340, 941370, 941180; 930110, 930120), and the grammar-aware inspection of `Authorization`.
 * Every rule: a real attack string and a benign near miss.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DETECTORS, Engine } from '../../../src/controls/inspection/engine.ts';
import { credentialParts } from '../../../src/controls/inspection/index.ts';
import { detectLfi } from '../../../src/controls/inspection/lfi.ts';
import { normalize } from '../../../src/controls/inspection/normalize.ts';
import { detectXss } from '../../../src/controls/inspection/xss.ts';
import { echoUpstream, httpRequestText, startTestGateway, type TestGateway, type TestUpstream } from '../../helpers/gateway.ts';

/** Detector hit on the normalised value as `rule@level`, or `pass`. */
const at = (f: (s: string) => { rule: string; paranoia: number } | undefined, v: string): string => {
  const h = f(normalize(v));
  return h === undefined ? 'pass' : `${h.rule}@${h.paranoia}`;
};

/** Hits of the whole engine at `paranoia` on one value, as `detector:rule`. */
function engineHits(v: string, paranoia: number): string[] {
  const scan = new Engine({ paranoia, threshold: 5, enabled: new Set(DETECTORS), stopAtThreshold: false, maxHits: 10 }).scan();
  scan.inspect(v, false, () => 'body:/x');
  return scan.hits.map((h) => `${h.detector}:${h.rule}`);
}

describe('xss round 3', () => {
  const cases: [string, string][] = [
    // CRS 941120: any `on<3-50 letters>=value` after a separator, digit or quote (level 2)
    ['t=1614308115,v1=5257a869e7ecebeda32affa62cdca3fa51onabcd=6yJV_adQssw5c', 'attribute-breakout@2'],
    ['  onabcdefgh= ', 'attribute-breakout@2'],
    ['eyJpYXQiOjE1MTYyMzkwMjJ9.eyJhIjoxMn0onload=.PO', 'attribute-breakout@2'],
    ['VGhhbmtzLCBmb3IgYWxsIHlvdXIgd29yayBzaW5jZSB5ZWFycyBvbiBDUlMuIEh1bQo/onafe=', 'pass'], // base64 padding at the end
    ['  onab= ', 'pass'], // two letters
    ['  onthisisaverylongwordthathasmorethanfiftycharactersss= ', 'pass'], // over 50 letters
    ['MIAGCSqGSIb3DQonabcdefgh=HIJAoGBAMIIBrTCCA', 'pass'], // `on` inside a base64 word
    // CRS 941160: handler names of the NoScript list, namespaced tags with spaces
    ['"onzoom=', 'attribute-breakout@1'],
    ['zoom=10&position=center', 'pass'],
    ['< x: script', 'spaced-tag:script@2'],
    ['<x: script src=//evil>', 'spaced-tag:script@2'],
    ['a < b: c', 'pass'],
    ['if n < scripted_limit', 'pass'],
    // CRS 941170: a data: URL carrying markup
    [' data: , <x>', 'data-url@1'],
    ['data:text/plain,<b>hi</b>', 'data-url@1'],
    ['raw data: names, <b>bold</b>', 'pass'],
    // CRS 941220: tabs and newlines (here as named entities) inside a script scheme
    ['v&newline;b&tab;s&newline;c&newline;r&tab;i&tab;p&newline;t&colon;:', 'vbscript-url@1'],
    ['note:\tsee\nscript below', 'pass'],
    // CRS 941310: a closing tag in the US-ASCII high-bit spelling
    ['\\xbctest\\xbetest(\\xa2XSS\\xa2)\\xbc/test\\xbe', 'us-ascii-markup@1'],
    ['\\xd0\\xbcscript\\xd0\\xbealert(\\xc2\\xa2XSS\\xc2\\xa2)\\xd0\\xbc/script\\xd0\\xbe', 'us-ascii-markup@1'],
    ['add \u00bc / \u00bd cup > more', 'pass'],
    ['\u00bc cup and \u00be cup', 'pass'],
    // CRS 941370 and 941180: bracket access on a parenthesised DOM global, DOM queries
    ['(document)["cookie"]', 'script-sink@1'],
    ['(document/*foo*/)["cookie"]', 'script-sink@1'],
    ['document.querySelector("p").textContent="XSS"', 'script-sink@1'],
    ['(see document) [1]', 'pass'],
    ['use querySelector for lookups', 'pass'],
    // CRS 941340: a quote, then an operator or `in`, then a member assignment (level 2)
    ["'  infoo.bar=", 'quote-member-assignment@2'],
    ['"-x.y=1', 'quote-member-assignment@2'],
    ['username="alice", uri="/v1/index.html?expand=items", qop=auth', 'pass'],
    ["it's in the U.S. a=b", 'pass'],
    // CRS 941181: a comment closer that opens or ends a value or precedes markup (level 2)
    ['-->', 'comment-close@2'],
    ['--><b>x</b>', 'comment-close@2'],
    ['a --> b', 'comment-close@3'],
  ];
  for (const [v, want] of cases) it(`${JSON.stringify(v)} → ${want}`, () => assert.equal(at(detectXss, v), want));

  it('keeps the benign near misses clean in the whole engine at paranoia level 2', () => {
    for (const v of ['zoom=10&position=center', 'raw data: names, <b>bold</b>', 'add \u00bc / \u00bd cup > more', "it's in the U.S. a=b", 'a --> b'])
      assert.deepEqual(engineHits(v, 2), [], v);
  });
});

describe('lfi round 3', () => {
  const cases: [string, string][] = [
    // CRS 930110: `..;` as a segment (path parameter), `;..;`
    ['..;.\\.;\\.', 'traversal@1'],
    ['/app/..;/manager/html', 'traversal@1'],
    ['a;..;b', 'traversal@1'],
    ['wait..; ok', 'pass'],
    ['foo../1234', 'pass'],
    // CRS 930120 (lfi-os-files.data): compressed database dumps
    ['backup.sql.zip', 'sensitive-file:sql-dump@1'],
    ['db/dump.sql.gz', 'sensitive-file:sql-dump@1'],
    ['schema.sql', 'pass'],
    ['my.sql.notes', 'pass'],
  ];
  for (const [v, want] of cases) it(`${JSON.stringify(v)} → ${want}`, () => assert.equal(at(detectLfi, v), want));
  it('reaches the LFI detector through the engine gates', () => {
    assert.deepEqual(engineHits('backup.sql.zip', 1), ['lfi:sensitive-file:sql-dump']);
    assert.deepEqual(engineHits('release.notes.zip', 2), []);
  });
});

describe('Authorization credentials (RFC 9110 §11.4)', () => {
  it('skips well-formed token68 credentials', () => {
    assert.deepEqual(credentialParts('Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl'), []);
    assert.deepEqual(credentialParts('Basic dXNlcjpwYXNz'), ['user']); // RFC 7617: the user-id is inspected, never the password
    assert.deepEqual(credentialParts('Negotiate YIIB+gYGKwYBBQUCoIIB7jCCAeqg/w=='), []);
  });
  it('yields auth-param values one by one, token68-shaped and percent-encoded ones skipped', () => {
    assert.deepEqual(credentialParts('Digest username="o\\"b", realm="api@x.io", uri="/v1/a?b=1", qop=auth, nc=00000001, response="6629fae4"'), [
      'o"b',
      'api@x.io',
      '/v1/a?b=1',
    ]);
    assert.deepEqual(credentialParts('OAuth oauth_signature="tnnArxj06cWHq44gCs1OSKk%2FjLY%3D", oauth_version="1.0"'), []);
  });
  it('inspects the whole value when it fits neither form', () => {
    const bad = 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJpYXQiOjE1MTYyMzkwMjJ9onload=.PO';
    assert.deepEqual(credentialParts(bad), [bad]);
    assert.deepEqual(credentialParts("Basic ' OR '1'='1"), ["Basic ' OR '1'='1"]);
  });
});

describe('Authorization through a real gateway', () => {
  let up: TestUpstream;
  let gw: TestGateway;
  before(async () => {
    up = await echoUpstream();
    gw = await startTestGateway({ apis: [{ name: 'api', upstream: { targets: [up.url] } }] });
  });
  after(async () => {
    await gw.close(0);
    await up.close();
  });
  it('blocks an injection in a malformed credential with a redacted snippet', async () => {
    const before = gw.events.length;
    const r = await httpRequestText(`${gw.url}/x`, { headers: { authorization: "Bearer AUTHEEE' OR '1'='1" } });
    assert.equal(r.status, 403);
    assert.equal((JSON.parse(r.body) as { location: string }).location, 'header:authorization');
    const ev = gw.events.slice(before);
    assert.equal(ev[0]?.details?.snippet, '[REDACTED]');
    assert.equal(JSON.stringify(ev).toLowerCase().includes('autheee'), false);
    assert.equal(r.body.toLowerCase().includes('autheee'), false);
  });
  it('passes well-formed Bearer, Basic and Digest credentials', async () => {
    for (const authorization of [
      'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl--__',
      `Basic ${Buffer.from("o'brien:p@ss--word").toString('base64')}`,
      'Digest username="alice", realm="api@example.com", nonce="dcd98b7102dd2f0e", uri="/dir/index.html", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1"',
    ]) {
      const r = await httpRequestText(`${gw.url}/x`, { headers: { authorization } });
      assert.equal(r.status, 200, authorization);
    }
  });
});
