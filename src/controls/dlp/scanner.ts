/**
 * The DLP scanner: finds sensitive values in a response body, decides their confidence from the
 * JSON key they sit under (or the words before them in free text), and computes the
 * format-preserving replacements.
 *
 * Design (compile once, run many; linear time):
 * - The body is scanned as a latin1 string: one character per byte, so offsets are byte offsets,
 *   unchanged bytes are written back exactly, and every pattern is ASCII.
 * - Candidate sources run over the whole body once each: a number-run regex (cards, SSNs, NPIs,
 *   phones), `indexOf` anchors for `@`, `eyJ`, `rk_`, `-----BEGIN`, regexes for IBANs, AWS key
 *   ids and configured patterns (compiled with V8's linear-time engine, flag `l`).
 * - A JSON tokenizer walks the body once, jumping over string contents with `indexOf`, keeping the
 *   path (`$.users[3].ssn`) and counting records; candidates are matched to the token they fall
 *   in. Strings with escapes are decoded and scanned as values, so `\u0034111…` cannot hide a card.
 * - Validation that costs (phone metadata) runs only for candidates that context lets through.
 */
import { setFlagsFromString } from 'node:v8';
import { BUILTIN_DETECTORS, DETECTOR_CONTEXT, HEALTH_KEY_TOKENS, NEGATIVE_KEY_TOKENS, canonicalValue, maskValue, normalizeKey } from './detectors.ts';
import { isRampartApiKey } from './apikey.ts';
import { isCardNumber, isIcd10CmCode, isJwt, isValidIban, isValidNpi, isValidPhone, isValidSsn, looksLikeSecret } from './validate.ts';

/** A pattern detector from configuration (custom detectors, and the MRN pattern). */
export interface PatternDetectorSpec {
  name: string;
  /** Regular expression source (no backreferences or lookaround); see {@link compilePattern} for the engine. */
  pattern: string;
  /** Extra flags: `i` only. */
  flags: string;
  /** Base confidence of a match (0–1). */
  confidence: number;
  /** Key names (tokens or phrases) under which a match gets `+0.4`; when non-empty, matches elsewhere get `−0.4`. */
  keys: string[];
}

/** Options of a {@link Scanner}, compiled once per control instance. */
export interface ScannerOptions {
  /** Detector names to run (built-in names and custom detector names). */
  detectors: ReadonlySet<string>;
  /** Confidence threshold per detector name (default 0.5). */
  thresholds: Readonly<Record<string, number>>;
  /** ISO 3166-1 alpha-2 region for phone numbers written without `+` (e.g. `US`). */
  phoneRegion: string;
  /** Whether the whole body is a health context (ICD-10-CM codes are looked for everywhere). */
  healthContext: boolean;
  /** Pattern detectors: `mrn` (when configured) and custom detectors. */
  patterns: PatternDetectorSpec[];
  /** Compile every pattern with the linear-time engine, even the provably safe ones (for measurement). */
  forceLinear?: boolean;
}

/** How to read a body. */
export type ScanMode = 'json' | 'ndjson' | 'text';

/** One sensitive value found. Never leaves the process with `value` in it. */
export interface Finding {
  detector: string;
  /** 0–1 after context. */
  confidence: number;
  /** JSONPath of the value (`$.users[3].ssn`), or `line N` in text bodies. Keys that are not plain identifiers show as `*`. */
  path: string;
  /** Canonical value (digits only, lower-case e-mail): for distinct counting, hashed before storage. */
  value: string;
  /** Byte offset in the scanned body of the token (JSON) or value (text) holding the finding. */
  at: number;
}

/** A replacement of `[start, end)` (byte offsets) with `text` (latin1 string of bytes). */
export interface Replacement {
  start: number;
  end: number;
  text: string;
}

/** Result of {@link Scanner.scan}. */
export interface ScanResult {
  findings: Finding[];
  /** Sorted, non-overlapping replacements for the findings whose detector is in the redact set. */
  replacements: Replacement[];
  /** Records: objects in the outermost arrays, top-level NDJSON values, CSV data lines. */
  records: number;
  /**
   * Set when a JSON body does not parse: `offset` of the error, and `tailStart` when the body
   * ends inside a string or number (a truncated value, which must not be sent half-masked).
   */
  malformed: { offset: number; reason: string; tailStart: number | undefined } | undefined;
}

interface Cand {
  s: number;
  e: number;
  det: string;
  base: number;
  /** Expensive validation still to run: 1 = phone. */
  lazy: number;
}

interface KeyInfo {
  pos: ReadonlySet<string>;
  neg: boolean;
  health: boolean;
  secret: boolean;
  /** Path segment: `.name`, or `.*` for keys that are not plain identifiers. */
  seg: string;
}

let linearEngineEnabled = false;
/**
 * Compiles a configured pattern with V8's linear-time regex engine (flag `l`), so a custom
 * detector can never backtrack catastrophically (ReDoS, OWASP). Turns the engine on process-wide
 * (`--enable-experimental-regexp-engine`) on first use.
 * @throws {Error} naming the detector when the pattern is invalid or not linear-time (backreferences, lookaround).
 */
export function compileLinear(name: string, pattern: string, flags: string): RegExp {
  if (!/^i?$/.test(flags)) throw new Error(`dlp detector "${name}": only the "i" flag is allowed`);
  if (!linearEngineEnabled) {
    setFlagsFromString('--enable-experimental-regexp-engine');
    linearEngineEnabled = true;
  }
  try {
    return new RegExp(pattern, `g${flags}l`);
  } catch (e) {
    throw new Error(`dlp detector "${name}": pattern is not a linear-time regular expression: ${(e as Error).message}`);
  }
}

/** Largest number of ways a pattern may try to match at one position for the backtracking engine to be used. */
const MAX_BACKTRACK_CHOICES = 256;

