/**
 * The DLP detector table: names, key-name context, base confidences and format-preserving masks.
 * Patterns only propose candidates; the validators in `validate.ts` decide. Confidence is a number
 * in [0, 1]: a candidate's base confidence from its shape and validation, raised by a positive
 * JSON key name or nearby words (`ssn`, `card_number`) and lowered by a negative one (`order_id`,
 * `tracking_number`); a finding counts when it reaches the detector's threshold.
 */

/** Built-in detector names (the keys under `dlp.detectors`). */
export const BUILTIN_DETECTORS = [
  'card',
  'ssn',
  'iban',
  'email',
  'phone',
  'npi',
  'icd10',
  'mrn',
  'private_key',
  'jwt',
  'aws_access_key',
  'rampart_api_key',
  'secret',
] as const;
export type BuiltinDetector = (typeof BUILTIN_DETECTORS)[number];

/** Key-name and nearby-word context of one detector. */
export interface DetectorContext {
  /** Key tokens (after splitting `camelCase`, `snake_case`, `kebab-case`) that raise confidence. */
  keys: readonly string[];
  /** Multi-token key phrases, joined with `_`, that raise confidence. */
  phrases: readonly string[];
  /** Confidence added under a positive key. */
  keyBoost: number;
  /** Confidence added when a positive word occurs in the 40 characters before the value (free text). */
  textBoost: number;
  /** Confidence removed under a negative key (ids, order and tracking numbers, timestamps). */
  negativePenalty: number;
}

const NONE: DetectorContext = { keys: [], phrases: [], keyBoost: 0, textBoost: 0, negativePenalty: 0 };

/** Context table of the built-in detectors. */
export const DETECTOR_CONTEXT: Readonly<Record<BuiltinDetector, DetectorContext>> = {
  card: {
    keys: ['card', 'cc', 'ccnum', 'pan', 'credit', 'debit', 'cardnumber'],
    phrases: ['card_number', 'credit_card', 'account_number'],
    keyBoost: 0.3,
    textBoost: 0.15,
    negativePenalty: 0.6,
  },
  ssn: {
    keys: ['ssn', 'ssns', 'itin', 'taxpayer', 'socialsecurity'],
    phrases: ['social_security', 'social_security_number', 'tax_id', 'national_id'],
    keyBoost: 0.45,
    textBoost: 0.3,
    negativePenalty: 0.6,
  },
  iban: { keys: ['iban', 'ibans'], phrases: ['bank_account', 'account_number'], keyBoost: 0.1, textBoost: 0.05, negativePenalty: 0.2 },
  email: { keys: ['email', 'emails', 'mail', 'e_mail'], phrases: ['email_address'], keyBoost: 0.05, textBoost: 0.05, negativePenalty: 0 },
  phone: {
    keys: ['phone', 'phones', 'mobile', 'tel', 'telephone', 'cell', 'fax', 'msisdn'],
    phrases: ['contact_number', 'phone_number'],
    keyBoost: 0.35,
    textBoost: 0.25,
    negativePenalty: 0.6,
  },
  npi: { keys: ['npi'], phrases: ['national_provider', 'provider_npi', 'national_provider_identifier'], keyBoost: 0.5, textBoost: 0.35, negativePenalty: 0.6 },
  icd10: {
    keys: ['icd', 'icd10', 'diagnosis', 'diagnoses', 'dx', 'condition'],
    phrases: ['icd_10', 'diagnosis_code', 'condition_code'],
    keyBoost: 0.3,
    textBoost: 0.2,
    negativePenalty: 0.6,
  },
  mrn: { keys: ['mrn', 'mrns'], phrases: ['medical_record', 'medical_record_number', 'patient_record'], keyBoost: 0.4, textBoost: 0.3, negativePenalty: 0.4 },
  private_key: NONE,
  jwt: NONE,
  aws_access_key: NONE,
  rampart_api_key: NONE,
  secret: {
    keys: ['password', 'passwd', 'pwd', 'secret', 'secrets', 'passphrase', 'credential', 'credentials', 'apikey', 'privatekey', 'secretkey'],
    phrases: ['api_key', 'private_key', 'secret_key', 'access_key', 'client_secret', 'secret_access_key', 'signing_key', 'encryption_key'],
    keyBoost: 0,
    textBoost: 0,
    negativePenalty: 0,
  },
};

