/**
 * Pen-test findings (inspection round 3, body reading): declared charsets that are not
 * ASCII-compatible, multipart Content-Transfer-Encoding, `multipart/*` other than form-data
 * (chunked too), the joined text of large XML documents, and client-hint headers. Attacks get
 * problem details (RFC 9457) and exactly one event through a real gateway; legitimate variants
 * reach the upstream.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { charsetReading, textReadings, walkXml, XML_JOIN_CAP } from '../../../src/controls/inspection/body.ts';
import { fitsHeaderGrammar } from '../../../src/controls/inspection/headers.ts';
import type { RequestStage } from '../../../src/pipeline/stage.ts';
import type { Rejection } from '../../../src/pipeline/verdict.ts';
import { echoUpstream, httpRequestText, type RawResponse, startTestGateway, type TestGateway, type TestUpstream } from '../../helpers/gateway.ts';
import { inspectionStage, runInspection } from '../../helpers/inspection.ts';

const SQLI = "1' UNION SELECT password FROM users--";

/** A multipart body with boundary `B` from raw part header blocks and contents. */
function multipart(parts: [headers: string, content: string | Buffer][], boundary = 'B'): Buffer {
  const chunks: Buffer[] = [];
  for (const [headers, content] of parts)
    chunks.push(
      Buffer.from(`--${boundary}\r\n${headers}${headers === '' ? '' : '\r\n'}\r\n`),
      Buffer.isBuffer(content) ? content : Buffer.from(content),
      Buffer.from('\r\n'),
    );
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

/** Sends `body` with chunked transfer coding (no Content-Length), in two writes. */
function sendChunked(url: string, body: Buffer, headers: Record<string, string>): Promise<RawResponse> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    const half = body.length >> 1;
    req.write(body.subarray(0, half));
    req.end(body.subarray(half));
  });
}

