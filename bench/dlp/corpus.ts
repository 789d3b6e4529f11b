/**
 * Labelled DLP corpus, generated with @faker-js/faker from a fixed seed: positives for every
 * detector, and near misses that must not match (16-digit order numbers failing Luhn,
 * SSN-shaped invalid numbers, phone-shaped ids, UUIDs, timestamps, version strings, bad IBAN
 * checksums, placeholder passwords, ICD-shaped product codes, keys with bad checksums).
 * Each item is one JSON value under one key, so a finding maps to exactly one label.
 */
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { Faker, en_US, en } from '@faker-js/faker';
import { createRampartApiKey } from '../../src/controls/dlp/apikey.ts';
import { luhnValid } from '../../src/controls/dlp/validate.ts';

/** One labelled item: `label` is the detector that must fire, or `null` for a near miss. */
export interface CorpusItem {
  key: string;
  value: string | number;
  label: string | null;
  /** What kind of item this is (for per-kind error listings). */
  kind: string;
}

/** The MRN pattern the corpus assumes (configured in the bench). */
export const BENCH_MRN = { pattern: 'MR\\d{7}', flags: '', keys: ['mrn', 'medical_record_number'], confidence: 0.3 };

const AREA_CODES = ['212', '213', '303', '305', '312', '404', '415', '503', '512', '602', '617', '646', '702', '718', '720', '206', '615', '919'];
const ICD = [
  'E11.9',
  'I10',
  'J45.909',
  'M54.5',
  'F32.9',
  'K21.9',
  'N39.0',
  'R51.9',
  'Z00.00',
  'E78.5',
  'G43.909',
  'J06.9',
  'S72.001A',
  'I25.10',
  'E66.9',
  'F41.1',
  'C50.911',
  'O80',
  'T78.40XA',
  'Z79.4',
];

/**
 * Builds the corpus.
 * @param seed faker seed (fixed for reproducible figures).
 * @param perDetector positives per detector (near misses scale with it).
 */
