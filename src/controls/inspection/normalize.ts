/**
 * Normalisation before detection (OWASP CRS "transformations": t:urlDecodeUni, t:htmlEntityDecode,
 * t:utf8toUnicode, t:lowercase, t:removeNulls; OWASP Input Validation Cheat Sheet, "canonicalise
 * before validating"). Every function here is a single left-to-right pass: linear in the input.
 */

const HEX: Int8Array = (() => {
  const t = new Int8Array(128).fill(-1);
  for (let i = 0; i < 10; i++) t[48 + i] = i;
  for (let i = 0; i < 6; i++) {
    t[65 + i] = 10 + i;
    t[97 + i] = 10 + i;
  }
  return t;
})();

function hexAt(s: string, i: number): number {
  const c = s.charCodeAt(i);
  return c < 128 ? (HEX[c] as number) : -1;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
const lenientUtf8 = new TextDecoder('utf-8', { fatal: false });

/**
 * Percent-decodes `s` once (RFC 3986 §2.1), also IIS `%uXXXX` escapes; `+` becomes a space when
 * `plus` is true (application/x-www-form-urlencoded, WHATWG URL §5.1). Invalid escapes are kept
 * as they are.
 * @param strict when true, returns `null` if the decoded bytes are not well-formed UTF-8
 *   (RFC 3629 §3: overlong forms such as `%c0%af`, surrogates, truncated sequences).
 * @returns the decoded string, or `null` (strict mode only).
 */
export function percentDecode(s: string, plus: boolean, strict = false): string | null {
  let i = s.indexOf('%');
  const hasPlus = plus && s.indexOf('+') !== -1;
  if (i === -1 && !hasPlus) return s;
  if (i === -1) return s.replaceAll('+', ' ');
  let out = '';
  let start = 0;
  let bytes: number[] | undefined;
  const flush = (): boolean => {
    if (bytes === undefined || bytes.length === 0) return true;
    const u8 = Uint8Array.from(bytes);
    bytes.length = 0;
    if (strict) {
      try {
        out += strictUtf8.decode(u8);
      } catch {
        return false;
      }
    } else out += lenientUtf8.decode(u8);
    return true;
  };
  const n = s.length;
  i = 0;
  while (i < n) {
    const c = s.charCodeAt(i);
    if (c === 37 /* % */) {
      const h1 = hexAt(s, i + 1);
      const h2 = h1 >= 0 ? hexAt(s, i + 2) : -1;
      if (h1 >= 0 && h2 >= 0) {
        if (start < i) {
          if (!flush()) return null;
          out += s.slice(start, i);
        }
        (bytes ??= []).push(h1 * 16 + h2);
        i += 3;
        start = i;
        continue;
      }
      const u = s.charCodeAt(i + 1);
      if ((u === 117 || u === 85) && i + 5 < n + 0) {
        const a = hexAt(s, i + 2);
        const b = hexAt(s, i + 3);
        const cc = hexAt(s, i + 4);
        const d = hexAt(s, i + 5);
        if (a >= 0 && b >= 0 && cc >= 0 && d >= 0) {
          if (start < i) {
            if (!flush()) return null;
            out += s.slice(start, i);
          }
          if (!flush()) return null;
          out += String.fromCharCode(((a * 16 + b) * 16 + cc) * 16 + d);
          i += 6;
          start = i;
          continue;
        }
      }
    } else if (c === 43 /* + */ && plus) {
      if (start < i) {
        if (!flush()) return null;
        out += s.slice(start, i);
      }
      if (!flush()) return null;
      out += ' ';
      i++;
      start = i;
      continue;
    }
    i++;
  }
  if (start < n) {
    if (!flush()) return null;
    out += s.slice(start);
  }
  if (!flush()) return null;
  return out;
}

function hasPercentEscape(s: string): boolean {
  let i = s.indexOf('%');
  while (i !== -1) {
    if ((hexAt(s, i + 1) >= 0 && hexAt(s, i + 2) >= 0) || s.charCodeAt(i + 1) === 117 || s.charCodeAt(i + 1) === 85) return true;
    i = s.indexOf('%', i + 1);
  }
  return false;
}

/** Named character references worth decoding for detection (HTML Living Standard §13.5 subset). */
const NAMED: Readonly<Record<string, string>> = {
  lt: '<',
  gt: '>',
  amp: '&',
  quot: '"',
  apos: "'",
  nbsp: ' ',
  colon: ':',
  semi: ';',
  tab: '\t',
  newline: '\n',
  lpar: '(',
  rpar: ')',
  sol: '/',
  bsol: '\\',
  comma: ',',
  period: '.',
  excl: '!',
  equals: '=',
  num: '#',
  lsqb: '[',
  rsqb: ']',
  lcub: '{',
  rcub: '}',
  grave: '`',
  dollar: '$',
  percnt: '%',
  plus: '+',
  ast: '*',
  vert: '|',
  quest: '?',
  commat: '@',
  hat: '^',
  lowbar: '_',
};

/**
 * Decodes HTML character references once: named ones from a fixed table and numeric ones
 * (`&#106;`, `&#x6a;`, also without the trailing `;`, as browsers accept them: HTML §13.2.5.72).
 */
export function htmlEntityDecode(s: string): string {
  let i = s.indexOf('&');
  if (i === -1) return s;
  let out = '';
  let start = 0;
  const n = s.length;
  while (i !== -1 && i < n) {
    let j = i + 1;
    let decoded: string | undefined;
    if (s.charCodeAt(j) === 35 /* # */) {
      j++;
      let cp = 0;
      let digits = 0;
      if (s.charCodeAt(j) === 120 || s.charCodeAt(j) === 88) {
        j++;
        let h: number;
        while (digits < 8 && (h = hexAt(s, j)) >= 0) {
          cp = cp * 16 + h;
          j++;
          digits++;
        }
      } else {
        let c: number;
        while (digits < 10 && (c = s.charCodeAt(j)) >= 48 && c <= 57) {
          cp = cp * 10 + (c - 48);
          j++;
          digits++;
        }
      }
      if (digits > 0) {
        decoded = cp > 0 && cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff) ? String.fromCodePoint(cp) : '\ufffd';
        if (s.charCodeAt(j) === 59) j++;
      }
    } else {
      let k = j;
      let c: number;
      while (k - j < 10 && (((c = s.charCodeAt(k)) >= 97 && c <= 122) || (c >= 65 && c <= 90))) k++;
      if (k > j) {
        const name = s.slice(j, k).toLowerCase();
        const v = NAMED[name];
        if (v !== undefined) {
          decoded = v;
          j = s.charCodeAt(k) === 59 ? k + 1 : k;
        }
      }
    }
    if (decoded !== undefined) {
      out += s.slice(start, i) + decoded;
      start = j;
      i = s.indexOf('&', j);
    } else i = s.indexOf('&', i + 1);
  }
  return out + s.slice(start);
}

