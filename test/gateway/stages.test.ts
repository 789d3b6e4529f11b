import assert from 'node:assert/strict';
import { request } from 'node:http';
import { Transform } from 'node:stream';
import { describe, test } from 'node:test';
import { z } from 'zod';
import { defineControl } from '../../src/pipeline/control.ts';
import { Problem } from '../../src/pipeline/problem.ts';
import { deny } from '../../src/pipeline/verdict.ts';
import { echoUpstream, httpRequestText, startTestGateway, startUpstream } from '../helpers/gateway.ts';

/** A response control for these tests: behaviour chosen by the request path. */
const probe = defineControl({
  name: 'probe',
  schema: z.strictObject({}),
  defaultConfig: {},
  create: () => ({
    request: [
      {
        control: 'probe',
        phase: 'identity',
        run(ctx) {
          ctx.upstreamHeaders.set('x-added-by-stage', 'yes');
          ctx.upstreamHeaders.set('x-drop-me', null);
          return undefined;
        },
      },
    ],
    response: [
      {
        control: 'probe',
        phase: 'dlp',
        async run(ctx, res) {
          if (ctx.path === '/buffer') {
            const body = await res.readBody(1024);
            res.setBody(Buffer.from((body?.toString() ?? '').toUpperCase()));
          } else if (ctx.path === '/too-big-to-buffer') {
            const body = await res.readBody(10);
            res.headers['x-buffered'] = body === undefined ? 'no' : 'yes';
          } else if (ctx.path === '/deny') {
            return deny(new Problem(502, 'response-blocked', 'Response blocked'), 'high');
          } else if (ctx.path === '/cut') {
            let seen = 0;
            res.pipeThrough(
              new Transform({
                transform(chunk: Buffer, _enc, cb) {
                  seen += chunk.length;
                  if (seen > 64 * 1024) cb(new Error('bulk limit'));
                  else cb(null, chunk);
                },
              }),
            );
          }
          return undefined;
        },
      },
    ],
  }),
});

describe('stage contract through a real gateway', () => {
  test('request stages change upstream headers; phases run in the fixed order', async () => {
    const up = await echoUpstream();
    const gw = await startTestGateway({ apis: [{ name: 'a', upstream: { targets: [up.url] } }] }, { controls: [probe] });
    try {
      const r = await httpRequestText(`${gw.url}/x`, { headers: { 'x-drop-me': 'client value' } });
      const j = JSON.parse(r.body) as { headers: Record<string, string> };
      assert.equal(j.headers['x-added-by-stage'], 'yes');
      assert.equal(j.headers['x-drop-me'], undefined);
    } finally {
      await gw.close(100);
      await up.close();
    }
  });

  test('response stages: buffer and replace, leave large bodies streaming, deny without sending a byte, cut a stream off', async () => {
    const big = Buffer.alloc(256 * 1024, 'b');
    const up = await startUpstream((req, res) => {
      if (req.url === '/buffer') return void res.end('hello');
      if (req.url === '/too-big-to-buffer') return void res.end('0123456789abcdefghij');
      if (req.url === '/deny') return void res.end('SECRET-BODY');
      if (req.url === '/cut') {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        let n = 0;
        const write = () => {
          while (n < 16) {
            n++;
            if (!res.write(big.subarray(0, 16 * 1024))) return void res.once('drain', write);
          }
          res.end();
        };
        return write();
      }
      res.end('other');
    });
    const gw = await startTestGateway({ apis: [{ name: 'a', upstream: { targets: [up.url] } }] }, { controls: [probe] });
    try {
      const b = await fetch(`${gw.url}/buffer`);
      assert.equal(await b.text(), 'HELLO');
      assert.equal(b.headers.get('content-length'), '5');

      const s = await fetch(`${gw.url}/too-big-to-buffer`);
      assert.equal(s.headers.get('x-buffered'), 'no');
      assert.equal(await s.text(), '0123456789abcdefghij');

      const d = await fetch(`${gw.url}/deny`);
      assert.equal(d.status, 502);
      const dt = await d.text();
      assert.equal(dt.includes('SECRET-BODY'), false);
      assert.equal(JSON.parse(dt).type, 'https://rampart.dev/problems/response-blocked');
      assert.equal(gw.events.filter((e) => e.reason === 'response-blocked').length, 1);

      // Cut off: the client sees a truncated transfer (an error), never a clean end of the body.
      const port = new URL(gw.url).port;
      const outcome = await new Promise<{ bytes: number; error: boolean }>((resolve) => {
        const req = request({ host: '127.0.0.1', port, path: '/cut' }, (res) => {
          let bytes = 0;
          res.on('data', (c: Buffer) => (bytes += c.length));
          res.on('end', () => resolve({ bytes, error: false }));
          res.on('error', () => resolve({ bytes, error: true }));
          res.on('aborted', () => resolve({ bytes, error: true }));
        });
        req.on('error', () => resolve({ bytes: -1, error: true }));
        req.end();
      });
      assert.equal(outcome.error, true);
      assert.ok(outcome.bytes <= 64 * 1024, `at most the allowed bytes reached the client (${outcome.bytes})`);
      await new Promise((r) => setTimeout(r, 50));
      assert.ok(gw.events.some((e) => e.reason === 'response-aborted'));
    } finally {
      await gw.close(100);
      await up.close();
    }
  });
});

