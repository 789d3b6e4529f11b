/**
 * The inspection engine: normalises a value, runs the detectors whose prerequisites its characters
 * meet, and adds hits to an anomaly score (OWASP CRS anomaly scoring mode: each rule adds its
 * severity score; the request is blocked once the total reaches the inbound threshold; rules above
 * the configured paranoia level do not run). Detectors are compiled tables, built once.
 */
import { detectCmdi } from './cmdi.ts';
import { detectLfi } from './lfi.ts';
import { detectLdap, detectNosql, detectSsti } from './misc.ts';
import { normalize } from './normalize.ts';
import { detectSqli, detectSqliName } from './sqli.ts';
import { detectSsrf } from './ssrf.ts';
import { detectXss } from './xss.ts';

/** Detector names, as they appear in events, problem details and configuration. */
export const DETECTORS = ['sqli', 'xss', 'cmdi', 'lfi', 'ssrf', 'nosql', 'ssti', 'ldap'] as const;
export type DetectorName = (typeof DETECTORS)[number];

/** One detection. */
export interface Detection {
  detector: DetectorName;
  /** Detector-specific rule, e.g. `event-handler:onload`, `'` + fingerprint shape. */
  rule: string;
  /** Where: `query:q`, `body:/comment`, `header:user-agent`, `cookie:sid`, `path:2`. */
  location: string;
  /** Truncated (≤ {@link SNIPPET_CHARS}), redacted excerpt of the normalised value. */
  snippet: string;
  /** Anomaly score added (CRS severities: critical 5, error 4, warning 3, notice 2). */
  score: number;
  /** Paranoia level of the rule that fired (1–4). */
  paranoia: number;
}

/** Characters of context kept in a snippet. */
export const SNIPPET_CHARS = 48;

/**
 * Truncates `s` around `index` to at most {@link SNIPPET_CHARS} characters and redacts what could
 * be personal data or a secret: e-mail addresses, runs of 8+ digits (card, account, phone numbers)
 * and long token-like strings (24+ base64url characters: keys, session ids, JWT segments).
 */
export function snippetOf(s: string, index: number): string {
  const start = Math.max(0, Math.min(index - 8, s.length - SNIPPET_CHARS));
  let out = s.slice(start, start + SNIPPET_CHARS);
  out = out
    .replace(/[a-z0-9._%+-]{1,64}@[a-z0-9-]{1,63}(?:\.[a-z0-9-]{1,63}){1,8}/gi, '[email]')
    .replace(/[a-z0-9_-]{24,}/gi, (m) => (/\d/.test(m) && /[a-z]/i.test(m) ? '[token]' : m))
    .replace(/\d[\d -]{6,}\d/g, '[number]');
  // eslint-disable-next-line no-control-regex
  out = out.replace(/[\u0000-\u001f\u007f]/g, ' ');
  return (start > 0 ? '…' : '') + out + (start + SNIPPET_CHARS < s.length ? '…' : '');
}

// Character classes of a normalised value, one bit each, computed in one pass.
const QUOTE = 1;
const PAREN = 2;
const ANGLE = 4;
const SEP = 8; // ; | & newline `
const DOLLAR = 16;
const BRACE = 32;
const SLASH = 64;
const DOT = 128;
const COLON = 256;
const EQ = 512;
const HASH = 1024;
const STAR = 2048;
const AT = 4096;
const DASH = 8192;
const SPACE = 16384;
const BRACKET = 32768;
const TILDE = 65536;
const UNDERSCORE = 131072;

const CLASS = new Uint32Array(128);
for (const c of '\'"`') CLASS[c.charCodeAt(0)] |= QUOTE;
for (const c of '()') CLASS[c.charCodeAt(0)] |= PAREN;
for (const c of '<>') CLASS[c.charCodeAt(0)] |= ANGLE;
for (const c of ';|&\n\r`') CLASS[c.charCodeAt(0)] |= SEP;
CLASS[36] |= DOLLAR;
for (const c of '{}') CLASS[c.charCodeAt(0)] |= BRACE;
for (const c of '/\\') CLASS[c.charCodeAt(0)] |= SLASH;
CLASS[46] |= DOT;
CLASS[58] |= COLON;
CLASS[61] |= EQ;
CLASS[35] |= HASH;
CLASS[42] |= STAR;
CLASS[64] |= AT;
CLASS[45] |= DASH;
for (const c of ' \t+') CLASS[c.charCodeAt(0)] |= SPACE;
for (const c of '[]') CLASS[c.charCodeAt(0)] |= BRACKET;
CLASS[126] |= TILDE;
CLASS[95] |= UNDERSCORE;

function classesOf(s: string): number {
  let m = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 128) m |= CLASS[c] as number;
  }
  return m;
}