describe('body reading (through a real gateway)', () => {
  let up: TestUpstream;
  let gw: TestGateway;
  let gw2: TestGateway;
  before(async () => {
    up = await echoUpstream();
    gw = await startTestGateway({ apis: [{ name: 'api', upstream: { targets: [up.url] } }] });
    gw2 = await startTestGateway({ apis: [{ name: 'api', upstream: { targets: [up.url] }, controls: { inspection: { paranoia_level: 2 } } }] });
  });
  after(async () => {
    await gw.close(0);
    await gw2.close(0);
    await up.close();
  });

  type Sent = RawResponse & { json: Record<string, unknown>; events: string[] };
  async function send(body: string | Buffer, headers: Record<string, string>, opts: { chunked?: boolean; g?: TestGateway } = {}): Promise<Sent> {
    const g = opts.g ?? gw;
    const before = g.events.length;
    const buf = Buffer.isBuffer(body) ? body : Buffer.from(body);
    const r = opts.chunked
      ? await sendChunked(`${g.url}/x`, buf, headers)
      : await httpRequestText(`${g.url}/x`, { method: 'POST', headers: { 'content-length': String(buf.length), ...headers }, body: buf });
    await new Promise((res) => setImmediate(res));
    return { ...r, json: JSON.parse(r.body) as Record<string, unknown>, events: g.events.slice(before).map((e) => e.reason) };
  }
  function rejected(r: Sent, status: number, reason: string): void {
    assert.equal(r.status, status, r.body);
    assert.match(String(r.headers['content-type']), /application\/problem\+json/);
    assert.equal(r.json.type, `https://rampart.dev/problems/${reason}`);
    assert.equal(r.json.status, status);
    assert.deepEqual(r.events, [reason]);
  }
  function passed(r: Sent, bytes: number): void {
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json.bytes, bytes);
  }
  const MP = { 'content-type': 'multipart/form-data; boundary=B' };

  describe('charsets that are not ASCII-compatible (finding 1)', () => {
    it('classifies charsets: UTF-16/32, UTF-7, EBCDIC, ISO-2022 and unknown labels are incompatible', () => {
      for (const c of [
        'utf-16',
        'utf-16le',
        'utf-16be',
        'ucs-2',
        'unicode',
        'csunicode',
        'unicodefffe',
        'utf-32',
        'utf-32le',
        'utf-7',
        'cp037',
        'ibm037',
        'ebcdic-cp-us',
        'ibm1047',
        'iso-2022-jp',
        'iso-2022-kr',
        'hz-gb-2312',
        'x-unknown',
        'binary',
      ])
        assert.equal(charsetReading(c), 'incompatible', c);
      for (const c of ['iso-8859-1', 'latin1', 'windows-1252', 'koi8-r', 'ibm866', 'shift_jis', 'gbk', 'big5', 'euc-jp'])
        assert.equal(charsetReading(c), 'ascii-compatible', c);
      for (const c of [undefined, 'utf-8', 'utf8', 'us-ascii', 'unicode-1-1-utf-8']) assert.equal(charsetReading(c), 'utf-8', c);
    });

    it('refuses form, text and unknown-type bodies declared UTF-16 (raw ASCII bytes) with 415 at PL1 and PL2', async () => {
      const cases: [string, string][] = [
        ["q=' or 1=1--", 'application/x-www-form-urlencoded; charset=utf-16le'],
        ['_method=DELETE&__proto__[isAdmin]=1', 'application/x-www-form-urlencoded; charset=utf-16le'],
        ["q=' or 1=1--", 'application/x-www-form-urlencoded; charset="UTF-16"'],
        [SQLI, 'text/plain; charset=utf-16le'],
        [SQLI, 'text/csv; charset=UTF-32'],
        [SQLI, 'application/x-foo; charset=utf-16le'],
        ['+ADw-script+AD4-alert(1)+ADw-/script+AD4-', 'text/plain; charset=utf-7'],
        [SQLI, 'application/octet-stream; charset=cp037'],
      ];
      for (const g of [gw, gw2])
        for (const [body, ct] of cases) {
          const r = await send(body, { 'content-type': ct }, { g });
          rejected(r, 415, 'unsupported-charset');
          assert.ok(typeof r.json.charset === 'string', ct);
        }
    });

    it('refuses a multipart field, part or text file declared UTF-16', async () => {
      const field = multipart([['Content-Disposition: form-data; name="q"\r\nContent-Type: text/plain; charset=utf-16le', "' or 1=1--"]]);
      rejected(await send(field, MP), 415, 'unsupported-charset');
      const file = multipart([['Content-Disposition: form-data; name="f"; filename="a.txt"\r\nContent-Type: text/plain; charset=utf-16le', SQLI]]);
      rejected(await send(file, MP), 415, 'unsupported-charset');
      const ok = multipart([['Content-Disposition: form-data; name="q"\r\nContent-Type: text/plain; charset=utf-8', 'hello world']]);
      passed(await send(ok, MP), ok.length);
    });

    it('reads a legacy ASCII-compatible charset both ways: the declared reading and the raw bytes', async () => {
      // Shift_JIS: 0x81 followed by 'u' (a trail byte) is one character to the declared reading
      const bytes = Buffer.concat([Buffer.from("q=1' "), Buffer.from([0x81]), Buffer.from('union select password from users--')]);
      const [declared, raw] = textReadings(bytes, 'shift_jis');
      assert.ok(!(declared as string).includes('union'));
      assert.ok((raw as string).includes('union select'));
      rejected(await send(bytes, { 'content-type': 'application/x-www-form-urlencoded; charset=shift_jis' }), 403, 'injection-detected');
      // legitimate Latin-1 and Shift_JIS text passes
      const latin = Buffer.concat([Buffer.from('name=Zo'), Buffer.from([0xeb]), Buffer.from('&city=M'), Buffer.from([0xfc]), Buffer.from('nchen')]);
      passed(await send(latin, { 'content-type': 'text/plain; charset=iso-8859-1' }), latin.length);
      const sjis = Buffer.from([0x82, 0xb1, 0x82, 0xf1, 0x82, 0xc9, 0x82, 0xbf, 0x82, 0xcd]); // こんにちは
      passed(await send(sjis, { 'content-type': 'text/plain; charset=shift_jis' }), sjis.length);
      const form = Buffer.from('q=hello+world&lang=en');
      passed(await send(form, { 'content-type': 'application/x-www-form-urlencoded; charset=UTF-8' }), form.length);
    });

    it('JSON declared UTF-16 cannot hide a payload either way', async () => {
      // plain ASCII bytes declared UTF-16: the declared reading does not parse, so it is refused
      const ascii = await send(JSON.stringify({ q: "' or 1=1--" }), { 'content-type': 'application/json; charset=utf-16le' });
      rejected(ascii, 400, 'body-malformed');
      // real UTF-16LE JSON (what Express and Python's json read): inspected decoded
      const attack = Buffer.from(JSON.stringify({ q: SQLI }), 'utf16le');
      rejected(await send(attack, { 'content-type': 'application/json; charset=utf-16le' }), 403, 'injection-detected');
      const ok = Buffer.from(JSON.stringify({ q: 'hello world' }), 'utf16le');
      passed(await send(ok, { 'content-type': 'application/json; charset=utf-16le' }), ok.length);
    });
  });

  describe('multipart Content-Transfer-Encoding (finding 2)', () => {
    it('refuses quoted-printable and base64 parts with 400 multipart-part-ambiguous', async () => {
      const qp = multipart([['Content-Disposition: form-data; name="q"\r\nContent-Transfer-Encoding: quoted-printable', '=27=20=6Fr=201=3D1=2D=2D']]);
      rejected(await send(qp, MP), 400, 'multipart-part-ambiguous');
      const b64 = multipart([
        [
          'Content-Disposition: form-data; name="f"; filename="a.txt"\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: BASE64',
          Buffer.from(SQLI).toString('base64'),
        ],
      ]);
      rejected(await send(b64, MP), 400, 'multipart-part-ambiguous');
      const twice = multipart([['Content-Disposition: form-data; name="q"\r\nContent-Transfer-Encoding: 8bit\r\nContent-Transfer-Encoding: binary', 'hi']]);
      rejected(await send(twice, MP), 400, 'multipart-part-ambiguous');
    });

    it('passes the identity encodings 7bit, 8bit and binary', async () => {
      for (const cte of ['7bit', '8bit', 'Binary']) {
        const ok = multipart([[`Content-Disposition: form-data; name="q"\r\nContent-Transfer-Encoding: ${cte}`, 'hello world']]);
        passed(await send(ok, MP), ok.length);
      }
    });
  });

  describe('every multipart/* is parsed, chunked too (finding 3)', () => {
    const mixed = multipart([
      ['Content-Type: application/json', JSON.stringify({ q: SQLI })],
      ['Content-Type: image/png', Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 0])],
    ]);
    for (const type of ['multipart/mixed', 'multipart/related', 'multipart/alternative'])
      for (const chunked of [false, true])
        it(`blocks an attack in a ${type} entity${chunked ? ' (chunked)' : ''}`, async () => {
          const r = await send(mixed, { 'content-type': `${type}; boundary=B` }, { chunked });
          rejected(r, 403, 'injection-detected');
          assert.equal(r.json.location, 'body:/0/q');
        });

    it('blocks a named field of multipart/mixed and refuses a malformed chunked one', async () => {
      const named = multipart([['Content-Disposition: form-data; name="q"', SQLI]]);
      const r = await send(named, { 'content-type': 'multipart/mixed; boundary=B' }, { chunked: true });
      rejected(r, 403, 'injection-detected');
      assert.equal(r.json.location, 'body:/q');
      rejected(await send('no boundary here', { 'content-type': 'multipart/related; boundary=B' }, { chunked: true }), 400, 'body-malformed');
      const attachment = multipart([['Content-Disposition: attachment; filename="notes.txt"\r\nContent-Type: text/plain', SQLI]]);
      const a = await send(attachment, { 'content-type': 'multipart/mixed; boundary=B' });
      rejected(a, 403, 'injection-detected');
      assert.equal(a.json.location, 'body:/0');
    });

    it('passes a multipart/related upload (JSON metadata and media) and an OData-style batch', async () => {
      const related = multipart([
        ['Content-Type: application/json; charset=UTF-8', JSON.stringify({ name: 'photo.png', parents: ['root'], description: 'Holiday photo' })],
        ['Content-Type: image/png', Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13])],
      ]);
      passed(await send(related, { 'content-type': 'multipart/related; boundary=B' }, { chunked: true }), related.length);
      const batch = multipart([
        ['Content-Type: application/http\r\nContent-Transfer-Encoding: binary', 'GET Customers?$top=2 HTTP/1.1\r\nAccept: application/json\r\n\r\n'],
        [
          'Content-Type: application/http\r\nContent-Transfer-Encoding: binary',
          'POST Customers HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{"Name":"Alfreds Futterkiste","City":"Berlin"}',
        ],
      ]);
      passed(await send(batch, { 'content-type': 'multipart/mixed; boundary=B' }), batch.length);
    });
  });

  describe('client hints (finding 5)', () => {
    const chrome: Record<string, string> = {
      'user-agent': 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
      accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7',
      'accept-language': 'en-US,en;q=0.9,de;q=0.8',
      'accept-encoding': 'gzip, deflate, br, zstd',
      'sec-ch-ua': '"Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99"',
      'sec-ch-ua-mobile': '?0',
      'sec-ch-ua-platform': '"Windows"',
      'sec-ch-ua-platform-version': '"15.0.0"',
      'sec-ch-ua-arch': '"x86"',
      'sec-ch-ua-bitness': '"64"',
      'sec-ch-ua-wow64': '?0',
      'sec-ch-ua-model': '""',
      'sec-ch-ua-full-version': '"124.0.6367.91"',
      'sec-ch-ua-full-version-list': '"Chromium";v="124.0.6367.91", "Google Chrome";v="124.0.6367.91", "Not-A.Brand";v="99.0.0.0"',
      'sec-ch-ua-form-factors': '"Desktop"',
      'sec-ch-prefers-color-scheme': 'dark',
      'sec-ch-prefers-reduced-motion': '"no-preference"',
      'sec-ch-viewport-width': '1920',
      'sec-ch-dpr': '1.25',
      'sec-ch-device-memory': '8',
      'sec-fetch-site': 'same-origin',
      'sec-fetch-mode': 'navigate',
      'sec-fetch-dest': 'document',
      'sec-fetch-user': '?1',
      'upgrade-insecure-requests': '1',
    };

    it('passes a full Chrome header set with every high-entropy hint at PL1, PL2 and PL3', async () => {
      for (const name of Object.keys(chrome)) if (name.startsWith('sec-ch-')) assert.ok(fitsHeaderGrammar(name, chrome[name] as string), name);
      for (const pl of [1, 2, 3]) {
        const g = await startTestGateway({ apis: [{ name: 'api', upstream: { targets: [up.url] }, controls: { inspection: { paranoia_level: pl } } }] });
        try {
          const r = await httpRequestText(`${g.url}/page`, { headers: chrome });
          assert.equal(r.status, 200, `PL${pl}: ${r.body}`);
          assert.deepEqual(g.events, []);
          const empty = await httpRequestText(`${g.url}/page`, { headers: { 'accept-language': '""', 'sec-ch-ua-arch': '""', 'sec-ch-ua-bitness': '""' } });
          assert.equal(empty.status, 200, `PL${pl}: ${empty.body}`);
        } finally {
          await g.close(0);
        }
      }
    });

    it('inspects a client hint that does not fit the structured-field grammar', async () => {
      const before = gw.events.length;
      const r = await httpRequestText(`${gw.url}/page`, { headers: { 'sec-ch-ua-model': `"${SQLI}"` } });
      assert.equal(r.status, 403);
      assert.equal((JSON.parse(r.body) as { location: string }).location, 'header:sec-ch-ua-model');
      assert.deepEqual(
        gw.events.slice(before).map((e) => e.reason),
        ['injection-detected'],
      );
    });
  });
});

