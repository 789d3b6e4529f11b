/**
 * Pen-test finding: secrets leaked into security events through the detection snippet. Detections
 * in cookies, credential headers and secret-looking fields carry `[REDACTED]` instead, and the
 * problem details never echo a snippet.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { echoUpstream, httpRequestText, startTestGateway, type TestGateway, type TestUpstream } from '../../helpers/gateway.ts';

describe('inspection snippets of secrets through a real gateway', () => {
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

  const cases: [string, string, Parameters<typeof httpRequestText>[1], string][] = [
    ['cookie', '/x', { headers: { cookie: "sid=SECRETSID' OR '1'='1" } }, 'cookie:sid'],
    [
      'JSON password',
      '/x',
      { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: "PWDBBB' OR '1'='1" }) },
      'body:/password',
    ],
    ['query api_key', "/x?api_key=QKEYAAA'+OR+'1'='1", {}, 'query:api_key'],
    ['form token', '/x', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: "token=TOKCCC' OR '1'='1" }, 'body:/token'],
    ['secret-looking header', '/x', { headers: { 'x-session-id': "HDRDDD' OR '1'='1" } }, 'header:x-session-id'],
  ];
  for (const [name, path, opts, location] of cases) {
    it(`blocks an injection in a ${name} with 403 and no snippet of the value anywhere`, async () => {
      const before = gw.events.length;
      const r = await httpRequestText(`${gw.url}${path}`, opts);
      assert.equal(r.status, 403);
      const problem = JSON.parse(r.body) as Record<string, unknown>;
      assert.equal(problem.type, 'https://rampart.dev/problems/injection-detected');
      assert.equal(problem.location, location);
      assert.equal('snippet' in problem, false);
      const ev = gw.events.slice(before);
      assert.equal(ev.length, 1);
      assert.equal(ev[0]?.details?.location, location);
      assert.equal(ev[0]?.details?.snippet, '[REDACTED]');
      const detections = (ev[0]?.details?.detections ?? []) as { snippet: string }[];
      assert.ok(detections.length > 0);
      assert.deepEqual(
        detections.map((d) => d.snippet),
        detections.map(() => '[REDACTED]'),
      );
      for (const secret of ['secretsid', 'pwdbbb', 'qkeyaaa', 'tokccc', 'hdrddd']) {
        assert.equal(r.body.toLowerCase().includes(secret), false, `problem body holds ${secret}`);
        assert.equal(JSON.stringify(ev).toLowerCase().includes(secret), false, `event holds ${secret}`);
      }
    });
  }

  it('keeps the snippet for an ordinary field', async () => {
    const before = gw.events.length;
    const r = await httpRequestText(`${gw.url}/x?q=x'+or+'1'='1`);
    assert.equal(r.status, 403);
    assert.equal(gw.events.slice(before)[0]?.details?.snippet, "x' or '1'='1");
  });
});

describe('inspection snippets of secrets in monitor mode', () => {
  it('emits the monitor event with [REDACTED] and forwards the request', async () => {
    const up = await echoUpstream();
    const gw = await startTestGateway({ apis: [{ name: 'api', upstream: { targets: [up.url] }, controls: { inspection: { mode: 'monitor' } } }] });
    try {
      const r = await httpRequestText(`${gw.url}/x?session_token=MONEEE'+OR+'1'='1`);
      assert.equal(r.status, 200);
      const ev = gw.events.filter((e) => e.reason === 'injection-detected');
      assert.equal(ev.length, 1);
      assert.equal(ev[0]?.action, 'monitor');
      assert.equal(ev[0]?.details?.location, 'query:session_token');
      assert.equal(ev[0]?.details?.snippet, '[REDACTED]');
      assert.equal(JSON.stringify(ev).toLowerCase().includes('moneee'), false);
    } finally {
      await gw.close(0);
      await up.close();
    }
  });
});