/** Characters that make a raw value need normalisation beyond lower-casing. */
function needsNormalising(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 37 || c === 38 || c === 0 || c > 127) return true;
  }
  return false;
}

const SQL_WORDS = /\b(?:union|select|sleep|benchmark|waitfor|insert|delete|drop|update|exec|order|group|having|xor|or|and|from|declare|shutdown)\b/;
const PLAIN_NAME = /^[a-z0-9_.-]*$/;
/** Plain names worth a catalogue look-up (exact names; anything under information_schema). */
const NAME_WORDS = new Set(['information_schema', 'mysql.user', 'mysql.db', 'sysobjects', 'syscolumns', 'sys.tables', 'sys.objects', 'sys.columns', 'sys.databases', 'pg_catalog', 'pg_shadow', 'pg_user', 'pg_database', 'pg_tables', 'pg_class', 'pg_namespace', 'sqlite_master', 'sqlite_schema', 'msysobjects', 'msysaccessobjects', 'msysqueries', 'msysrelationships', 'msysaces', 'all_tables', 'all_tab_columns', 'user_tables', 'dba_users', 'dba_tables', 'sysdatabases', 'sysusers', 'syslogins', 'sysprocesses', 'performance_schema', 'pg_sleep', 'xp_cmdshell', 'xp_dirtree', 'xp_fileexist', 'xp_regread', 'sp_oacreate', 'sp_executesql', 'sp_makewebtask', 'sp_password', 'openrowset', 'opendatasource', 'load_file', 'pg_read_file', 'lo_import', 'is_srvrolemember', 'msdasql', 'sqloledb', 'tempdb', 'northwind', 'msdb', 'sakila', 'adventureworks', '2147483648', '4294967295', '4294967296', '9223372036854775807', '9223372036854775808', '18446744073709551615', '18446744073709551616', '2.2250738585072011e-308', '2.2250738585072012e-308']);

interface Runner {
  name: DetectorName;
  /** Any of these character classes must be present for the detector to run. */
  needs: number;
  /** Runs on names too (parameter and member names). */
  names: boolean;
  run(s: string, isName: boolean, mask: number): { rule: string; index: number; paranoia: number } | undefined;
}

const RUNNERS: readonly Runner[] = [
  {
    name: 'sqli',
    needs: QUOTE | PAREN | SEP | EQ | ANGLE | HASH | STAR | AT | DASH | SLASH | SPACE | UNDERSCORE,
    names: true,
    run(s, _n, mask) {
      if ((mask & ~(SPACE | DOT | DASH | UNDERSCORE)) === 0 && !SQL_WORDS.test(s) && (mask & UNDERSCORE) === 0) return undefined;
      const h = detectSqli(s);
      return h && { rule: h.rule, index: 0, paranoia: h.paranoia };
    },
  },
  {
    name: 'xss',
    needs: ANGLE | COLON | EQ | PAREN | QUOTE | BRACKET | DOT | SPACE,
    names: true,
    run(s, _n, mask) {
      // with none of these characters only a DOM global (`window.location`) can be script
      if ((mask & (ANGLE | COLON | EQ | PAREN | QUOTE | BRACKET)) === 0 && s.indexOf('document') === -1 && s.indexOf('window') === -1 && s.indexOf('+ad') === -1) return undefined;
      return detectXss(s);
    },
  },
  { name: 'cmdi', needs: SEP | DOLLAR | SLASH | PAREN | DASH | BRACE | SPACE | EQ | QUOTE, names: true, run: (s) => detectCmdi(s) },
  { name: 'lfi', needs: SLASH | DOT | COLON, names: true, run: (s) => detectLfi(s) },
  { name: 'ssrf', needs: SLASH, names: false, run: (s) => detectSsrf(s) },
  { name: 'nosql', needs: DOLLAR | DOT, names: true, run: (s, isName) => detectNosql(s, isName) },
  { name: 'ssti', needs: BRACE | ANGLE | BRACKET, names: false, run: (s) => detectSsti(s) },
  { name: 'ldap', needs: PAREN | STAR, names: false, run: (s) => detectLdap(s) },
];

/** A per-route exclusion: detections of `detectors` (all when absent) at matching `locations` are ignored. */
export interface CompiledExclusion {
  /** Exact locations, and prefixes (patterns that ended in `*`). */
  exact: ReadonlySet<string>;
  prefixes: readonly string[];
  detectors: ReadonlySet<string> | undefined;
}

/** Compiled engine settings. */
export interface EngineOptions {
  paranoia: number;
  threshold: number;
  enabled: ReadonlySet<DetectorName>;
  /** Stop at the threshold (block mode) or collect up to `maxHits` (monitor mode). */
  stopAtThreshold: boolean;
  maxHits: number;
}