export function buildCorpus(seed = 20250101, perDetector = 400): CorpusItem[] {
  const f = new Faker({ locale: [en_US, en] });
  f.seed(seed);
  const items: CorpusItem[] = [];
  const add = (label: string | null, kind: string, key: string, value: string | number) => items.push({ key, value, label, kind });
  const digits = (n: number) => f.string.numeric({ length: n, allowLeadingZeros: true });
  const pick = <T>(xs: readonly T[]): T => f.helpers.arrayElement(xs);
  const luhnFix = (body: string, valid: boolean): string => {
    for (let d = 0; d < 10; d++) if (luhnValid(body + d) === valid) return body + d;
    return body + '0';
  };
  const group4 = (s: string, sep: string) => s.replace(/(\d{4})(?=\d)/g, `$1${sep}`);
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');

  for (let i = 0; i < perDetector; i++) {
    // Cards: faker numbers for current networks, bare, dashed or spaced; under card keys or neutral keys.
    const issuer = pick(['visa', 'mastercard', 'american_express', 'discover', 'jcb', 'diners_club'] as const);
    const raw = f.finance.creditCardNumber({ issuer }).replace(/\D/g, '');
    const card = pick(['bare', 'space', 'dash']) === 'bare' ? raw : group4(raw, pick([' ', '-']));
    add('card', 'card', pick(['card_number', 'cc', 'pan', 'payment_card', 'value', 'data']), card);
    // SSNs: valid areas/groups/serials; dashed anywhere, bare under an SSN key.
    let area = f.number.int({ min: 1, max: 899 });
    if (area === 666) area = 665;
    const ssnDigits = `${String(area).padStart(3, '0')}${String(f.number.int({ min: 1, max: 99 })).padStart(2, '0')}${String(f.number.int({ min: 1, max: 9999 })).padStart(4, '0')}`;
    const dashed = `${ssnDigits.slice(0, 3)}-${ssnDigits.slice(3, 5)}-${ssnDigits.slice(5)}`;
    if (i % 3 === 0) add('ssn', 'ssn-bare', pick(['ssn', 'social_security_number', 'taxpayerSSN']), ssnDigits);
    else add('ssn', 'ssn-dashed', pick(['ssn', 'value', 'customer_ssn', 'note']), i % 3 === 1 ? dashed : `SSN on file: ${dashed}`);
    add('iban', 'iban', pick(['iban', 'account', 'value']), f.finance.iban({ formatted: i % 2 === 0 }));
    add('email', 'email', pick(['email', 'contact', 'value']), f.internet.email());
    // Phones: assigned US area codes, exchange 2–9xx; national, dotted, E.164 and international formats.
    const nat = `${pick(AREA_CODES)}${f.number.int({ min: 2, max: 9 })}${digits(2)}${digits(4)}`;
    const phoneFmt = i % 5;
    const phone =
      phoneFmt === 0
        ? `(${nat.slice(0, 3)}) ${nat.slice(3, 6)}-${nat.slice(6)}`
        : phoneFmt === 1
          ? `${nat.slice(0, 3)}.${nat.slice(3, 6)}.${nat.slice(6)}`
          : phoneFmt === 2
            ? `+1${nat}`
            : phoneFmt === 3
              ? `+1 ${nat.slice(0, 3)}-${nat.slice(3, 6)}-${nat.slice(6)}`
              : nat;
    add('phone', 'phone', phoneFmt === 4 ? pick(['phone', 'mobile', 'phone_number']) : pick(['phone', 'contact', 'value']), phone);
    // NPI: 1/2 + 8 digits + Luhn check over 80840.
    const npiBody = `${pick(['1', '2'])}${digits(8)}`;
    let npi = '';
    for (let d = 0; d < 10; d++) if (luhnValid(`80840${npiBody}${d}`)) npi = `${npiBody}${d}`;
    add('npi', 'npi', pick(['npi', 'provider_npi', 'npiNumber']), i % 4 === 0 ? `Referring provider NPI ${npi}` : npi);
    add('icd10', 'icd10', pick(['diagnosis_code', 'icd10', 'dx', 'diagnosis']), pick(ICD));
    add('mrn', 'mrn', pick(['mrn', 'medical_record_number', 'patientMrn']), `MR${digits(7)}`);
    add(
      'aws_access_key',
      'aws',
      pick(['access_key_id', 'value', 'aws']),
      `${pick(['AKIA', 'ASIA'])}${f.string.fromCharacters('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', 16)}`,
    );
    add(
      'rampart_api_key',
      'rampart',
      pick(['key', 'value', 'token']),
      createRampartApiKey(pick(['live', 'test']), Uint8Array.from(f.helpers.multiple(() => f.number.int(255), { count: 32 }))),
    );
    const jwt = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: f.string.uuid(), name: f.person.fullName(), iat: f.number.int({ min: 1.6e9, max: 1.8e9 }) })}`;
    add('jwt', 'jwt', pick(['id_token', 'value', 'auth']), `${jwt}.${createHmac('sha256', 'k').update(jwt).digest('base64url')}`);
    add(
      'secret',
      'secret',
      pick(['password', 'client_secret', 'api_key', 'dbPassword', 'secret']),
      f.internet.password({ length: f.number.int({ min: 12, max: 32 }) }),
    );
  }
  // Private keys: real ones (EC is fast to generate; a few RSA), PKCS#8 and SEC1/PKCS#1 PEM.
  for (let i = 0; i < Math.min(perDetector, 120); i++) {
    const pem =
      i % 10 === 0
        ? generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs1', format: 'pem' })
        : generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: i % 2 ? 'pkcs8' : 'sec1', format: 'pem' });
    add('private_key', 'pem', pick(['private_key', 'key', 'value']), String(pem));
  }

  // Near misses.
  for (let i = 0; i < perDetector; i++) {
    add(null, 'order-luhn-fail', pick(['order_number', 'value', 'reference']), luhnFix(`${pick(['4', '5'])}${digits(14)}`, false));
    add(null, 'order-luhn-ok', pick(['order_id', 'orderNumber', 'tracking_number']), luhnFix(`4${digits(14)}`, true));
    const bad = pick(['000', '666', `9${digits(2)}`]);
    add(null, 'ssn-invalid', pick(['ssn', 'value']), pick([`${bad}-${digits(2)}-${digits(4)}`, `123-00-${digits(4)}`, `123-45-0000`]));
    add(null, 'ssn-shaped-id', pick(['order_id', 'invoice_id', 'ref']), digits(9));
    add(
      null,
      'phone-shaped-id',
      pick(['order_id', 'tracking_number', 'invoice_id', 'shipment_id']),
      `${pick(AREA_CODES)}${f.number.int({ min: 2, max: 9 })}${digits(6)}`,
    );
    add(null, 'uuid', pick(['id', 'value', 'request_id']), f.string.uuid());
    add(
      null,
      'timestamp',
      pick(['created_at', 'ts', 'value']),
      pick([f.date.past().getTime(), Math.floor(f.date.past().getTime() / 1000), f.date.past().toISOString()]),
    );
    add(null, 'version', pick(['version', 'value']), `${f.number.int(20)}.${f.number.int(99)}.${f.number.int(9999)}`);
    add(
      null,
      'iban-bad-checksum',
      pick(['iban', 'value']),
      f.finance.iban().replace(/^([A-Z]{2})(\d{2})/, (_m, c: string, d: string) => `${c}${String((Number(d) + 1) % 100).padStart(2, '0')}`),
    );
    add(null, 'email-like', pick(['email', 'handle', 'value']), pick(['user@localhost', `@${f.internet.username()}`, `${f.internet.username()}@`, 'a@b.c']));
    add(
      null,
      'npi-under-order',
      pick(['order_id', 'ticket_id']),
      (() => {
        const body = `1${digits(8)}`;
        for (let d = 0; d < 10; d++) if (luhnValid(`80840${body}${d}`)) return `${body}${d}`;
        return body;
      })(),
    );
    add(null, 'icd-shaped-code', pick(['product_code', 'sku', 'grade']), pick(['B2B', 'A12', 'C30', `${pick(['E', 'J', 'K'])}${digits(2)}`]));
    add(null, 'mrn-shaped-sku', pick(['sku', 'product_id']), `MR${digits(7)}`);
    add(
      null,
      'aws-like',
      pick(['value', 'code']),
      pick([
        `AKIA${f.string.fromCharacters('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', 15)}`,
        `akia${f.string.alpha({ length: 16, casing: 'lower' })}`,
        `XKIA${f.string.fromCharacters('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', 16)}`,
      ]),
    );
    const rk = createRampartApiKey('live', Uint8Array.from(f.helpers.multiple(() => f.number.int(255), { count: 32 })));
    add(null, 'rampart-bad-checksum', pick(['key', 'value']), rk.slice(0, -1) + (rk.endsWith('A') ? 'B' : 'A'));
    add(null, 'jwt-like', pick(['value', 'token']), `eyJ${f.string.alphanumeric(10)}.eyJ${f.string.alphanumeric(12)}.${f.string.alphanumeric(8)}`);
    add(
      null,
      'secret-placeholder',
      pick(['password', 'client_secret']),
      pick(['********', '[REDACTED]', '', 'changeme', '<hidden>', '${DB_PASSWORD}', 'xxxxxxxxxxxx']),
    );
    add(null, 'public-key', 'public_key', '-----BEGIN PUBLIC KEY-----\\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\\n-----END PUBLIC KEY-----');
    add(null, 'price', pick(['price', 'amount', 'value']), f.number.float({ min: 1000, max: 99999999, fractionDigits: 2 }));
    add(null, 'zip+4', pick(['zip', 'postal_code']), `${digits(5)}-${digits(4)}`);
  }
  return items;
}
