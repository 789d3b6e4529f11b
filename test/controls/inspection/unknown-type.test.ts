/**
 * Pen-test finding: JSON bodies sent with another or no Content-Type went uninspected, though many
 * backends parse JSON whatever the declared type. Bodies of missing or unknown type with a declared
 * Content-Length within the inspection limit are now read and inspected (as JSON when they parse,
 * else as one text leaf); binary ones pass, and chunked ones keep streaming.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { echoUpstream, httpRequestText, startTestGateway, type TestGateway, type TestUpstream } from '../../helpers/gateway.ts';

const ATTACK = JSON.stringify({ q: "1' UNION SELECT password FROM users--" });

describe('inspection of bodies of missing or unknown content type, through a real gateway', () => {
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

  const post = (body: string | Buffer, contentType?: string) =>
    httpRequestText(`${gw.url}/search`, {
      method: 'POST',
      headers: { 'content-length': String(Buffer.byteLength(body)), ...(contentType === undefined ? {} : { 'content-type': contentType }) },
      body,
    });

  for (const ct of ['application/octet-stream', undefined, 'application/x-json', 'text/plain, application/json', 'text/plain']) {
    it(`blocks a JSON injection sent as ${ct ?? 'no Content-Type'} (403, location body:/q)`, async () => {
      const r = await post(ATTACK, ct);
      assert.equal(r.status, 403);
      const p = JSON.parse(r.body) as Record<string, unknown>;
      assert.deepEqual([p.type, p.detector, p.location], ['https://rampart.dev/problems/injection-detected', 'sqli', 'body:/q']);
    });
  }

  it('blocks a non-JSON text body of unknown type as one text leaf (location body:)', async () => {
    const r = await post("name=1' UNION SELECT password FROM users--", 'application/octet-stream');
    assert.equal(r.status, 403);
    assert.equal((JSON.parse(r.body) as Record<string, unknown>).location, 'body:');
    // JSON-looking but not JSON (unterminated string): one text leaf
    const broken = await post(`{"q":"1' UNION SELECT password FROM users--`, undefined);
    assert.equal(broken.status, 403);
    assert.equal((JSON.parse(broken.body) as Record<string, unknown>).location, 'body:');
  });

  it('forwards a binary octet-stream body (invalid UTF-8) unchanged', async () => {
    const bin = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0xff, 0xfe, 0x27, 0x20, 0x4f, 0x52, 0x20, 0x27, 0x31, 0x27, 0x3d, 0x27, 0x31]);
    const r = await post(bin, 'application/octet-stream');
    assert.equal(r.status, 200);
    assert.deepEqual([JSON.parse(r.body).method, JSON.parse(r.body).bytes], ['POST', bin.length]);
  });

  it('forwards clean JSON of unknown type unchanged', async () => {
    const body = JSON.stringify({ id: 18446744073709551615n.toString(), note: 'hello' });
    const r = await post(body, 'application/octet-stream');
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).bytes, Buffer.byteLength(body));
  });

  it('streams a chunked body of unknown type without buffering it for inspection', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const u = new URL(gw.url);
      const req = request(
        { host: u.hostname, port: u.port, method: 'POST', path: '/upload', headers: { 'content-type': 'application/octet-stream' } },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.write(Buffer.alloc(64 * 1024, 0x61));
      req.end(Buffer.alloc(64 * 1024, 0x62));
    });
    assert.equal(status, 200);
  });
});