/**
 * Whether a pattern's worst case under V8's backtracking engine is linear in the input, so it
 * may use that (much faster) engine instead of the experimental linear-time one: every quantifier
 * is bounded (no `*`, `+`, `{n,}`: an unbounded one is quadratic over a global scan), no quantified
 * group holds a quantifier or an alternation (no nested quantifiers, no `(a|ab){2,5}`), and the
 * product of the bounded quantifiers' ranges is at most 256 (the number of ways to try one start
 * position). Patterns with backreferences or lookaround are `undefined` (not allowed at all).
 * Conservative: a `false` only means the linear-time engine is used.
 * Source: OWASP "Regular expression Denial of Service"; Davis et al., "The impact of regular
 * expression denial of service (ReDoS) in practice" (ESEC/FSE 2018): star height and
 * quantified overlapping alternation are what make backtracking super-linear.
 */
export function isBacktrackSafe(pattern: string): boolean | undefined {
  // One frame per open group: whether it holds a quantifier with a choice, or an alternation.
  const frames: { choice: boolean }[] = [{ choice: false }];
  let product = 1;
  let i = 0;
  const n = pattern.length;
  while (i < n) {
    const c = pattern[i] as string;
    let atomChoice = false; // the atom just read (a group) holds a choice
    if (c === '\\') {
      const d = pattern[i + 1] ?? '';
      if (/[1-9]/.test(d) || d === 'k') return undefined;
      if ((d === 'p' || d === 'P' || d === 'u') && pattern[i + 2] === '{') {
        const close = pattern.indexOf('}', i + 3);
        i = close === -1 ? n : close + 1;
      } else if (d === 'x') i += 4;
      else if (d === 'u') i += 6;
      else if (d === 'c') i += 3;
      else i += 2;
    } else if (c === '[') {
      let j = i + 1;
      if (pattern[j] === '^') j++;
      if (pattern[j] === ']') j++;
      while (j < n && pattern[j] !== ']') j += pattern[j] === '\\' ? 2 : 1;
      i = j + 1;
    } else if (c === '(') {
      if (pattern.startsWith('(?=', i) || pattern.startsWith('(?!', i) || pattern.startsWith('(?<=', i) || pattern.startsWith('(?<!', i)) return undefined;
      frames.push({ choice: false });
      if (pattern.startsWith('(?:', i)) i += 3;
      else if (pattern.startsWith('(?<', i)) {
        const close = pattern.indexOf('>', i);
        i = close === -1 ? n : close + 1;
      } else i++;
      continue;
    } else if (c === ')') {
      const f = frames.pop();
      if (f === undefined || frames.length === 0) return false; // unbalanced: let the engine report it
      atomChoice = f.choice;
      if (f.choice) (frames[frames.length - 1] as { choice: boolean }).choice = true;
      i++;
    } else if (c === '|') {
      (frames[frames.length - 1] as { choice: boolean }).choice = true;
      i++;
      continue;
    } else i++;
    // A quantifier after the atom?
    const q = pattern[i];
    let min = 1;
    let max = 1;
    if (q === '*' || q === '+') return false;
    if (q === '?') {
      min = 0;
      i++;
    } else if (q === '{') {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(pattern.slice(i));
      if (m !== null) {
        min = Number(m[1]);
        if (m[2] === undefined) max = min;
        else if (m[3] === '') return false;
        else max = Number(m[3]);
        i += m[0].length;
      }
    }
    if (pattern[i] === '?') i++; // lazy
    if (min === 1 && max === 1) continue;
    if (atomChoice) return false;
    if (max > min) {
      product *= max - min + 1;
      if (product > MAX_BACKTRACK_CHOICES) return false;
      (frames[frames.length - 1] as { choice: boolean }).choice = true;
    }
  }
  return true;
}

/**
 * Compiles a configured pattern (custom detectors, MRN): with V8's ordinary backtracking engine
 * when {@link isBacktrackSafe} proves its worst case linear, else with the linear-time engine.
 * @returns the global regex and the engine used.
 * @throws {Error} naming the detector when the pattern is invalid, uses flags other than `i`, or
 * uses backreferences or lookaround.
 */
export function compilePattern(name: string, pattern: string, flags: string): { re: RegExp; engine: 'backtracking' | 'linear' } {
  if (!/^i?$/.test(flags)) throw new Error(`dlp detector "${name}": only the "i" flag is allowed`);
  const safe = isBacktrackSafe(pattern);
  if (safe === undefined)
    throw new Error(`dlp detector "${name}": pattern is not a linear-time regular expression: backreferences and lookaround are not allowed`);
  if (!safe) return { re: compileLinear(name, pattern, flags), engine: 'linear' };
  try {
    return { re: new RegExp(pattern, `g${flags}`), engine: 'backtracking' };
  } catch (e) {
    throw new Error(`dlp detector "${name}": invalid pattern: ${(e as Error).message}`);
  }
}

const NUMERIC = /(?<![\w+\-./])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d(?:[ .-]?\d){6,22}(?![\w]|[.\-/:]\d)/g;
/** Prefilters of {@link NUMERIC}: 7 digits with optional single `[ .-]` separators (any match), 9 with `[ -]` (card/SSN/NPI). */
const NUM_PRE_7 = /\d[ .-]?\d[ .-]?\d[ .-]?\d[ .-]?\d[ .-]?\d[ .-]?\d/g;
const NUM_PRE_9 = /\d[ -]?\d[ -]?\d[ -]?\d[ -]?\d[ -]?\d[ -]?\d[ -]?\d[ -]?\d/g;

/** Characters a NUMERIC match consists of: digits, space, `.`, `-`, `+`, `(`, `)`. */
function isNumberChar(c: number): boolean {
  return (c >= 48 && c <= 57) || c === 32 || c === 46 || c === 45 || c === 43 || c === 40 || c === 41;
}
const IBAN = /(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])/g;
const AWS = /(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA|ASCA)[A-Z2-7]{16}(?![A-Za-z0-9])/g;
const JWT = /eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*/y;
const RK = /rk_(?:live|test)_[0-9A-Za-z]{49}(?![0-9A-Za-z])/y;
const PEM_HEAD = /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----/y;
const PEM_END = /-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----/y;
const ICD = /(?<![A-Za-z0-9])(?:[A-TV-Z][0-9][0-9AB]|U0[79])(?:\.[0-9A-Z]{1,4})?(?![A-Za-z0-9])/g;
const TEXT_SECRET =
  /(?:password|passwd|pwd|secret|api[_-]?key|client[_-]?secret|private[_-]?key|access[_-]?key|secret[_-]?key)["']?\s{0,3}[:=]\s{0,3}["']?([^\s"'&,;<>]{8,256})/gi;

