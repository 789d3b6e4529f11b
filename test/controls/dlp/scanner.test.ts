import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createRampartApiKey, isRampartApiKey } from '../../../src/controls/dlp/apikey.ts';
import { BUILTIN_DETECTORS, maskValue } from '../../../src/controls/dlp/detectors.ts';
import { Scanner, applyReplacements, applyReplacementsToBuffer, compileLinear, compilePattern, isBacktrackSafe } from '../../../src/controls/dlp/scanner.ts';
import { Faker, en } from '@faker-js/faker';
import { ValidationErrorsIBAN, electronicFormatIBAN, validateIBAN } from 'ibantools';
import {
  cardNetwork,
  isCardNumber,
  isIcd10CmCode,
  isJwt,
  isValidIban,
  isValidNpi,
  isValidPhone,
  isValidSsn,
  looksLikeSecret,
  luhnValid,
} from '../../../src/controls/dlp/validate.ts';

const ALL = new Set<string>(BUILTIN_DETECTORS);

function scanner(detectors: Iterable<string> = ALL, extra: Partial<ConstructorParameters<typeof Scanner>[0]> = {}): Scanner {
  return new Scanner({ detectors: new Set(detectors), thresholds: {}, phoneRegion: 'US', healthContext: false, patterns: [], ...extra });
}

/** Scans a JSON value and returns `detector path` lines and the redacted document. */
function run(sc: Scanner, doc: unknown, redact: Iterable<string> = ALL): { found: string[]; out: string } {
  const body = typeof doc === 'string' ? doc : JSON.stringify(doc);
  const r = sc.scan(body, 'json', new Set(redact));
  return { found: r.findings.map((f) => `${f.detector} ${f.path}`), out: applyReplacements(body, r.replacements) };
}

describe('validators', () => {
  test('Luhn, card networks and lengths', () => {
    assert.equal(luhnValid('4242424242424242'), true);
    assert.equal(luhnValid('4242424242424241'), false);
    assert.equal(cardNetwork('4242424242424242'), 'visa');
    assert.equal(cardNetwork('5555555555554444'), 'mastercard');
    assert.equal(cardNetwork('2223003122003222'), 'mastercard');
    assert.equal(cardNetwork('378282246310005'), 'amex');
    assert.equal(cardNetwork('6011111111111117'), 'discover');
    assert.equal(cardNetwork('3566002020360505'), 'jcb');
    assert.equal(cardNetwork('36227206271667'), 'diners');
    assert.equal(isCardNumber('378282246310005'), true);
    // Luhn-valid but no network issues 9xxx / a 15-digit Visa.
    assert.equal(isCardNumber('9999999999999995'), false);
    assert.equal(isCardNumber('424242424242428'), false);
  });

  test('SSN exclusions: area 000, 666, 9xx; group 00; serial 0000', () => {
    assert.equal(isValidSsn('123456789'), true);
    for (const bad of ['000456789', '666456789', '900456789', '999456789', '123006789', '123450000']) assert.equal(isValidSsn(bad), false, bad);
  });

  test('NPI (Luhn over 80840), IBAN mod-97, phone, ICD-10-CM, JWT, secrets', () => {
    assert.equal(isValidNpi('1234567893'), true);
    assert.equal(isValidNpi('1234567890'), false);
    assert.equal(isValidIban('DE89 3704 0044 0532 0130 00'), true);
    assert.equal(isValidIban('DE89370400440532013001'), false);
    assert.equal(isValidPhone('(415) 555-2671', 'US'), true);
    assert.equal(isValidPhone('1700000000', 'US'), false);
    assert.equal(isValidPhone('+44 20 7946 0958', 'US'), true);
    assert.equal(isIcd10CmCode('E11.9'), true);
    assert.equal(isIcd10CmCode('S72.001A'), true);
    assert.equal(isIcd10CmCode('U12'), false);
    const seg = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    assert.equal(isJwt(`${seg({ alg: 'HS256' })}.${seg({ sub: 'a' })}.c2ln`), true);
    assert.equal(isJwt(`${seg({ typ: 'x' })}.${seg({ sub: 'a' })}.c2ln`), false);
    assert.equal(looksLikeSecret('S3cr3t!pa55w0rd#x'), true);
    assert.equal(looksLikeSecret('********'), false);
    assert.equal(looksLikeSecret('[REDACTED]'), false);
    assert.equal(looksLikeSecret('aaaaaaaaaaaa'), false);
  });

  test('Rampart API key: fixed width, CRC32 checksum', () => {
    const k = createRampartApiKey('live', new Uint8Array(32).fill(7));
    assert.equal(k.length, 57);
    assert.match(k, /^rk_live_[0-9A-Za-z]{49}$/);
    assert.equal(isRampartApiKey(k), true);
    assert.equal(isRampartApiKey(createRampartApiKey('test', new Uint8Array(32))), true);
    assert.equal(createRampartApiKey('test', new Uint8Array(32)).slice(8, 51), '0'.repeat(43));
    // One character changed in the body: the checksum no longer matches.
    const bad = k.slice(0, 20) + (k[20] === 'A' ? 'B' : 'A') + k.slice(21);
    assert.equal(isRampartApiKey(bad), false);
    assert.equal(isRampartApiKey(`rk_prod_${k.slice(8)}`), false);
  });

  test('format-preserving masks', () => {
    assert.equal(maskValue('card', '4242 4242 4242 4242'), '**** **** **** 4242');
    assert.equal(maskValue('ssn', '123-45-6789'), '***-**-6789');
    assert.equal(maskValue('iban', 'DE89 3704 0044 0532 0130 00'), 'DE** **** **** **** **30 00');
    assert.equal(maskValue('email', 'jane@example.com'), 'j***@example.com');
    assert.equal(maskValue('phone', '(415) 555-2671'), '(***) ***-**71');
    assert.equal(maskValue('aws_access_key', 'AKIAIOSFODNN7EXAMPLE'), 'AKIA****************');
  });

  test('custom patterns must be linear-time', () => {
    assert.throws(() => compileLinear('x', '(a)\\1', ''), /dlp detector "x": pattern is not a linear-time/);
    assert.throws(() => compileLinear('x', '(?<=a)b', ''), /not a linear-time/);
    assert.throws(() => compileLinear('x', 'a', 'gm'), /only the "i" flag/);
    // A pattern that backtracks exponentially in the default engine runs in linear time here.
    const re = compileLinear('x', '(a|a)*b', '');
    assert.equal(re.test('a'.repeat(5000)), false);
  });
});