/** Accumulated result of inspecting one request. */
export class Scan {
  score = 0;
  readonly hits: Detection[] = [];
  readonly exclusions: readonly CompiledExclusion[];
  private readonly opts: EngineOptions;
  private readonly runners: readonly Runner[];
  /** Values inspected (for metrics and benchmarks). */
  values = 0;

  private readonly plainNameCheck: ((s: string) => { rule: string; paranoia: number } | undefined) | undefined;

  constructor(opts: EngineOptions, runners: readonly Runner[], exclusions: readonly CompiledExclusion[]) {
    this.opts = opts;
    this.runners = runners;
    this.exclusions = exclusions;
    this.plainNameCheck = opts.enabled.has('sqli') ? detectSqliName : undefined;
  }

  /** True once the anomaly score has reached the threshold. */
  get blocked(): boolean {
    return this.score >= this.opts.threshold;
  }

  /**
   * Inspects one raw value (already decoded once by its parser).
   * @param location called only when a detection needs naming (keeps the hot path allocation-free).
   * @returns true when scanning can stop (threshold reached in block mode, or `maxHits` reached).
   */
  inspect(raw: string, isName: boolean, location: () => string): boolean {
    if (raw.length === 0) return false;
    this.values++;
    let s: string;
    if (isName) {
      s = raw.toLowerCase();
      if (PLAIN_NAME.test(s)) {
        // a plain name can still be a catalogue or procedure name sent as a bare parameter
        if (s.length >= 4 && this.plainNameCheck !== undefined && NAME_WORDS.has(s.startsWith('information_schema') ? 'information_schema' : s)) {
          const h = this.plainNameCheck(s);
          if (h !== undefined && h.paranoia <= this.opts.paranoia) return this.record('sqli', h.rule, h.paranoia, location(), s, 0);
        }
        return false;
      }
      if (needsNormalising(s)) s = normalize(raw);
    } else s = needsNormalising(raw) ? normalize(raw) : raw.toLowerCase();
    const mask = classesOf(s);
    if (mask === 0 || mask === UNDERSCORE || mask === DOT) {
      if (s.length >= 4 && s.length <= 32 && this.plainNameCheck !== undefined && NAME_WORDS.has(s)) {
        const h = this.plainNameCheck(s);
        if (h !== undefined && h.paranoia <= this.opts.paranoia) return this.record('sqli', h.rule, h.paranoia, location(), s, 0);
      }
      if (mask === 0) return false;
    }
    for (const r of this.runners) {
      if ((mask & r.needs) === 0 || (isName && !r.names)) continue;
      const h = r.run(s, isName, mask);
      if (h === undefined || h.paranoia > this.opts.paranoia) continue;
      if (this.record(r.name, h.rule, h.paranoia, location(), s, h.index)) return true;
    }
    return false;
  }

  /** Adds one detection unless excluded; true when scanning can stop. */
  private record(detector: DetectorName, rule: string, paranoia: number, loc: string, s: string, index: number): boolean {
    if (this.excluded(detector, loc)) return false;
    this.hits.push({ detector, rule, location: loc, snippet: snippetOf(s, index), score: 5, paranoia });
    this.score += 5;
    return (this.opts.stopAtThreshold && this.blocked) || this.hits.length >= this.opts.maxHits;
  }

  /**
   * Adds a detection found outside {@link inspect} (request-path checks).
   * @returns true when scanning can stop.
   */
  add(detector: DetectorName, rule: string, paranoia: number, location: string, value: string): boolean {
    if (paranoia > this.opts.paranoia || !this.opts.enabled.has(detector) || this.excluded(detector, location)) return false;
    this.hits.push({ detector, rule, location, snippet: snippetOf(value, 0), score: 5, paranoia });
    this.score += 5;
    return (this.opts.stopAtThreshold && this.blocked) || this.hits.length >= this.opts.maxHits;
  }

  private excluded(detector: string, loc: string): boolean {
    for (const e of this.exclusions) {
      if (e.detectors !== undefined && !e.detectors.has(detector)) continue;
      if (e.exact.has(loc)) return true;
      for (const p of e.prefixes) if (loc.startsWith(p)) return true;
    }
    return false;
  }
}

/** Builds scans for requests; compile once per configuration. */
export class Engine {
  readonly opts: EngineOptions;
  private readonly runners: readonly Runner[];

  constructor(opts: EngineOptions) {
    this.opts = opts;
    this.runners = RUNNERS.filter((r) => opts.enabled.has(r.name));
  }

  /** A fresh accumulator for one request, with the exclusions that apply to its route. */
  scan(exclusions: readonly CompiledExclusion[] = []): Scan {
    return new Scan(this.opts, this.runners, exclusions);
  }
}