describe('XML joined text is an inspection aid, not a limit (finding 4)', () => {
  const stageFor = () => inspectionStage();
  const run = async (stage: RequestStage, body: string): Promise<Rejection | undefined> =>
    (await runInspection(stage, { body, headers: { 'content-type': 'application/xml' }, maxBodyBytes: 16 * 1024 * 1024 })).v;

  it('passes a 3.6 MB feed of 50,000 items', { timeout: 30_000 }, async () => {
    const feed = `<?xml version="1.0"?><rss><channel>${'<item><title>Hello world</title><desc>Some text here</desc></item>'.repeat(50_000)}</channel></rss>`;
    assert.equal(await run(await stageFor(), feed), undefined);
  });

  it('caps the joined text per element and still sees a split payload after a long one', async () => {
    let longest = 0;
    const filler = 'lorem ipsum dolor sit amet '.repeat(2000);
    walkXml(`<r><a>${filler}<b>x</b>${filler}</a><c>y</c></r>`, { maxDepth: 32, maxString: 1_000_000 }, (v) => {
      longest = Math.max(longest, v.length);
      return undefined;
    });
    assert.equal(longest, filler.length); // the text nodes themselves; joined texts stay within the cap
    const joined: string[] = [];
    walkXml(`<r><a>${filler}<b>x</b></a><c>y</c></r>`, { maxDepth: 32, maxString: 1_000_000 }, (v) => {
      if (v.length === XML_JOIN_CAP) joined.push(v);
      return undefined;
    });
    assert.equal(joined.length, 2); // <a>'s capped text and <r>'s (full after <a>)
    const split = `<r><big>${filler}<i>x</i></big><q>1' UNION SEL<![CDATA[ECT password FROM users--]]></q></r>`;
    assert.equal((await run(await stageFor(), split))?.problem.status, 403);
  });

  it('still refuses one text node past max_string', async () => {
    const r = await run(await stageFor(), `<r>${'a'.repeat(1_000_001)}</r>`);
    assert.equal(r?.problem.code, 'xml-limit-exceeded');
  });
});