/** Offset of the next `-----BEGIN ` at or after `from`, or -1. */
function nextPemHead(str: string, from: number): number {
  let b = str.indexOf('BEGIN ', from + 5);
  while (b !== -1) {
    if (str.startsWith('-----', b - 5)) return b - 5;
    b = str.indexOf('BEGIN ', b + 1);
  }
  return -1;
}

/** Characters allowed in the body of a PEM block (base64, whitespace, header lines, JSON `\n`). */
function isPemChar(c: number): boolean {
  return (
    (c >= 65 && c <= 90) ||
    (c >= 97 && c <= 122) ||
    (c >= 48 && c <= 57) ||
    c === 43 ||
    c === 47 ||
    c === 61 ||
    c === 32 ||
    c === 10 ||
    c === 13 ||
    c === 9 ||
    c === 92 ||
    c === 58 ||
    c === 44 ||
    c === 45
  );
}

function isLocalChar(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 46 || c === 95 || c === 37 || c === 43 || c === 45;
}
function isDomainChar(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 46 || c === 45;
}
function isAlpha(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}
function isAlnum(c: number): boolean {
  return isAlpha(c) || (c >= 48 && c <= 57);
}
function isWordChar(c: number): boolean {
  return isAlpha(c) || (c >= 48 && c <= 57) || c === 95 || c === 45;
}

const SAFE_SEGMENT = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;
const MAX_DEPTH = 4096;
/** Findings beyond this many get no path (events carry a bounded list of paths). */
const MAX_PATHS = 100;

// Tokenizer expectations.
const E_VALUE = 0; // a value (top level, after ':' or ',' in an array)
const E_KEY_OR_END = 1; // after '{'
const E_KEY = 2; // after ',' in an object
const E_COLON = 3;
const E_COMMA_OR_END = 4;
const E_VALUE_OR_END = 5; // after '['

/**
 * A compiled scanner for one control configuration. `scan` is synchronous, allocation-light,
 * and linear in the body size; it never throws on malformed input (it reports it).
 */
export class Scanner {
  private readonly on: ReadonlySet<string>;
  private readonly thresholds: Readonly<Record<string, number>>;
  private readonly region: string;
  private readonly healthContext: boolean;
  private readonly patterns: { spec: PatternDetectorSpec; re: RegExp; keys: ReadonlySet<string> }[];
  private readonly numeric: boolean;
  private readonly contextual: boolean;
  /**
   * When set, an escaped JSON string is decoded only if its raw text matches this: every enabled
   * detector needs a digit (or, for private keys, `BEGIN`) that no JSON escape can produce
   * without a digit of its own (`\u00XX`). Otherwise every escaped string is decoded.
   */
  private readonly decodeFilter: RegExp | undefined;
  private readonly textWords = new Map<string, RegExp>();
  private readonly keyCache = new Map<string, KeyInfo>();
  private readonly posKeys = new Map<string, string[]>();
  private readonly negKeys: ReadonlySet<string>;
  private readonly healthKeys: ReadonlySet<string>;

  constructor(opts: ScannerOptions) {
    this.on = opts.detectors;
    this.thresholds = opts.thresholds;
    this.region = opts.phoneRegion;
    this.healthContext = opts.healthContext;
    this.patterns = opts.patterns
      .filter((p) => opts.detectors.has(p.name))
      .map((spec) => ({
        spec,
        re: opts.forceLinear ? compileLinear(spec.name, spec.pattern, spec.flags) : compilePattern(spec.name, spec.pattern, spec.flags).re,
        keys: new Set(spec.keys.map(normalizeKey)),
      }));
    this.numeric = ['card', 'ssn', 'npi', 'phone'].some((d) => this.on.has(d));
    this.contextual = this.on.has('secret') || this.on.has('icd10');
    const digitBearing = new Set(['card', 'ssn', 'npi', 'phone', 'iban', 'icd10', 'private_key']);
    this.decodeFilter = [...this.on].every((d) => digitBearing.has(d)) && this.patterns.length === 0 ? /[0-9]|BEGIN/ : undefined;
    this.negKeys = new Set(NEGATIVE_KEY_TOKENS);
    this.healthKeys = new Set(HEALTH_KEY_TOKENS);
    for (const d of BUILTIN_DETECTORS) {
      const c = DETECTOR_CONTEXT[d];
      const words = [...c.keys, ...c.phrases];
      if (words.length === 0) continue;
      for (const k of words) {
        const list = this.posKeys.get(k) ?? [];
        list.push(d);
        this.posKeys.set(k, list);
      }
      const alt = words.map((w) => w.replace(/_/g, '[ _-]?')).join('|');
      this.textWords.set(d, new RegExp(`(?:^|[^a-z0-9])(?:${alt})(?:[^a-z0-9]|$)`));
    }
    for (const p of this.patterns) {
      for (const k of p.keys) {
        const list = this.posKeys.get(k) ?? [];
        list.push(p.spec.name);
        this.posKeys.set(k, list);
      }
      if (p.keys.size > 0) {
        const alt = [...p.keys].map((w) => w.replace(/[^a-z0-9_]/g, '').replace(/_/g, '[ _-]?')).join('|');
        this.textWords.set(p.spec.name, new RegExp(`(?:^|[^a-z0-9])(?:${alt})(?:[^a-z0-9]|$)`));
      }
    }
  }

  // ---------------------------------------------------------------- candidate sources

