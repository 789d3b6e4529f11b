import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sourceOf } from '../../../src/cli/serve.ts';
import { echoUpstream, startTestGateway, type TestGateway, type TestUpstream } from '../../helpers/gateway.ts';

describe('inspection through a real gateway (on by default)', () => {
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

  it('blocks an injection in a JSON body with 403 problem details and one event', async () => {
    const res = await fetch(`${gw.url}/comments`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ comment: "x' or '1'='1" }),
    });
    assert.equal(res.status, 403);
    assert.equal(res.headers.get('content-type'), 'application/problem+json');
    const body = (await res.json()) as Record<string, unknown>;
    assert.equal(body.type, 'https://rampart.dev/problems/injection-detected');
    assert.equal(body.detector, 'sqli');
    assert.equal(body.location, 'body:/comment');
    const ev = gw.events.filter((e) => e.reason === 'injection-detected');
    assert.equal(ev.length, 1);
    assert.equal(ev[0]?.control, 'inspection');
    assert.equal(ev[0]?.details?.location, 'body:/comment');
    assert.equal(ev[0]?.details?.snippet, "x' or '1'='1");
  });

  it('forwards a clean body, read once, to the upstream', async () => {
    const payload = JSON.stringify({ comment: 'great product, would buy again' });
    const res = await fetch(`${gw.url}/comments`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: payload });
    assert.equal(res.status, 200);
    const echo = (await res.json()) as { bytes: number; method: string };
    assert.equal(echo.method, 'POST');
    assert.equal(echo.bytes, Buffer.byteLength(payload));
  });

  it('answers 400 naming the parser error for a malformed body', async () => {
    const res = await fetch(`${gw.url}/comments`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":' });
    assert.equal(res.status, 400);
    const body = (await res.json()) as Record<string, unknown>;
    assert.equal(body.type, 'https://rampart.dev/problems/body-malformed');
    assert.equal(body.error, 'unexpected end of input at offset 5');
  });
});

describe('zero-config --paranoia-level', () => {
  it('sets the inspection paranoia level: a level-2 probe passes at the default and is refused at 2', async () => {
    const up = await echoUpstream();
    const at = (paranoiaLevel?: string) =>
      (
        sourceOf({ upstream: up.url, trustedProxy: [], controls: true, listen: '127.0.0.1:0', admin: '127.0.0.1:0', paranoiaLevel }) as {
          config: Record<string, unknown>;
        }
      ).config;
    const [one, two] = [await startTestGateway(at()), await startTestGateway(at('2'))];
    try {
      // `1=1` as a whole value: a tautology probe (CRS 942130, paranoia level 2)
      assert.equal((await fetch(`${one.url}/x?a=1=1`)).status, 200);
      const r = await fetch(`${two.url}/x?a=1=1`);
      assert.equal(r.status, 403);
      assert.equal(((await r.json()) as { detector: string }).detector, 'sqli');
      assert.throws(() => at('5'), /--paranoia-level: expected 1, 2, 3 or 4/);
    } finally {
      await one.close(0);
      await two.close(0);
      await up.close();
    }
  });
});
