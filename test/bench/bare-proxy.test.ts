/**
 * bench/bare-proxy: forwards method, path, query, headers and bodies to the demo upstream, and
 * answers 502 when the upstream is gone.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import type { IncomingMessage } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { startBareProxy } from '../../bench/bare-proxy.ts';
import type { BareProxy } from '../../bench/bare-proxy.ts';
import { startDemoUpstream } from '../../examples/demo-upstream.ts';
import type { DemoUpstream } from '../../examples/demo-upstream.ts';

describe('bare proxy', () => {
  let up: DemoUpstream;
  let proxy: BareProxy;

  before(async () => {
    up = await startDemoUpstream({});
    proxy = await startBareProxy({ upstream: up.url });
  });
  after(async () => {
    await proxy.close();
    await up.close();
  });

  it('forwards GET with path, query and end-to-end headers; drops hop-by-hop ones', async () => {
    // node:http, not fetch: fetch refuses to send a `Connection` header.
    const { res, body } = await new Promise<{ res: IncomingMessage; body: string }>((resolve, reject) => {
      const req = request(`${proxy.url}/echo-headers?a=1&b=2`, {
        headers: { 'x-custom': 'yes', connection: 'keep-alive, x-drop-me', 'x-drop-me': '1', te: 'trailers' },
      });
      req.on('response', (r) => {
        let text = '';
        r.setEncoding('utf8');
        r.on('data', (c: string) => {
          text += c;
        });
        r.on('end', () => resolve({ res: r, body: text }));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['x-received-url'], '/echo-headers?a=1&b=2');
    assert.equal(res.headers.server, 'demo-accounts/1.0');
    const headers = JSON.parse(body) as Record<string, string>;
    assert.equal(headers.te, undefined);
    assert.equal(headers['x-custom'], 'yes');
    assert.equal(headers['x-drop-me'], undefined);
    assert.equal(headers.host, new URL(up.url).host);
  });

  it('forwards status codes and JSON bodies', async () => {
    const res = await fetch(`${proxy.url}/users/1002`);
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { id: number }).id, 1002);
    assert.equal((await fetch(`${proxy.url}/nope`)).status, 404);
  });

  it('streams a 5 MB request body and a 3 MB response body', async () => {
    const payload = randomBytes(5 * 1024 * 1024);
    const res = await fetch(`${proxy.url}/upload`, { method: 'POST', body: payload });
    assert.deepEqual(await res.json(), {
      bytes: payload.length,
      sha256: createHash('sha256').update(payload).digest('hex'),
    });
    const big = await fetch(`${proxy.url}/big?bytes=${3 * 1024 * 1024}`);
    assert.equal((await big.arrayBuffer()).byteLength, 3 * 1024 * 1024);
  });

  it('echoes a POST body', async () => {
    const res = await fetch(`${proxy.url}/echo`, {
      method: 'POST',
      body: 'hello',
      headers: { 'content-type': 'text/plain' },
    });
    assert.equal(await res.text(), 'hello');
  });

  it('answers 502 when the upstream is unreachable', async () => {
    const dead = await startDemoUpstream({});
    const deadUrl = dead.url;
    await dead.close();
    const p = await startBareProxy({ upstream: deadUrl });
    try {
      const res = await fetch(`${p.url}/health`);
      assert.equal(res.status, 502);
      assert.equal(((await res.json()) as { error: string }).error, 'bad_gateway');
    } finally {
      await p.close();
    }
  });
});