  /** All candidates in `str` (sorted by start), from every enabled source. */
  private candidates(str: string, text: boolean): Cand[] {
    const lists: Cand[][] = [];
    if (this.numeric) lists.push(this.findNumeric(str));
    if (this.on.has('email')) lists.push(this.findEmails(str));
    if (this.on.has('iban')) lists.push(this.findRegex(str, IBAN, 'iban', 0.9));
    if (this.on.has('aws_access_key')) lists.push(this.findRegex(str, AWS, 'aws_access_key', 0.9));
    if (this.on.has('jwt')) lists.push(this.findAnchored(str, 'eyJ', JWT, 'jwt', 0.9));
    if (this.on.has('rampart_api_key')) lists.push(this.findAnchored(str, 'rk_', RK, 'rampart_api_key', 1));
    if (this.on.has('private_key')) lists.push(this.findPem(str));
    if (this.on.has('icd10') && (this.healthContext || text)) lists.push(this.findRegex(str, ICD, 'icd10', this.healthContext ? 0.6 : 0.3));
    if (text && this.on.has('secret')) lists.push(this.findTextSecrets(str));
    for (const p of this.patterns) lists.push(this.findRegex(str, p.re, p.spec.name, p.spec.confidence));
    return mergeSorted(lists);
  }

  private findRegex(str: string, re: RegExp, det: string, base: number): Cand[] {
    const out: Cand[] = [];
    re.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(str)) !== null) {
      const s = m.index;
      const e = s + m[0].length;
      if (e === s) {
        re.lastIndex++;
        continue;
      }
      if (det === 'iban' && !isValidIban(m[0])) continue;
      if (det === 'icd10' && !isIcd10CmCode(m[0])) continue;
      out.push({ s, e, det, base, lazy: 0 });
    }
    return out;
  }

  private findAnchored(str: string, anchor: string, re: RegExp, det: string, base: number): Cand[] {
    const out: Cand[] = [];
    let i = str.indexOf(anchor);
    while (i !== -1) {
      const prev = i > 0 ? str.charCodeAt(i - 1) : 0;
      re.lastIndex = i;
      const m = isWordChar(prev) && !(det === 'rampart_api_key' && prev === 45) ? null : re.exec(str);
      if (m !== null) {
        const v = m[0];
        const ok = det === 'jwt' ? isJwt(v) : isRampartApiKey(v);
        if (ok) {
          out.push({ s: i, e: i + v.length, det, base, lazy: 0 });
          i = str.indexOf(anchor, i + v.length);
          continue;
        }
      }
      i = str.indexOf(anchor, i + 1);
    }
    return out;
  }

  private findPem(str: string): Cand[] {
    const out: Cand[] = [];
    // Anchored on `BEGIN `: its first letter is rare in JSON, so indexOf skips ahead much faster
    // than on the dashes, which every UUID and date has.
    let i = nextPemHead(str, 0);
    while (i !== -1) {
      PEM_HEAD.lastIndex = i;
      const m = PEM_HEAD.exec(str);
      if (m === null) {
        i = nextPemHead(str, i + 11);
        continue;
      }
      let j = i + m[0].length;
      let end = -1;
      while (j < str.length && isPemChar(str.charCodeAt(j))) {
        if (str.charCodeAt(j) === 45 && str.startsWith('-----END ', j)) {
          PEM_END.lastIndex = j;
          const me = PEM_END.exec(str);
          if (me !== null) {
            end = j + me[0].length;
            break;
          }
        }
        j++;
      }
      // No END line: a truncated key is still a key; mask everything up to where the block stops.
      const e = end === -1 ? j : end;
      out.push({ s: i, e, det: 'private_key', base: 1, lazy: 0 });
      i = nextPemHead(str, e);
    }
    return out;
  }

  private findEmails(str: string): Cand[] {
    const out: Cand[] = [];
    let at = str.indexOf('@');
    let floor = 0;
    while (at !== -1) {
      // Local part: up to 64 characters before '@' (RFC 5321 §4.5.3.1.1), starting with a letter or digit.
      let s = at;
      while (s > floor && at - s < 65 && isLocalChar(str.charCodeAt(s - 1))) s--;
      const tooLong = at - s > 64;
      while (s < at && !isAlnum(str.charCodeAt(s))) s++;
      let e = at + 1;
      while (e < str.length && e - at <= 254 && isDomainChar(str.charCodeAt(e))) e++;
      while (e > at + 1 && (str.charCodeAt(e - 1) === 46 || str.charCodeAt(e - 1) === 45)) e--;
      const ok = !tooLong && s < at && str.charCodeAt(at - 1) !== 46 && validDomain(str, at + 1, e);
      if (ok) {
        out.push({ s, e, det: 'email', base: 0.9, lazy: 0 });
        floor = e;
        at = str.indexOf('@', e);
      } else at = str.indexOf('@', at + 1);
    }
    return out;
  }

  private findTextSecrets(str: string): Cand[] {
    const out: Cand[] = [];
    TEXT_SECRET.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = TEXT_SECRET.exec(str)) !== null) {
      const v = m[1] as string;
      if (!looksLikeSecret(v)) continue;
      const e = m.index + m[0].length;
      out.push({ s: e - v.length, e, det: 'secret', base: 0.8, lazy: 0 });
    }
    return out;
  }

  private findNumeric(str: string): Cand[] {
    const out: Cand[] = [];
    const on = this.on;
    const card = on.has('card');
    const ssn = on.has('ssn');
    const npi = on.has('npi');
    const phone = on.has('phone');
    // Prefilter (one cheap unrolled pass): every NUMERIC match has 7 digits joined by at most one
    // separator each, and every match that can be a card, SSN or NPI (plain, 9+ digits) has 9
    // joined by at most one space or dash. The exact regex then runs only on the run of
    // number-shaped characters around a hit, from its start (so its lookbehind sees what a
    // whole-body scan would), which gives exactly the whole-body scan's matches in that run.
    const pre = phone ? NUM_PRE_7 : NUM_PRE_9;
    pre.lastIndex = 0;
    let floor = 0;
    while (pre.test(str)) {
      const hitEnd = pre.lastIndex;
      let rs = hitEnd - 1;
      while (rs > floor && isNumberChar(str.charCodeAt(rs - 1))) rs--;
      let re = hitEnd;
      while (re < str.length && isNumberChar(str.charCodeAt(re))) re++;
      floor = re;
      pre.lastIndex = re;
      // The run with the one character before it (for the lookbehind) and two after (lookahead):
      // an exec on the whole body would search on past the run when the run holds no match.
      const from = rs > 0 ? rs - 1 : 0;
      this.numericRun(str.slice(from, re + 2), from, out, card, ssn, npi, phone);
    }
    return out;
  }

  /** Exact NUMERIC matches in `run` (which starts at `base` in the body), validated into candidates. */
  private numericRun(run: string, base: number, out: Cand[], card: boolean, ssn: boolean, npi: boolean, phone: boolean): void {
    let m: RegExpExecArray | null;
    NUMERIC.lastIndex = 0;
    while ((m = NUMERIC.exec(run)) !== null) {
      const raw = m[0];
      const s = base + m.index;
      const e = s + raw.length;
      let n = 0;
      let plus = false;
      let paren = false;
      let dot = 0;
      let sp = 0;
      let dash = 0;
      for (let i = 0; i < raw.length; i++) {
        const c = raw.charCodeAt(i);
        if (c >= 48 && c <= 57) n++;
        else if (c === 43) plus = true;
        else if (c === 40 || c === 41) paren = true;
        else if (c === 46) dot++;
        else if (c === 32) sp++;
        else if (c === 45) dash++;
      }
      const plain = !plus && !paren && dot === 0 && (sp === 0 || dash === 0);
      if (card && plain && n >= 12 && n <= 19) {
        const d = sp + dash === 0 ? raw : raw.replace(/[ -]/g, '');
        if (isCardNumber(d)) out.push({ s, e, det: 'card', base: 0.8, lazy: 0 });
      }
      if (ssn && plain && n === 9) {
        const sep = sp + dash;
        const shaped =
          sep === 0 || (sep === 2 && raw.length === 11 && raw.charCodeAt(3) === raw.charCodeAt(6) && (raw.charCodeAt(3) === 45 || raw.charCodeAt(3) === 32));
        if (shaped && isValidSsn(sep === 0 ? raw : raw.slice(0, 3) + raw.slice(4, 6) + raw.slice(7))) {
          out.push({ s, e, det: 'ssn', base: sep === 0 ? 0.3 : 0.7, lazy: 0 });
        }
      }
      if (npi && n === 10 && raw.length === 10 && isValidNpi(raw)) out.push({ s, e, det: 'npi', base: 0.3, lazy: 0 });
      if (phone && n >= 7 && n <= 15) {
        // Dotted numbers are phones only as ddd.ddd.dddd (not decimals, IPs or versions); ISO dates are not phones.
        const dottedOk = dot === 0 || plus || (dot === 2 && raw.length === 12 && raw.charCodeAt(3) === 46 && raw.charCodeAt(7) === 46);
        const isoDate = n === 8 && dash === 2 && raw.length === 10 && raw.charCodeAt(4) === 45;
        if (dottedOk && !isoDate) {
          const base = plus ? 0.7 : paren || sp + dash + dot > 0 ? 0.6 : 0.3;
          out.push({ s, e, det: 'phone', base, lazy: 1 });
        }
      }
    }
  }

  // ---------------------------------------------------------------- context

  private keyInfo(key: string): KeyInfo {
    let ki = this.keyCache.get(key);
    if (ki !== undefined) return ki;
    const norm = normalizeKey(key);
    const tokens = norm.split('_');
    const pos = new Set<string>();
    let neg = false;
    let health = false;
    const wrapped = `_${norm}_`;
    for (const [k, dets] of this.posKeys) {
      const hit = k.includes('_') ? wrapped.includes(`_${k}_`) : tokens.includes(k) || norm === k;
      if (hit) for (const d of dets) pos.add(d);
    }
    for (const t of tokens) {
      if (this.negKeys.has(t)) neg = true;
      if (this.healthKeys.has(t)) health = true;
    }
    ki = { pos, neg, health, secret: pos.has('secret'), seg: SAFE_SEGMENT.test(key) ? `.${key}` : '.*' };
    if (this.keyCache.size >= 4096) this.keyCache.clear();
    this.keyCache.set(key, ki);
    return ki;
  }

  /** Confidence of candidate `c` after key and nearby-word context. */
  private confidence(c: Cand, ki: KeyInfo | undefined, str: string, tokStart: number): number {
    let conf = c.base;
    const builtin = (DETECTOR_CONTEXT as Record<string, (typeof DETECTOR_CONTEXT)['card'] | undefined>)[c.det];
    if (builtin !== undefined) {
      if (ki !== undefined) {
        if (ki.pos.has(c.det)) conf += builtin.keyBoost;
        else if (ki.neg) conf -= builtin.negativePenalty;
      }
    } else {
      const p = this.patterns.find((x) => x.spec.name === c.det);
      if (p !== undefined && p.keys.size > 0) conf += ki?.pos.has(c.det) ? 0.4 : -0.4;
    }
    const th = this.thresholds[c.det] ?? 0.5;
    if (conf < th && (ki === undefined || !ki.neg)) {
      const re = this.textWords.get(c.det);
      if (re !== undefined) {
        let w = str.slice(Math.max(tokStart, c.s - 40), c.s);
        const nl = w.lastIndexOf('\n');
        if (nl !== -1) w = w.slice(nl + 1);
        w = w.toLowerCase();
        if (re.test(w)) conf += builtin !== undefined ? builtin.textBoost : 0.4;
      }
    }
    return conf > 1 ? 1 : Math.max(conf, 0);
  }

  // ---------------------------------------------------------------- scanning

  /**
   * Scans `body` (a latin1 string: one character per byte) read as `mode`.
   * @param redact detector names whose findings get a replacement (redact action).
   * @returns findings, replacements, record count and, for JSON that does not parse, where it broke.
   */
  scan(body: string, mode: ScanMode, redact: ReadonlySet<string>): ScanResult {
    const res: ScanResult = { findings: [], replacements: [], records: 0, malformed: undefined };
    if (mode === 'text') {
      this.scanText(body, 0, body.length, res, redact);
      return res;
    }
    this.scanJson(body, mode === 'ndjson', res, redact);
    return res;
  }

  /** Scans a text range: context from nearby words only. */
  private scanText(body: string, from: number, to: number, res: ScanResult, redact: ReadonlySet<string>, cands?: Cand[]): void {
    const all = cands ?? this.candidates(body, true);
    const kept: Cand[] = [];
    for (const c of all) {
      if (c.s < from || c.e > to) continue;
      const conf = this.confidence(c, undefined, body, from);
      if (!this.accept(c, conf, body)) continue;
      c.base = conf;
      pushResolved(kept, c);
    }
    let line = 1;
    let lineAt = 0;
    for (const c of kept) {
      // Line numbers, counted incrementally (findings are sorted).
      let nl = body.indexOf('\n', lineAt);
      while (nl !== -1 && nl < c.s) {
        line++;
        nl = body.indexOf('\n', nl + 1);
      }
      lineAt = c.s;
      const v = body.slice(c.s, c.e);
      res.findings.push({ detector: c.det, confidence: c.base, path: `line ${line}`, value: canonicalValue(c.det, v), at: c.s });
      if (redact.has(c.det)) res.replacements.push({ start: c.s, end: c.e, text: maskValue(c.det, v) });
    }
  }

  private accept(c: Cand, conf: number, str: string): boolean {
    if (conf < (this.thresholds[c.det] ?? 0.5)) return false;
    if (c.lazy === 1 && !isValidPhone(str.slice(c.s, c.e), this.region)) return false;
    return true;
  }

  private scanJson(L: string, multi: boolean, res: ScanResult, redact: ReadonlySet<string>): void {
    const cands = this.candidates(L, false);
    const nc = cands.length;
    let ci = 0;
    const len = L.length;
    // Frame stacks: kind (true = array), key offsets of the member being read (objects) or the
    // inherited key (arrays), array index, key escaped flag.
    const isArr: boolean[] = [];
    const keyS: number[] = [];
    const keyE: number[] = [];
    const idx: number[] = [];
    let depth = 0;
    let arrDepth = 0;
    let expect = E_VALUE;
    let topCount = 0;
    let nextBs = -2;
    let i = 0;
    const contextual = this.contextual;
    // Skip a UTF-8 byte order mark.
    if (L.startsWith('\u00ef\u00bb\u00bf')) i = 3;

    const fail = (offset: number, reason: string, tailStart?: number): void => {
      res.malformed = { offset, reason, tailStart };
      // Candidates not yet matched to a token are judged as free text, so nothing after the break escapes.
      this.scanText(L, 0, len, res, redact, cands.slice(ci));
      res.replacements.sort((a, b) => a.start - b.start);
    };

    const keyOf = (d: number): KeyInfo | undefined => {
      if (d === 0 || keyS[d - 1] === -1) return undefined;
      return this.keyInfo(this.decodeKey(L, keyS[d - 1] as number, keyE[d - 1] as number));
    };

    const path = (extra?: string): string => {
      // Paths are for events, which carry at most a few dozen; later findings are only counted.
      if (res.findings.length >= MAX_PATHS) return '';
      let p = multi ? `$[${topCount - 1}]` : '$';
      // A key that holds a finding is itself sensitive: its segment is always `*`.
      const n = extra === undefined ? depth : depth - 1;
      for (let d = 0; d < n; d++) {
        if (isArr[d]) p += `[${idx[d]}]`;
        else if (keyS[d] !== -1) p += this.keyInfo(this.decodeKey(L, keyS[d] as number, keyE[d] as number)).seg;
      }
      return extra === undefined ? p : p + extra;
    };

    /** Processes a value or key token [s, e) (string tokens include their quotes). */
    const token = (s: number, e: number, isString: boolean, escaped: boolean, isKey: boolean): void => {
      const ki = isKey ? undefined : keyOf(depth);
      if (escaped) {
        // Drop raw-text candidates inside; scan the decoded value instead (when it can hold one).
        const ci0 = ci;
        while (ci < nc && (cands[ci] as Cand).s < e) ci++;
        if (this.decodeFilter !== undefined && !this.decodeFilter.test(L.slice(s, e))) return;
        let v: string;
        try {
          v = JSON.parse(Buffer.from(L.slice(s, e), 'latin1').toString('utf8')) as string;
        } catch {
          ci = ci0;
          throw new MalformedError(s, 'bad-escape');
        }
        const local = this.candidates(v, false);
        const kept = this.pickValue(local, ki, v, 0);
        this.contextualValue(v, 0, v.length, ki, kept);
        if (kept.length === 0) return;
        let out = '';
        let prev = 0;
        let any = false;
        const p = isKey ? path('.*') : path();
        for (const c of kept) {
          const raw = v.slice(c.s, c.e);
          res.findings.push({ detector: c.det, confidence: c.base, path: p, value: canonicalValue(c.det, raw), at: s });
          if (redact.has(c.det)) {
            out += v.slice(prev, c.s) + maskValue(c.det, raw);
            prev = c.e;
            any = true;
          }
        }
        if (any) res.replacements.push({ start: s, end: e, text: Buffer.from(JSON.stringify(out + v.slice(prev)), 'utf8').toString('latin1') });
        return;
      }
      const local: Cand[] = [];
      while (ci < nc && (cands[ci] as Cand).s < e) {
        const c = cands[ci] as Cand;
        if (c.s >= s && c.e <= e) local.push(c);
        ci++;
      }
      const vs = isString ? s + 1 : s;
      const ve = isString ? e - 1 : e;
      const kept = local.length ? this.pickValue(local, ki, L, vs) : local;
      if (contextual && isString && !isKey && ki !== undefined) this.contextualValue(L, vs, ve, ki, kept);
      if (kept.length === 0) return;
      const p = isKey ? path('.*') : path();
      for (const c of kept) {
        const raw = L.slice(c.s, c.e);
        res.findings.push({ detector: c.det, confidence: c.base, path: p, value: canonicalValue(c.det, raw), at: s });
        if (redact.has(c.det)) {
          const m = maskValue(c.det, raw);
          // A masked JSON number becomes a string, so the document stays valid JSON.
          res.replacements.push(isString ? { start: c.s, end: c.e, text: m } : { start: s, end: e, text: `"${m}"` });
        }
      }
    };

    try {
      for (;;) {
        // Skip JSON whitespace.
        let c = L.charCodeAt(i);
        while (c === 32 || c === 10 || c === 13 || c === 9) c = L.charCodeAt(++i);
        if (i >= len) break;
        if (c === 34) {
          // String: find the closing quote, jumping with indexOf; escapes make us walk them.
          let j = L.indexOf('"', i + 1);
          if (j === -1) {
            fail(i, 'unterminated-string', i);
            return;
          }
          if (nextBs < i + 1 && nextBs !== -1) nextBs = L.indexOf('\\', i + 1);
          let escaped = false;
          const bs = nextBs !== -1 && nextBs < j ? nextBs : -1; // first backslash inside the string
          if (bs !== -1) {
            escaped = true;
            let k = bs;
            for (;;) {
              k += 2;
              if (j < k) j = L.indexOf('"', k);
              if (j === -1) {
                fail(i, 'unterminated-string', i);
                return;
              }
              const nb = L.indexOf('\\', k);
              if (nb === -1 || nb > j) {
                nextBs = nb;
                break;
              }
              k = nb;
            }
          }
          const e = j + 1;
          if (expect === E_KEY || expect === E_KEY_OR_END) {
            keyS[depth - 1] = i + 1;
            keyE[depth - 1] = j;
            if (escaped) keyS[depth - 1] = -(i + 1) - 2; // marks an escaped key (decoded lazily)
            if ((ci < nc && (cands[ci] as Cand).s < e) || escaped) token(i, e, true, escaped, true);
            expect = E_COLON;
            if (L.charCodeAt(e) === 58) {
              // The usual `"key":` without whitespace.
              expect = E_VALUE;
              i = e + 1;
              continue;
            }
          } else if (expect === E_VALUE || expect === E_VALUE_OR_END) {
            if (depth === 0) {
              topCount++;
              if (multi) res.records++;
            }
            if ((ci < nc && (cands[ci] as Cand).s < e) || escaped || contextual) token(i, e, true, escaped, false);
            expect = depth === 0 && multi ? E_VALUE : E_COMMA_OR_END;
          } else {
            fail(i, 'unexpected-string');
            return;
          }
          i = e;
          continue;
        }
        if (c === 123 || c === 91) {
          // { or [
          if (expect !== E_VALUE && expect !== E_VALUE_OR_END) {
            fail(i, 'unexpected-token');
            return;
          }
          if (depth >= MAX_DEPTH) {
            fail(i, 'too-deep');
            return;
          }
          if (depth === 0) topCount++;
          const arr = c === 91;
          if (!arr && depth > 0 && isArr[depth - 1] && arrDepth === 1) res.records++;
          // An array inherits the key it sits under (for context); an object starts without one.
          const inheritS = depth > 0 ? (keyS[depth - 1] as number) : -1;
          const inheritE = depth > 0 ? (keyE[depth - 1] as number) : -1;
          isArr[depth] = arr;
          keyS[depth] = arr ? inheritS : -1;
          keyE[depth] = arr ? inheritE : -1;
          idx[depth] = 0;
          depth++;
          if (arr) arrDepth++;
          expect = arr ? E_VALUE_OR_END : E_KEY_OR_END;
          i++;
          continue;
        }
        if (c === 125 || c === 93) {
          // } or ]
          const arr = c === 93;
          if (depth === 0 || isArr[depth - 1] !== arr) {
            fail(i, 'unexpected-token');
            return;
          }
          if (!(expect === E_COMMA_OR_END || (arr ? expect === E_VALUE_OR_END : expect === E_KEY_OR_END))) {
            fail(i, 'unexpected-token');
            return;
          }
          depth--;
          if (arr) arrDepth--;
          expect = E_COMMA_OR_END;
          i++;
          if (depth === 0 && multi) {
            res.records++;
            expect = E_VALUE;
          }
          continue;
        }
        if (c === 44) {
          // ,
          if (expect !== E_COMMA_OR_END || depth === 0) {
            fail(i, 'unexpected-token');
            return;
          }
          if (isArr[depth - 1]) {
            (idx as number[])[depth - 1]++;
            expect = E_VALUE;
          } else expect = E_KEY;
          i++;
          continue;
        }
        if (c === 58) {
          if (expect !== E_COLON) {
            fail(i, 'unexpected-token');
            return;
          }
          expect = E_VALUE;
          i++;
          continue;
        }
        if ((c >= 48 && c <= 57) || c === 45) {
          if (expect !== E_VALUE && expect !== E_VALUE_OR_END) {
            fail(i, 'unexpected-token');
            return;
          }
          let j = i + 1;
          let d = L.charCodeAt(j);
          while ((d >= 48 && d <= 57) || d === 46 || d === 101 || d === 69 || d === 43 || d === 45) d = L.charCodeAt(++j);
          if (j >= len && depth > 0) {
            fail(i, 'truncated', i);
            return;
          }
          if (depth === 0) {
            topCount++;
            if (multi) res.records++;
          }
          if (ci < nc && (cands[ci] as Cand).s < j) token(i, j, false, false, false);
          expect = depth === 0 && multi ? E_VALUE : E_COMMA_OR_END;
          i = j;
          continue;
        }
        if (c === 116 || c === 102 || c === 110) {
          const lit = c === 116 ? 'true' : c === 102 ? 'false' : 'null';
          if (expect !== E_VALUE && expect !== E_VALUE_OR_END) {
            fail(i, 'unexpected-token');
            return;
          }
          if (!L.startsWith(lit, i)) {
            fail(i, i + lit.length > len ? 'truncated' : 'unexpected-token');
            return;
          }
          if (depth === 0) {
            topCount++;
            if (multi) res.records++;
          }
          expect = depth === 0 && multi ? E_VALUE : E_COMMA_OR_END;
          i += lit.length;
          continue;
        }
        fail(i, 'unexpected-token');
        return;
      }
    } catch (e) {
      if (e instanceof MalformedError) {
        fail(e.offset, e.reason);
        return;
      }
      throw e;
    }
    if (depth !== 0) {
      fail(len, 'truncated');
      return;
    }
    if (topCount === 0) {
      fail(len, 'empty');
      return;
    }
  }

  /** Decodes a key (negative start marks an escaped key). */
  private decodeKey(L: string, s: number, e: number): string {
    if (s >= 0) return L.slice(s, e);
    const start = -(s + 2);
    try {
      return JSON.parse(Buffer.from(L.slice(start - 1, e + 1), 'latin1').toString('utf8')) as string;
    } catch {
      return '*';
    }
  }

  /** Applies key context to candidates inside one value and keeps the accepted, non-overlapping ones. */
  private pickValue(local: Cand[], ki: KeyInfo | undefined, str: string, vs: number): Cand[] {
    const kept: Cand[] = [];
    for (const c0 of local) {
      const conf = this.confidence(c0, ki, str, vs);
      if (!this.accept(c0, conf, str)) continue;
      c0.base = conf;
      pushResolved(kept, c0);
    }
    return kept;
  }

  /** Detectors that look only under a key: high-entropy secrets, ICD-10-CM codes in health contexts. */
  private contextualValue(str: string, vs: number, ve: number, ki: KeyInfo | undefined, kept: Cand[]): void {
    if (ki === undefined) return;
    if (ki.secret && this.on.has('secret') && kept.length === 0 && ve - vs >= 8) {
      const v = str.slice(vs, ve);
      if (looksLikeSecret(v)) kept.push({ s: vs, e: ve, det: 'secret', base: 0.8, lazy: 0 });
      return;
    }
    if (ki.health && this.on.has('icd10') && !this.healthContext && ve - vs <= 256) {
      ICD.lastIndex = 0;
      const v = str.slice(vs, ve);
      let m: RegExpExecArray | null;
      while ((m = ICD.exec(v)) !== null) {
        if (!isIcd10CmCode(m[0])) continue;
        const c: Cand = { s: vs + m.index, e: vs + m.index + m[0].length, det: 'icd10', base: 0.3, lazy: 0 };
        const conf = this.confidence(c, ki, str, vs);
        if (conf >= (this.thresholds.icd10 ?? 0.5)) {
          c.base = conf;
          pushResolved(kept, c);
        }
      }
      kept.sort((a, b) => a.s - b.s);
    }
  }
}