describe('limits control', () => {
  test('URL length 414, header count and size 431, all problem details', async () => {
    const up = await echoUpstream();
    const gw = await startTestGateway({
      apis: [{ name: 'a', upstream: { targets: [up.url] }, controls: { limits: { url_bytes: 100, header_count: 20, header_bytes: 2000 } } }],
    });
    try {
      assert.equal((await fetch(`${gw.url}/${'a'.repeat(120)}`)).status, 414);
      const many: Record<string, string> = {};
      for (let i = 0; i < 25; i++) many[`x-h${i}`] = '1';
      const r = await httpRequestText(`${gw.url}/x`, { headers: many });
      assert.equal(r.status, 431);
      assert.equal(JSON.parse(r.body).type, 'https://rampart.dev/problems/too-many-headers');
      const big = await httpRequestText(`${gw.url}/x`, { headers: { 'x-big': 'v'.repeat(3000) } });
      assert.equal(big.status, 431);
      assert.equal(JSON.parse(big.body).type, 'https://rampart.dev/problems/headers-too-large');
      assert.equal((await fetch(`${gw.url}/ok`)).status, 200);
    } finally {
      await gw.close(100);
      await up.close();
    }
  });
});

describe('headers control', () => {
  test('HSTS only on HTTPS by default; always when configured; custom headers', async () => {
    const up = await echoUpstream();
    const gw = await startTestGateway({
      apis: [
        { name: 'a', match: { path_prefix: '/a' }, upstream: { targets: [up.url] } },
        {
          name: 'b',
          match: { path_prefix: '/b' },
          upstream: { targets: [up.url] },
          controls: {
            headers: { hsts: { mode: 'always', max_age: 600, include_subdomains: false }, set: { 'x-frame-options': '', 'permissions-policy': 'camera=()' } },
          },
        },
      ],
    });
    try {
      const a = await fetch(`${gw.url}/a`);
      assert.equal(a.headers.get('strict-transport-security'), null);
      assert.equal(a.headers.get('x-frame-options'), 'DENY');
      const b = await fetch(`${gw.url}/b`);
      assert.equal(b.headers.get('strict-transport-security'), 'max-age=600');
      assert.equal(b.headers.get('x-frame-options'), null);
      assert.equal(b.headers.get('permissions-policy'), 'camera=()');
    } finally {
      await gw.close(100);
      await up.close();
    }
  });
});