describe('scanner on JSON', () => {
  test('finds validated values with their JSON paths and redacts with masks', () => {
    const sc = scanner();
    const { found, out } = run(sc, {
      users: [
        { card: '4242 4242 4242 4242', ssn: '123-45-6789', email: 'jane.doe@example.com', phone: '(415) 555-2671', iban: 'DE89 3704 0044 0532 0130 00' },
        { aws: 'AKIAIOSFODNN7EXAMPLE', password: 'S3cr3t!pa55w0rd#x', pem: '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----' },
      ],
    });
    assert.deepEqual(found, [
      'card $.users[0].card',
      'ssn $.users[0].ssn',
      'email $.users[0].email',
      'phone $.users[0].phone',
      'iban $.users[0].iban',
      'aws_access_key $.users[1].aws',
      'secret $.users[1].password',
      'private_key $.users[1].pem',
    ]);
    assert.equal(
      out,
      '{"users":[{"card":"**** **** **** 4242","ssn":"***-**-6789","email":"j*******@example.com","phone":"(***) ***-**71","iban":"DE** **** **** **** **30 00"},{"aws":"AKIA****************","password":"[REDACTED]","pem":"[REDACTED PRIVATE KEY]"}]}',
    );
  });

  test('key names raise and lower confidence', () => {
    const sc = scanner(['ssn', 'card', 'phone', 'npi']);
    const { found } = run(sc, {
      ssn: '123456789',
      order_id: '123456789',
      tax: '123456789',
      tracking_number: '4155552671',
      phone: '4155552671',
      npi: '1234567893',
      customer_npi_code: '1234567893',
      n: '1234567893',
      orderId: '4242424242424242',
      card_number: '4242424242424242',
    });
    assert.deepEqual(found, ['ssn $.ssn', 'phone $.phone', 'npi $.npi', 'npi $.customer_npi_code', 'card $.card_number']);
  });

  test('near misses: Luhn failures, invalid SSNs, UUIDs, timestamps, versions, dates', () => {
    const sc = scanner();
    const { found } = run(sc, {
      a: '4242424242424241',
      b: '000-12-3456',
      c: '666-12-3456',
      d: '912-34-5678',
      e: '123-00-4567',
      f: '123-45-0000',
      g: '123e4567-e89b-12d3-a456-426614174000',
      h: 1700000000123,
      i: '2024-01-15T10:20:30Z',
      j: '1.22.333',
      k: '2024-01-15',
      l: 12345.67,
      m: 'AKIAIOSFODNN7EXAMPL',
      n: 'eyJhbGciOi.eyJzdWIi.x',
    });
    assert.deepEqual(found, []);
  });

  test('free text inside a value gets word context', () => {
    const sc = scanner(['ssn', 'npi']);
    const { found, out } = run(sc, { note: 'Patient SSN 123456789, provider NPI 1234567893, ref 987654321' });
    assert.deepEqual(found, ['ssn $.note', 'npi $.note']);
    assert.equal(out, '{"note":"Patient SSN *****6789, provider NPI ******7893, ref 987654321"}');
  });

  test('escaped strings are decoded before scanning (\\u0034 cannot hide a card)', () => {
    const sc = scanner(['card']);
    const body = '{"x":"\\u00342424242 4242 4242","note":"caf\u00c3\u00a9 4242424242424242"}';
    const r = sc.scan(body, 'json', new Set(['card']));
    assert.deepEqual(
      r.findings.map((f) => f.path),
      ['$.x', '$.note'],
    );
    const out = Buffer.from(applyReplacements(body, r.replacements), 'latin1').toString('utf8');
    assert.equal(out, '{"x":"******** **** 4242","note":"café ************4242"}');
  });

  test('a masked JSON number becomes a string and the document stays valid JSON', () => {
    const { out } = run(scanner(['card']), { card_number: 4242424242424242, n: 1 });
    assert.deepEqual(JSON.parse(out), { card_number: '************4242', n: 1 });
  });

  test('records: objects in the outermost arrays; NDJSON lines', () => {
    const sc = scanner(['card']);
    assert.equal(sc.scan(JSON.stringify({ data: [{ a: [{}, {}] }, { b: 1 }, {}], total: 3 }), 'json', new Set()).records, 3);
    assert.equal(sc.scan('{"a":1}\n{"a":2}\n{"a":3}\n', 'ndjson', new Set()).records, 3);
  });

  test('ICD-10-CM codes only in health contexts; MRN by configured pattern with key context', () => {
    const sc = scanner(['icd10', 'mrn'], { patterns: [{ name: 'mrn', pattern: 'MRN-\\d{8}', flags: '', confidence: 0.3, keys: ['mrn'] }] });
    const { found } = run(sc, { diagnosis_code: 'E11.9', product: 'B2B', diagnoses: ['I10', 'J45.909'], mrn: 'MRN-12345678', other: 'MRN-12345678' });
    assert.deepEqual(found, ['icd10 $.diagnosis_code', 'icd10 $.diagnoses[0]', 'icd10 $.diagnoses[1]', 'mrn $.mrn']);
    const health = scanner(['icd10'], { healthContext: true });
    assert.deepEqual(run(health, { code: 'E11.9' }).found, ['icd10 $.code']);
  });

  test('Rampart API keys, JWTs and keys with non-identifier names (path shows *)', () => {
    const sc = scanner(['rampart_api_key', 'jwt', 'email']);
    const seg = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const jwt = `${seg({ alg: 'HS256', typ: 'JWT' })}.${seg({ sub: 'user-1' })}.abcdef`;
    const key = createRampartApiKey('test', new Uint8Array(32).fill(1));
    const { found, out } = run(sc, { 'jane@example.com': { token: jwt, key }, AKIAIOSFODNN7EXAMPLE: 1 });
    assert.deepEqual(found, ['email $.*', 'jwt $.*.token', 'rampart_api_key $.*.key']);
    assert.equal(out, `{"j***@example.com":{"token":"[REDACTED JWT]","key":"rk_test_${'*'.repeat(49)}"},"AKIAIOSFODNN7EXAMPLE":1}`);
    // A key that is itself sensitive never shows in a path.
    const aws = scanner(['aws_access_key']);
    assert.deepEqual(run(aws, { a: { AKIAIOSFODNN7EXAMPLE: 1 } }).found, ['aws_access_key $.a.*']);
  });
});