/** Key tokens that lower the confidence of number-shaped detectors. */
export const NEGATIVE_KEY_TOKENS: readonly string[] = [
  'id',
  'ids',
  'uuid',
  'guid',
  'order',
  'orders',
  'tracking',
  'sku',
  'invoice',
  'ref',
  'reference',
  'timestamp',
  'ts',
  'time',
  'date',
  'created',
  'updated',
  'version',
  'count',
  'total',
  'amount',
  'price',
  'qty',
  'quantity',
  'zip',
  'postal',
  'seq',
  'sequence',
  'serial',
  'isbn',
  'ean',
  'upc',
  'barcode',
  'shipment',
  'batch',
  'nonce',
  'epoch',
  'at',
  'build',
  'hash',
];

/** Key tokens that make a JSON value a health context (ICD-10-CM codes are looked for there). */
export const HEALTH_KEY_TOKENS: readonly string[] = [
  'icd',
  'icd10',
  'diagnosis',
  'diagnoses',
  'dx',
  'condition',
  'conditions',
  'problem',
  'problems',
  'clinical',
  'encounter',
];

/**
 * Splits a key name into lower-case tokens: `cardNumber` → `card_number`, `Card-No` → `card_no`.
 * @returns the tokens joined by `_`, with no leading or trailing `_`.
 */
export function normalizeKey(key: string): string {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Za-z])([0-9])/g, '$1_$2')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');
}

/** Masks every ASCII digit except the last `keep`; other characters stay (`**** **** **** 4242`). */
export function maskDigits(v: string, keep: number): string {
  const codes = new Array<number>(v.length);
  let left = keep;
  for (let i = v.length - 1; i >= 0; i--) {
    const c = v.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      codes[i] = left > 0 ? c : 42;
      left--;
    } else codes[i] = c;
  }
  return String.fromCharCode.apply(null, codes);
}

function isAlnumCode(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

/** Masks ASCII letters and digits except the first `keepHead` and the last `keepTail` of them. */
export function maskAlnum(v: string, keepHead: number, keepTail: number): string {
  let total = 0;
  for (let i = 0; i < v.length; i++) if (isAlnumCode(v.charCodeAt(i))) total++;
  const codes = new Array<number>(v.length);
  let seen = 0;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (isAlnumCode(c)) {
      seen++;
      codes[i] = seen <= keepHead || seen > total - keepTail ? c : 42;
    } else codes[i] = c;
  }
  return String.fromCharCode.apply(null, codes);
}

/**
 * Format-preserving mask of a found value: the shape stays, the identifying part goes.
 * Cards and SSNs keep their last four digits (PCI DSS 4.0 req. 3.4.1 allows at most BIN + last
 * four), phones their last two, IBANs their country code and last four, e-mail addresses their
 * first character and domain; secrets are replaced whole.
 */
export function maskValue(detector: string, v: string): string {
  switch (detector) {
    case 'card':
    case 'ssn':
    case 'npi':
      return maskDigits(v, 4);
    case 'phone':
      return maskDigits(v, 2);
    case 'iban':
      return maskAlnum(v, 2, 4);
    case 'email': {
      const at = v.lastIndexOf('@');
      return v[0] + '*'.repeat(Math.max(at - 1, 0)) + v.slice(at);
    }
    case 'aws_access_key':
      return v.slice(0, 4) + '*'.repeat(v.length - 4);
    case 'rampart_api_key':
      return v.slice(0, 8) + '*'.repeat(v.length - 8);
    case 'private_key':
      return '[REDACTED PRIVATE KEY]';
    case 'jwt':
      return '[REDACTED JWT]';
    case 'secret':
      return '[REDACTED]';
    default:
      return maskAlnum(v, 0, 0);
  }
}

/**
 * Canonical form of a found value, for counting distinct values (never stored in clear: the
 * control hashes it with a keyed HMAC). Digits only for number-shaped detectors, lower case for
 * e-mail, upper case without spaces for IBANs.
 */
export function canonicalValue(detector: string, v: string): string {
  switch (detector) {
    case 'card':
    case 'ssn':
    case 'npi':
    case 'phone': {
      let d = '';
      for (let i = 0; i < v.length; i++) {
        const c = v.charCodeAt(i);
        if (c >= 48 && c <= 57) d += v[i];
      }
      return d;
    }
    case 'email':
      return v.toLowerCase();
    case 'iban':
      return v.replace(/\s+/g, '').toUpperCase();
    default:
      return v;
  }
}