class MalformedError extends Error {
  readonly offset: number;
  readonly reason: string;
  constructor(offset: number, reason: string) {
    super(reason);
    this.offset = offset;
    this.reason = reason;
  }
}

/** Adds `c` to `kept` (sorted by start); on overlap the higher confidence (then longer) wins. */
function pushResolved(kept: Cand[], c: Cand): void {
  const last = kept[kept.length - 1];
  if (last === undefined || c.s >= last.e) {
    kept.push(c);
    return;
  }
  if (c.base > last.base || (c.base === last.base && c.e - c.s > last.e - last.s)) kept[kept.length - 1] = c;
}

function validDomain(str: string, s: number, e: number): boolean {
  if (e - s < 4) return false;
  const lastDot = str.lastIndexOf('.', e - 1);
  if (lastDot <= s || lastDot >= e - 2) return false;
  for (let i = lastDot + 1; i < e; i++) if (!isAlpha(str.charCodeAt(i))) return false;
  if (str.charCodeAt(s) === 45 || str.charCodeAt(s) === 46) return false;
  for (let i = s + 1; i < e; i++) if (str.charCodeAt(i) === 46 && str.charCodeAt(i - 1) === 46) return false;
  return true;
}

/** Merges lists each sorted by start into one list sorted by start (stable across lists). */
function mergeSorted(lists: Cand[][]): Cand[] {
  const nonEmpty = lists.filter((l) => l.length > 0);
  if (nonEmpty.length === 0) return [];
  if (nonEmpty.length === 1) return nonEmpty[0] as Cand[];
  const out = nonEmpty.flat();
  out.sort((a, b) => a.s - b.s || b.e - a.e);
  return out;
}