describe('scanner on malformed and text bodies', () => {
  test('a truncated JSON body: the partial value is cut off, the rest redacted, the break reported', () => {
    const sc = scanner(['card']);
    const body = '[{"card":"4111 1111 1111 1111"},{"card":"4111 1111 11';
    const r = sc.scan(body, 'json', new Set(['card']));
    assert.deepEqual(r.malformed, { offset: 40, reason: 'unterminated-string', tailStart: 40 });
    assert.equal(applyReplacements(body, r.replacements, r.malformed?.tailStart), '[{"card":"**** **** **** 1111"},{"card":');
  });

  test('after a syntax error, the rest is still scanned as text', () => {
    const sc = scanner(['ssn']);
    const body = '{"a": oops, "ssn": "123-45-6789"}';
    const r = sc.scan(body, 'json', new Set(['ssn']));
    assert.equal(r.malformed?.reason, 'unexpected-token');
    assert.equal(applyReplacements(body, r.replacements), '{"a": oops, "ssn": "***-**-6789"}');
  });

  test('text, CSV and HTML bodies: nearby words give context; line numbers as paths', () => {
    const sc = scanner(['ssn', 'card', 'secret', 'email']);
    const body = 'name,ssn,card\nJane,123-45-6789,4111-1111-1111-1111\n<p>password=Zx9!kQ2#mP7$vL mail jane@example.com</p>';
    const r = sc.scan(body, 'text', new Set(['ssn', 'card', 'secret', 'email']));
    assert.deepEqual(
      r.findings.map((f) => `${f.detector} ${f.path}`),
      ['ssn line 2', 'card line 2', 'secret line 3', 'email line 3'],
    );
    assert.equal(
      applyReplacements(body, r.replacements),
      'name,ssn,card\nJane,***-**-6789,****-****-****-1111\n<p>password=[REDACTED] mail j***@example.com</p>',
    );
  });

  test('garbage never throws', () => {
    const sc = scanner();
    for (const body of ['', '{', '"', '\\', '[1,2', '{"a":"\\u12"}', '{"a":tru', '\u0000\u00ff{]', '[[[[[[[[', '{"a" "b"}', '1 2']) {
      const r = sc.scan(body, 'json', ALL);
      assert.ok(r.malformed !== undefined, body);
    }
  });
});

