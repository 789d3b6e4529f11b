/**
 * Validators behind the DLP detectors: a pattern only proposes a candidate, one of these decides
 * whether it is the real thing (checksums, issuer tables, exclusion lists). Pure functions, no
 * allocation beyond small strings; each takes the candidate's digits or text as found.
 */
import { countrySpecs } from 'ibantools';
import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/max';

/**
 * Luhn (mod 10) check over a string of ASCII digits (ISO/IEC 7812-1 Annex B).
 * @returns true when the check digit (last digit) is correct; false for an empty string.
 */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  let dbl = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
    if (dbl) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    dbl = !dbl;
  }
  return digits.length > 0 && sum % 10 === 0;
}

/**
 * Payment card network of a PAN (digits only), checked against the issuer identification number
 * (IIN) ranges and lengths the networks publish (ISO/IEC 7812; Visa, Mastercard 2-series
 * 2221–2720, Amex 34/37, Discover 6011/644–649/65/622126–622925, JCB 3528–3589, Diners
 * 300–305/309/36/38/39, UnionPay 62/81, Maestro, Mir 2200–2204, RuPay 60/508).
 * @returns the network name, or `undefined` when no network issues that prefix at that length.
 */
export function cardNetwork(d: string): string | undefined {
  const n = d.length;
  if (n < 12 || n > 19) return undefined;
  const p1 = d.charCodeAt(0) - 48;
  const p2 = p1 * 10 + (d.charCodeAt(1) - 48);
  const p3 = p2 * 10 + (d.charCodeAt(2) - 48);
  const p4 = p3 * 10 + (d.charCodeAt(3) - 48);
  const p6 = Number(d.slice(0, 6));
  if (p1 === 4) return n === 13 || n === 16 || n === 19 ? 'visa' : undefined;
  if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) return n === 16 ? 'mastercard' : undefined;
  if (p2 === 34 || p2 === 37) return n === 15 ? 'amex' : undefined;
  if (p4 >= 2200 && p4 <= 2204) return n >= 16 ? 'mir' : undefined;
  if (p4 === 6011 || (p3 >= 644 && p3 <= 649) || p2 === 65 || (p6 >= 622126 && p6 <= 622925)) return n >= 16 ? 'discover' : undefined;
  if (p4 >= 3528 && p4 <= 3589) return n >= 16 ? 'jcb' : undefined;
  if ((p3 >= 300 && p3 <= 305) || p3 === 309 || p2 === 36 || p2 === 38 || p2 === 39) return n >= 14 ? 'diners' : undefined;
  if (p2 === 62 || p2 === 81) return n >= 16 ? 'unionpay' : undefined;
  if (p4 === 5018 || p4 === 5020 || p4 === 5038 || p4 === 5893 || p4 === 6304 || p4 === 6759 || p4 === 6761 || p4 === 6762 || p4 === 6763) {
    return n >= 12 ? 'maestro' : undefined;
  }
  if (p2 === 60 || p3 === 508) return n === 16 ? 'rupay' : undefined;
  return undefined;
}

/** Whether `digits` is a payment card number: a known network's prefix and length, and Luhn. */
export function isCardNumber(digits: string): boolean {
  return cardNetwork(digits) !== undefined && luhnValid(digits);
}

/**
 * US Social Security number structure (SSA, "SSN randomization", 2011): 9 digits; area 000, 666
 * and 900–999, group 00 and serial 0000 are never issued.
 * @param digits exactly the 9 digits, without separators.
 */
export function isValidSsn(digits: string): boolean {
  if (digits.length !== 9) return false;
  const area = digits.slice(0, 3);
  if (area === '000' || area === '666' || digits.charCodeAt(0) === 57 /* 9xx */) return false;
  if (digits.slice(3, 5) === '00') return false;
  if (digits.slice(5) === '0000') return false;
  return true;
}

/**
 * US National Provider Identifier (CMS, 45 CFR 162.406): 10 digits starting with 1 or 2 whose last
 * digit is the Luhn check digit computed over the card-issuer prefix `80840` followed by the
 * first nine digits.
 */
export function isValidNpi(digits: string): boolean {
  if (digits.length !== 10) return false;
  const c = digits.charCodeAt(0);
  if (c !== 49 && c !== 50) return false;
  return luhnValid('80840' + digits);
}

/** BBAN format regexes of `ibantools`' country table, compiled once per country on first use. */
const BBAN_FORMATS = new Map<string, RegExp | null>();

/**
 * IBAN (ISO 13616) check over `ibantools`' country table: the country's IBAN length and BBAN
 * format, numeric check digits, and the mod-97 check (ISO 7064 MOD 97-10, as `ibantools`
 * computes it: check digits = 98 − (BBAN ‖ country ‖ "00") mod 97). A failing national account
 * checksum (Belgium, Czechia, Norway, ...) does not disqualify: the value is still an account
 * number in IBAN form, which is what DLP must not leak. Accepts the electronic form or the print
 * form with spaces (or dashes).
 *
 * Same verdict as `ibantools.validateIBAN(electronicFormatIBAN(text))` being valid or failing only
 * with `WrongAccountBankBranchChecksum` (checked against it in the tests), without its per-call
 * string and RegExp allocations: this runs for every IBAN-shaped candidate in a response.
 */