/** Slash look-alikes NFKC does not map (see {@link normalize}). */
const SLASH_LOOKALIKE = /[\u2215\u29f8\u29f9]/;
const SLASH_LOOKALIKE_ALL = /[\u2215\u29f8\u29f9]/g;

/** Maximum rounds of percent-decoding (attackers double- and triple-encode; CRS uses one round plus rules). */
export const MAX_DECODE_ROUNDS = 3;

/**
 * The canonical form every detector sees: repeated percent-decoding (up to {@link MAX_DECODE_ROUNDS}),
 * HTML entity decoding, Unicode NFKC (fullwidth `＜` becomes `<`; UAX #15) and the slash look-alikes it
 * keeps (`∕` U+2215, `⧸` U+29F8 become `/`), null bytes removed,
 * lower case. Linear in `s` (each round is one pass; the number of rounds is bounded).
 * @param s a value already decoded once by its parser (query, JSON string, form field).
 */
export function normalize(s: string): string {
  let v = s;
  for (let r = 0; r < MAX_DECODE_ROUNDS && hasPercentEscape(v); r++) v = percentDecode(v, false) as string;
  if (v.indexOf('&') !== -1) {
    v = htmlEntityDecode(v);
    // `&amp;tab;`: one more round when decoding produced another reference
    if (v.indexOf('&') !== -1) v = htmlEntityDecode(v);
    if (hasPercentEscape(v)) v = percentDecode(v, false) as string;
  }
  let ascii = true;
  for (let i = 0; i < v.length; i++) {
    if (v.charCodeAt(i) > 127) {
      ascii = false;
      break;
    }
  }
  if (!ascii) {
    v = v.normalize('NFKC');
    // slash look-alikes NFKC keeps (U+2215 division slash, U+29F8 big solidus, U+29F9 big reverse
    // solidus): Windows "best fit" code-page conversion and some path libraries turn them into `/`
    // and `\` (the "WorstFit" attacks), so `..∕..∕etc∕passwd` is a traversal. U+2044 (fraction
    // slash) stays: NFKC spells ¼ as `1⁄4`, which the XSS detector reads; traversal handles it itself.
    if (SLASH_LOOKALIKE.test(v)) v = v.replace(SLASH_LOOKALIKE_ALL, (c) => (c === '\u29f9' ? '\\' : '/'));
  }
  if (v.indexOf('\0') !== -1) v = v.replaceAll('\0', '');
  return v.toLowerCase();
}