describe('hot-path equivalences and engines', () => {
  test("isValidIban gives ibantools' verdict (valid, or only the national checksum fails) on IBANs and mutations of them", () => {
    const f = new Faker({ locale: [en] });
    f.seed(8);
    const reference = (t: string) => {
      const e = electronicFormatIBAN(t) as string;
      const r = validateIBAN(e);
      return r.valid || r.errorCodes.every((c) => c === ValidationErrorsIBAN.WrongAccountBankBranchChecksum);
    };
    let valid = 0;
    let checked = 0;
    for (let i = 0; i < 3000; i++) {
      const iban = f.finance.iban({ formatted: i % 2 === 0 });
      const pos = f.number.int({ min: 0, max: iban.length - 1 });
      const alt = f.helpers.arrayElement(['0', '7', 'A', 'Z', ' ']);
      for (const t of [iban, iban.slice(0, pos) + alt + iban.slice(pos + 1), iban.slice(0, -1), `${iban}0`, iban.toLowerCase()]) {
        checked++;
        const v = isValidIban(t);
        assert.equal(v, reference(t), t);
        if (v) valid++;
      }
    }
    assert.equal(checked, 15000);
    assert.ok(valid > 3000, `${valid} valid`);
  });

  test('patterns without unbounded or nested quantifiers use the backtracking engine; the rest the linear-time one', () => {
    for (const p of ['MR\\d{7}', 'EMP-\\d{6}', '[A-Z]{2}-\\d{4,8}', '(?:MRN|MR)[ -]?\\d{6,8}', '(\\d{3}-){2}\\d{4}', 'ab?c?'])
      assert.equal(isBacktrackSafe(p), true, p);
    for (const p of ['\\w+@\\w+', 'a*b', '(a|a)*b', '(a?){3}', '\\d{2,}', '(?:a|b){1,300}', '\\d{1,100}\\d{1,100}', '(x\\d{1,3}){2}'])
      assert.equal(isBacktrackSafe(p), false, p);
    for (const p of ['(a)\\1', '(?<n>a)\\k<n>', '(?<=a)b', 'a(?!b)']) assert.equal(isBacktrackSafe(p), undefined, p);
    assert.equal(compilePattern('m', 'MR\\d{7}', 'i').engine, 'backtracking');
    assert.equal(compilePattern('m', 'MR\\d{7}', 'i').re.flags, 'gi');
    const lin = compilePattern('m', '(a|a)*b', '');
    assert.equal(lin.engine, 'linear');
    assert.equal(lin.re.test('a'.repeat(5000)), false);
    assert.throws(() => compilePattern('m', '(a)\\1', ''), /dlp detector "m": pattern is not a linear-time regular expression/);
    assert.throws(() => compilePattern('m', '[', ''), /dlp detector "m": invalid pattern/);
    assert.throws(() => compilePattern('m', 'a', 'g'), /only the "i" flag/);
    // The scanner finds the same MRNs with either engine.
    const spec = { name: 'mrn', pattern: 'MR\\d{7}', flags: '', keys: ['mrn'], confidence: 0.3 };
    const body = JSON.stringify({ mrn: 'MR1234567', other: 'MR7654321', note: 'mrn MR1111111' });
    const a = scanner(['mrn'], { patterns: [spec] }).scan(body, 'json', new Set(['mrn']));
    const b = scanner(['mrn'], { patterns: [spec], forceLinear: true }).scan(body, 'json', new Set(['mrn']));
    assert.deepEqual(a, b);
    assert.deepEqual(
      a.findings.map((x) => x.path),
      ['$.mrn', '$.note'],
    );
  });

  test('applyReplacementsToBuffer writes the same bytes as applyReplacements, without a string round trip', () => {
    const src = Buffer.from('{"card":"4242 4242 4242 4242","name":"Zoë","ssn":"123-45-6789"}', 'utf8');
    const body = src.toString('latin1');
    const r = scanner(['card', 'ssn']).scan(body, 'json', new Set(['card', 'ssn']));
    const out = applyReplacementsToBuffer(src, r.replacements);
    assert.deepEqual(out, Buffer.from(applyReplacements(body, r.replacements), 'latin1'));
    assert.equal(out.toString('utf8'), '{"card":"**** **** **** 4242","name":"Zoë","ssn":"***-**-6789"}');
    assert.equal(applyReplacementsToBuffer(src, []), src);
    assert.equal(applyReplacementsToBuffer(src, r.replacements, 9).toString(), '{"card":"');
  });

  test('number runs: the prefilter finds exactly what a whole-body scan finds, at run edges too', () => {
    const sc = scanner(['card', 'ssn', 'npi']);
    const body = JSON.stringify({
      a: 'abc4242 4242 4242 4242 4242',
      b: 'x 4242-4242-4242-4242.5',
      c: '4242424242424242',
      d: 'v1.123456789',
      e: '(123) 45-6789 and 123-45-6789',
      f: '1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6',
      g: '1234567893',
    });
    const { found } = run(sc, body, ['card', 'ssn', 'npi']);
    assert.deepEqual(found, ['card $.a', 'card $.c', 'ssn $.e']);
  });

  test('escaped strings are decoded only when they can hold a finding; a hidden one is still found', () => {
    const sc = scanner(['card', 'ssn', 'iban', 'private_key']);
    const body =
      '{"note":"line\\nbreak \\"quoted\\"","x":"\\n4242424242424242","y":"\\u0034242424242424242","k":"-----BEGIN PRIVATE KEY-----\\nMIIE\\n-----END PRIVATE KEY-----"}';
    const r = sc.scan(body, 'json', new Set(['card', 'private_key']));
    assert.deepEqual(
      r.findings.map((f) => `${f.detector} ${f.path}`),
      ['card $.x', 'card $.y', 'private_key $.k'],
    );
    assert.equal(
      applyReplacements(body, r.replacements),
      '{"note":"line\\nbreak \\"quoted\\"","x":"\\n************4242","y":"************4242","k":"[REDACTED PRIVATE KEY]"}',
    );
  });
});
