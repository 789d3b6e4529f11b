/**
 * Pen-test findings (round 3): payloads got past inspection because Rampart and the backend read
 * the same body differently. Each case sends the attack and a legitimate variant through a real
 * gateway: the attack gets problem details (RFC 9457) and exactly one event, the variant reaches
 * the upstream with its original bytes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { echoUpstream, httpRequestText, type RawResponse, startTestGateway, type TestGateway, type TestUpstream } from '../../helpers/gateway.ts';

const SQLI = "1' UNION SELECT password FROM users--";
const XSS = '<script>alert(1)</script>';

/** A multipart body with boundary `B` from raw part header blocks and contents. */
function multipart(parts: [headers: string, content: string | Buffer][], boundary = 'B'): Buffer {
  const chunks: Buffer[] = [];
  for (const [headers, content] of parts)
    chunks.push(Buffer.from(`--${boundary}\r\n${headers}\r\n\r\n`), Buffer.isBuffer(content) ? content : Buffer.from(content), Buffer.from('\r\n'));
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

describe('inspection reads bodies as backends do (through a real gateway)', () => {
  let up: TestUpstream;
  let gw: TestGateway;
  let gwOverride: TestGateway;
  before(async () => {
    up = await echoUpstream();
    gw = await startTestGateway({ apis: [{ name: 'api', upstream: { targets: [up.url] } }] });
    gwOverride = await startTestGateway({
      apis: [{ name: 'api', upstream: { targets: [up.url] }, controls: { inspection: { allow_method_override: true, body: { max_bytes: 1024 * 1024 } } } }],
    });
  });
  after(async () => {
    await gw.close(0);
    await gwOverride.close(0);
    await up.close();
  });

  async function send(
    body: string | Buffer,
    headers: Record<string, string>,
    target = '/x',
    g: TestGateway = gw,
  ): Promise<RawResponse & { json: Record<string, unknown>; events: string[] }> {
    const before = g.events.length;
    const r = await httpRequestText(`${g.url}${target}`, {
      method: 'POST',
      headers: { 'content-length': String(Buffer.byteLength(body)), ...headers },
      body,
    });
    await new Promise((res) => setImmediate(res));
    return { ...r, json: JSON.parse(r.body) as Record<string, unknown>, events: g.events.slice(before).map((e) => e.reason) };
  }

  /** Asserts a problem-details rejection with one event of the same reason. */
  function rejected(r: Awaited<ReturnType<typeof send>>, status: number, reason: string): void {
    assert.equal(r.status, status, r.body);
    assert.match(String(r.headers['content-type']), /application\/problem\+json/);
    assert.equal(r.json.type, `https://rampart.dev/problems/${reason}`);
    assert.equal(r.json.status, status);
    assert.deepEqual(r.events, [reason]);
  }

  /** Asserts the request reached the upstream with `bytes` body bytes. */
  function passed(r: Awaited<ReturnType<typeof send>>, bytes: number): void {
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json.bytes, bytes);
  }

  const MP = { 'content-type': 'multipart/form-data; boundary=B' };

  describe('multipart fields and files (finding 1)', () => {
    it('inspects a part without filename as a field whatever its Content-Type', async () => {
      for (const type of ['application/octet-stream', 'image/png', 'application/x-foo']) {
        const r = await send(multipart([[`Content-Disposition: form-data; name="q"\r\nContent-Type: ${type}`, XSS]]), MP);
        rejected(r, 403, 'injection-detected');
        assert.equal(r.json.location, 'body:/q');
      }
      const ok = multipart([['Content-Disposition: form-data; name="q"\r\nContent-Type: application/octet-stream', 'hello world']]);
      passed(await send(ok, MP), ok.length);
    });

    it('inspects textual file contents (declared or sniffed), JSON parsed, and leaves binary files alone', async () => {
      const text = await send(multipart([['Content-Disposition: form-data; name="f"; filename="a.txt"\r\nContent-Type: text/plain', `id=${SQLI}`]]), MP);
      rejected(text, 403, 'injection-detected');
      assert.equal(text.json.location, 'body:/f');
      const json = await send(
        multipart([['Content-Disposition: form-data; name="f"; filename="a.json"\r\nContent-Type: application/json', JSON.stringify({ q: SQLI })]]),
        MP,
      );
      rejected(json, 403, 'injection-detected');
      assert.equal(json.json.location, 'body:/f/q');
      const sniffed = await send(
        multipart([['Content-Disposition: form-data; name="f"; filename="a.bin"\r\nContent-Type: application/octet-stream', XSS]]),
        MP,
      );
      rejected(sniffed, 403, 'injection-detected');
      const svg = await send(
        multipart([
          [
            'Content-Disposition: form-data; name="f"; filename="a.svg"\r\nContent-Type: image/svg+xml',
            '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
          ],
        ]),
        MP,
      );
      rejected(svg, 403, 'injection-detected');
      // binary (NUL and invalid UTF-8) with an attack string inside: not inspected
      const bin = multipart([
        [
          'Content-Disposition: form-data; name="f"; filename="a.png"\r\nContent-Type: image/png',
          Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0xff]), Buffer.from(XSS)]),
        ],
      ]);
      passed(await send(bin, MP), bin.length);
      const okText = multipart([
        ['Content-Disposition: form-data; name="f"; filename="notes.txt"\r\nContent-Type: text/plain', 'Meeting notes: ship on Friday, then review.'],
        ['Content-Disposition: form-data; name="g"; filename="data.json"\r\nContent-Type: application/json', '{"name":"Ada","tags":["x","y"]}'],
      ]);
      passed(await send(okText, MP), okText.length);
    });
  });

  describe('ambiguous Content-Type and part headers (finding 2)', () => {
    it('refuses a Content-Type naming boundary twice (400 content-type-ambiguous)', async () => {
      const body = Buffer.concat([
        Buffer.from('--A\r\nContent-Disposition: form-data; name="x"\r\n\r\nhello\r\n--A--\r\n'),
        multipart([['Content-Disposition: form-data; name="q"', XSS]]),
      ]);
      rejected(await send(body, { 'content-type': 'multipart/form-data; boundary=A; boundary=B' }), 400, 'content-type-ambiguous');
      rejected(await send('{"a":1}', { 'content-type': 'application/json; charset=utf-8; Charset=latin1' }), 400, 'content-type-ambiguous');
      const ok = multipart([['Content-Disposition: form-data; name="q"', 'hello']]);
      passed(await send(ok, { 'content-type': 'multipart/form-data; charset=utf-8; boundary="B"' }), ok.length);
    });

    it('refuses a part with two Content-Disposition headers or a parameter named twice (400 multipart-part-ambiguous)', async () => {
      const two = multipart([['Content-Disposition: form-data; name="f"; filename="a.png"\r\nContent-Disposition: form-data; name="q"', XSS]]);
      rejected(await send(two, MP), 400, 'multipart-part-ambiguous');
      const dupName = multipart([['Content-Disposition: form-data; name="a"; name="q"', 'x']]);
      rejected(await send(dupName, MP), 400, 'multipart-part-ambiguous');
      const dupFile = multipart([['Content-Disposition: form-data; name="f"; filename="a.txt"; filename="b.php"', 'x']]);
      rejected(await send(dupFile, MP), 400, 'multipart-part-ambiguous');
      // a boundary after a bare LF splits the body for Werkzeug only: refused
      const png = Buffer.concat([
        Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0xff]),
        Buffer.from(`\n--B\r\nContent-Disposition: form-data; name="q"\r\n\r\n${XSS}`),
      ]);
      rejected(
        await send(multipart([['Content-Disposition: form-data; name="f"; filename="a.png"\r\nContent-Type: image/png', png]]), MP),
        400,
        'multipart-part-ambiguous',
      );
      const lfHeader = multipart([['Content-Disposition: form-data; name="f"; filename="a.png"\nContent-Type: text/plain', 'x']]);
      rejected(await send(lfHeader, MP), 400, 'multipart-part-ambiguous');
      const ok = multipart([
        ['Content-Disposition: form-data; name="f"; filename="a.txt"; filename*=UTF-8\'\'a.txt\r\nContent-Type: text/plain', 'plain notes'],
      ]);
      passed(await send(ok, MP), ok.length);
    });
  });

  describe('Content-Encoding (finding 3)', () => {
    const codings: [string, (b: Buffer) => Buffer][] = [
      ['gzip', gzipSync],
      ['x-gzip', gzipSync],
      ['deflate', deflateSync],
      ['br', brotliCompressSync],
    ];
    for (const [name, enc] of codings) {
      it(`inspects a ${name} body decoded; the upstream gets the coded bytes`, async () => {
        for (const type of ['application/x-foo', 'application/json', undefined]) {
          const attack = enc(Buffer.from(JSON.stringify({ q: SQLI })));
          const r = await send(attack, { 'content-encoding': name, ...(type === undefined ? {} : { 'content-type': type }) });
          rejected(r, 403, 'injection-detected');
          assert.equal(r.json.location, 'body:/q');
        }
        const ok = enc(Buffer.from(JSON.stringify({ name: 'Ada', note: 'hello' })));
        passed(await send(ok, { 'content-encoding': name, 'content-type': 'application/json' }), ok.length);
      });
    }

    it('refuses unknown and stacked codings (415), corrupt data (400) and a bomb (413)', async () => {
      rejected(await send('abc', { 'content-encoding': 'compress', 'content-type': 'application/json' }), 415, 'unsupported-content-encoding');
      const twice = gzipSync(gzipSync(Buffer.from('{"a":1}')));
      rejected(await send(twice, { 'content-encoding': 'gzip, gzip', 'content-type': 'application/json' }), 415, 'unsupported-content-encoding');
      rejected(await send(Buffer.from('not gzip at all'), { 'content-encoding': 'gzip', 'content-type': 'application/json' }), 400, 'invalid-content-encoding');
      // 4 MB of spaces in 4 KB, against an inspection limit of 1 MB
      const bomb = gzipSync(Buffer.alloc(4 * 1024 * 1024, 0x20));
      rejected(await send(bomb, { 'content-encoding': 'gzip', 'content-type': 'application/json' }, '/x', gwOverride), 413, 'body-too-large');
    });
  });

  describe('XML text split by CDATA, processing instructions and child elements (finding 4)', () => {
    const XML = { 'content-type': 'application/xml' };
    for (const doc of [
      "<a>1' union sel<![CDATA[ect password from users--]]></a>",
      '<a>http://169.254.<?x?>169.254/latest/</a>',
      "<r><a>1' union sel<b>ect password from users--</b></a></r>",
    ]) {
      it(`blocks ${doc}`, async () => {
        const r = await send(doc, XML);
        rejected(r, 403, 'injection-detected');
      });
    }
    it('passes legitimate mixed content', async () => {
      const ok = '<doc><p>Select <b>one</b> option from <![CDATA[the list]]> and press <i>OK</i>.</p><url>https://example.com/<?x?>docs</url></doc>';
      passed(await send(ok, XML), Buffer.byteLength(ok));
    });
  });

  describe('prototype-pollution parameter names (finding 5)', () => {
    for (const name of ['__proto__[isAdmin]', 'constructor[prototype][isAdmin]', 'a[__proto__][b]', '__proto__.x', '%5F_proto__%5Bx%5D']) {
      it(`refuses ${name} in the query, a form and a multipart body (400 prototype-pollution)`, async () => {
        rejected(await send('{}', { 'content-type': 'application/json' }, `/x?${name}=true`), 400, 'prototype-pollution');
        rejected(await send(`${name}=true`, { 'content-type': 'application/x-www-form-urlencoded' }), 400, 'prototype-pollution');
        const decoded = decodeURIComponent(name);
        rejected(await send(multipart([[`Content-Disposition: form-data; name="${decoded}"`, 'true']]), MP), 400, 'prototype-pollution');
      });
    }
    it('passes bracketed and dotted names that merely contain the words', async () => {
      const ok = 'user[proto]=1&car.constructor_name=Ferrari&prototypes[0]=a';
      passed(await send(ok, { 'content-type': 'application/x-www-form-urlencoded' }, `/x?${ok}`), ok.length);
    });
  });

  describe('_method overrides (finding 6)', () => {
    it('refuses _method naming another method in the query, a form and a multipart body (400 method-override-refused)', async () => {
      rejected(await send('a=1', { 'content-type': 'application/x-www-form-urlencoded' }, '/x?_method=DELETE'), 400, 'method-override-refused');
      rejected(await send('_method=delete&a=1', { 'content-type': 'application/x-www-form-urlencoded' }), 400, 'method-override-refused');
      rejected(await send('_METHOD=PUT', { 'content-type': 'application/x-www-form-urlencoded' }), 400, 'method-override-refused');
      rejected(await send(multipart([['Content-Disposition: form-data; name="_method"', 'PATCH']]), MP), 400, 'method-override-refused');
    });
    it('passes _method naming the request method, a non-method value, or any with allow_method_override', async () => {
      passed(await send('_method=POST&a=1', { 'content-type': 'application/x-www-form-urlencoded' }), 16);
      passed(await send('_method=&a=1', { 'content-type': 'application/x-www-form-urlencoded' }, '/x?_method=post'), 12);
      passed(await send('_method=DELETE', { 'content-type': 'application/x-www-form-urlencoded' }, '/x', gwOverride), 14);
    });
  });

  describe('names through the SSRF and SSTI detectors; a lone JSON form key (finding 7)', () => {
    it('blocks SSRF and SSTI payloads sent as names', async () => {
      const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
      rejected(await send('a=1', FORM, `/x?${encodeURIComponent('http://169.254.169.254/latest/meta-data/')}=1`), 403, 'injection-detected');
      rejected(await send(`${encodeURIComponent('{{7*7}}')}=1`, FORM), 403, 'injection-detected');
      rejected(
        await send(JSON.stringify({ 'http://169.254.169.254/latest/meta-data/': 1 }), { 'content-type': 'application/json' }),
        403,
        'injection-detected',
      );
      rejected(await send(JSON.stringify({ '${7*7}': 1 }), { 'content-type': 'application/json' }), 403, 'injection-detected');
      rejected(await send(multipart([['Content-Disposition: form-data; name="{{7*7}}"', '1']]), MP), 403, 'injection-detected');
      const cookie = await httpRequestText(`${gw.url}/x`, { headers: { cookie: '${7*7}=1' } });
      assert.equal(cookie.status, 403);
    });
    it('inspects a form body whose lone key is a JSON document as JSON', async () => {
      const r = await send('{"url":"http://169.254.169.254/latest/meta-data/"}', { 'content-type': 'application/x-www-form-urlencoded' });
      rejected(r, 403, 'injection-detected');
      assert.equal(r.json.location, 'body:/url');
      const ok = '{"url":"https://example.com/docs","name":"Ada"}';
      passed(await send(ok, { 'content-type': 'application/x-www-form-urlencoded' }), ok.length);
    });
    it('passes ordinary bracketed and URL-ish names', async () => {
      const ok = 'filter[status]=open&items[0][id]=3&page[size]=10';
      passed(await send(ok, { 'content-type': 'application/x-www-form-urlencoded' }, `/x?${ok}`), ok.length);
    });
  });
});