/**
 * Applies sorted, non-overlapping replacements to `body`.
 * @param cutAt when set, the output stops at this offset (the start of a truncated value).
 */
export function applyReplacements(body: string, reps: readonly Replacement[], cutAt?: number): string {
  const end = cutAt ?? body.length;
  let out = '';
  let prev = 0;
  for (const r of reps) {
    if (r.start < prev) continue;
    if (r.start >= end) break;
    out += body.slice(prev, r.start) + r.text;
    prev = r.end;
  }
  return prev < end ? out + body.slice(prev, end) : out;
}

/**
 * Applies sorted, non-overlapping replacements to the bytes `src` (offsets are byte offsets, as
 * from a scan of `src.toString('latin1')`), writing straight into one new buffer: no string
 * concatenation of the whole body and no re-encoding of it.
 * @param cutAt when set, the output stops at this offset (the start of a truncated value).
 * @returns a new buffer, or `src` itself when there is nothing to change.
 */
export function applyReplacementsToBuffer(src: Buffer, reps: readonly Replacement[], cutAt?: number): Buffer {
  const end = cutAt ?? src.length;
  if (reps.length === 0 && end === src.length) return src;
  let size = 0;
  let prev = 0;
  for (const r of reps) {
    if (r.start < prev) continue;
    if (r.start >= end) break;
    size += r.start - prev + r.text.length;
    prev = r.end;
  }
  if (prev < end) size += end - prev;
  const out = Buffer.allocUnsafe(size);
  let o = 0;
  prev = 0;
  for (const r of reps) {
    if (r.start < prev) continue;
    if (r.start >= end) break;
    o += src.copy(out, o, prev, r.start);
    o += out.write(r.text, o, 'latin1');
    prev = r.end;
  }
  if (prev < end) src.copy(out, o, prev, end);
  return out;
}