export function isValidIban(text: string): boolean {
  // Electronic form without allocating when there is nothing to remove.
  let e = text;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 32 || c === 45 || (c >= 97 && c <= 122)) {
      e = text.replace(/[- ]/g, '').toUpperCase();
      break;
    }
  }
  const n = e.length;
  if (n < 5) return false;
  const cc = e.slice(0, 2);
  const spec = (countrySpecs as Record<string, { chars?: number; bban_regexp?: string } | undefined>)[cc];
  if (spec === undefined || !(spec.bban_regexp || spec.chars)) return false;
  if (spec.chars && spec.chars !== n) return false;
  if (spec.bban_regexp) {
    let re = BBAN_FORMATS.get(cc);
    if (re === undefined) {
      re = new RegExp(spec.bban_regexp);
      BBAN_FORMATS.set(cc, re);
    }
    if (re !== null && !re.test(e.slice(4))) return false;
  }
  const d1 = e.charCodeAt(2) - 48;
  const d2 = e.charCodeAt(3) - 48;
  if (d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) return false;
  // (BBAN ‖ country ‖ "00") mod 97, letters as two-digit numbers A=10 … Z=35.
  let r = 0;
  for (let i = 4; i < n + 2; i++) {
    const c = i < n ? e.charCodeAt(i) : e.charCodeAt(i - n);
    if (c >= 48 && c <= 57) r = (r * 10 + (c - 48)) % 97;
    else if (c >= 65 && c <= 90) r = (r * 100 + (c - 55)) % 97;
    else return false;
  }
  r = (r * 100) % 97;
  return 98 - r === d1 * 10 + d2;
}

/**
 * Whether `text` is a valid phone number per libphonenumber's full metadata; numbers without a
 * `+` country code are read as numbers of `region` (ISO 3166-1 alpha-2).
 */
export function isValidPhone(text: string, region: string): boolean {
  try {
    const p = parsePhoneNumberFromString(text, region as CountryCode);
    return p?.isValid() === true;
  } catch {
    return false;
  }
}

/**
 * ICD-10-CM code structure (CDC/NCHS ICD-10-CM Official Guidelines §I.A.1–3): a category of a
 * letter (any but `U`, reserved, except the emergency codes `U07`, `U09`), a digit, a digit or
 * letter; then optionally a dot and 1–4 characters (digits, letters; 7th-character extension).
 * Structure only: the code table itself is not bundled.
 */
export function isIcd10CmCode(text: string): boolean {
  return /^(?:[A-TV-Z][0-9][0-9AB]|U0[79])(?:\.[0-9A-Z]{1,4})?$/.test(text);
}

/**
 * Shannon entropy of `s` in bits per character (over its UTF-16 code units).
 * Empty string: 0.
 */
export function shannonEntropy(s: string): number {
  const n = s.length;
  if (n === 0) return 0;
  const counts = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    counts.set(c, (counts.get(c) ?? 0) + 1);
  }
  let h = 0;
  for (const k of counts.values()) {
    const p = k / n;
    h -= p * Math.log2(p);
  }
  return h;
}

/** Placeholder values that sit under secret-looking keys but are not secrets. */
const PLACEHOLDER =
  /^(?:[*xX•#.\-_ ]+|<[^>]*>|\[[^\]]*\]|\{\{[^}]*\}\}|\$\{[^}]*\}|(?:redacted|hidden|filtered|masked|null|none|undefined|n\/a|changeme|password|secret|example|placeholder|true|false)[*_.-]*)$/i;

/**
 * Whether a value under a secret-ish key looks like a real secret: 8–4096 characters, not a
 * placeholder or mask, at least 2.5 bits of entropy per character and 32 bits in total
 * (OWASP Secrets Management Cheat Sheet, "Detection").
 */
export function looksLikeSecret(value: string): boolean {
  const n = value.length;
  if (n < 8 || n > 4096) return false;
  if (PLACEHOLDER.test(value)) return false;
  const h = shannonEntropy(value);
  return h >= 2.5 && h * n >= 32;
}

/**
 * Whether `token` is a structurally valid JWS compact serialization (RFC 7515 §7.1) whose
 * protected header is a JSON object with `alg` (RFC 7519 §5): three base64url segments, the
 * first two decoding to JSON objects.
 */
export function isJwt(token: string): boolean {
  const a = token.indexOf('.');
  const b = token.indexOf('.', a + 1);
  if (a <= 0 || b <= a + 1 || token.indexOf('.', b + 1) !== -1) return false;
  try {
    const h = JSON.parse(Buffer.from(token.slice(0, a), 'base64url').toString('utf8')) as unknown;
    if (typeof h !== 'object' || h === null || typeof (h as { alg?: unknown }).alg !== 'string') return false;
    const p = JSON.parse(Buffer.from(token.slice(a + 1, b), 'base64url').toString('utf8')) as unknown;
    return typeof p === 'object' && p !== null;
  } catch {
    return false;
  }
}
