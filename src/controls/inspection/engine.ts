/**
 * The inspection engine: normalises a value, runs the detectors whose prerequisites its characters
 * meet, and adds hits to an anomaly score (OWASP CRS anomaly scoring mode: each rule adds its
 * severity score; the request is blocked once the total reaches the inbound threshold; rules above
 * the configured paranoia level do not run). Detectors are compiled tables, built once.
 */
import { detectCmdi, detectCmdiBareWord, detectCmdiWords } from './cmdi.ts';
import { detectLfi } from './lfi.ts';
import { detectLdap, detectNosql, detectSsti, detectTemplateDirective } from './misc.ts';
import { normalize } from './normalize.ts';
import { detectSqli, detectSqliName, SQL_NAMES } from './sqli.ts';
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
const OTHER = 262144; // any other ASCII punctuation (! ^ etc.)
const QMARK = 2097152;
/** Class bit of `%`, `&`, NUL and non-ASCII code units: the value needs normalising. */
export const NORM = 524288;
const UPPER = 1048576; // A-Z: the value needs lower-casing

/** Character classes of each ASCII code unit (bits above; parsers that scan a value anyway build its mask from this table). */
export const CLASS = new Uint32Array(128);
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
CLASS[63] |= QMARK;
for (let c = 33; c < 127; c++) {
  const alnum = (c >= 48 && c <= 57) || (c >= 97 && c <= 122) || (c >= 65 && c <= 90);
  if (!alnum && CLASS[c] === 0 && c !== 44 /* , is prose */) CLASS[c] = OTHER;
}
CLASS[37] |= NORM;
CLASS[38] |= NORM;
CLASS[0] |= NORM;
for (let c = 65; c <= 90; c++) CLASS[c] |= UPPER;

/**
 * The character classes of `s` in one pass: one bit per class, plus {@link NORM} (percent, ampersand,
 * NUL or non-ASCII: needs normalising) and {@link UPPER} (needs lower-casing). Every detector's
 * prefilter reads this one bitmap.
 */
function classesOf(s: string): number {
  let m = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    m |= c < 128 ? (CLASS[c] as number) : NORM;
  }
  return m;
}

/** File names an LFI can name without a slash or colon (`.htaccess`, `web.config`, `id_rsa`); also `..` and hex-spelt dots. */
const LFI_DOT_WORDS =
  /\.\.|0x|\.(?:sql\.|env|ht|bash|zsh|mysql_|psql_|git|npmrc|pgpass|my\.cnf|netrc|ini|conf|sys\b|bat|properties|docker|kube|aws|ssh|svn|hg)|id_(?:rsa|dsa|ecdsa|ed25519)|authorized_keys|known_hosts|wp-config|web-inf|meta-inf/;
/** Script in a value without markup characters: a DOM global with a member, or UTF-7 markup. */
const XSS_WORDS = /document|window\.|\+ad[w4]|!entity|-->|\u2044/;
/** Classes of prose: words, numbers, spaces, dots, commas, hyphens, underscores, `@`. */
const PROSE_CLASSES = SPACE | DOT | DASH | UNDERSCORE | AT;
/** Objects of SQL DDL statements (`drop table`, `create user`). */
const SQL_OBJECTS = '(?:table|database|schema|procedure|function|view|index|user|trigger|column|login|role|event|tablespace|sequence|type|proc)';
/** SQL comparison operators that follow `or x` / `and x` in a tautology. */
const SQL_COMPARISONS = '(?:like|rlike|regexp|between|sounds|glob)';
/**
 * SQL keyword pairs possible without SQL punctuation (the words-only part of the SQLi gate):
 * set operations before `select`, `select `, `order by`/`group by`, `case when`, `insert`/`replace
 * into`, `delete from`, DDL on an object, `update x set`, `exec xp_`…, `waitfor delay`, `into
 * outfile`, `load data`, `shutdown`, `procedure analyse`, `or x like`…, `xor`, `set @`. Grouped by
 * first letters, so each word start tries a few branches instead of all.
 */
const PROSE_SQL = new RegExp(
  [
    `\\b(?:a(?:lter\\s+${SQL_OBJECTS}|nd\\s+\\S+\\s+${SQL_COMPARISONS})`,
    `c(?:ase\\s+when|reate\\s+${SQL_OBJECTS})`,
    `d(?:elete\\s+from|rop\\s+${SQL_OBJECTS})`,
    'e(?:xcept\\s+(?:all\\s+|distinct\\s+)?select|xec(?:ute)?\\s+(?:xp_|sp_|immediate|master))',
    'group\\s+by',
    'in(?:tersect\\s+(?:all\\s+|distinct\\s+)?select|sert\\s+into|to\\s+(?:outfile|dumpfile))',
    'load\\s+data',
    `or(?:der\\s+by|\\s+\\S+\\s+${SQL_COMPARISONS})`,
    'procedure\\s+analyse',
    `re(?:place\\s+into|name\\s+${SQL_OBJECTS})`,
    's(?:elect\\s|hutdown|et\\s+@)',
    `truncate\\s+${SQL_OBJECTS}`,
    'u(?:nion\\s+(?:all\\s+|distinct\\s+)?select|pdate\\s+\\w+\\s+set)',
    'waitfor\\s+(?:delay|time)',
    // `xor` alone (which also covers `xor x like`)
    'xor)\\b',
  ].join('|'),
);
/** Whole-value shapes of the words-only SQL gate (anchored, tried on values of at most 48 characters). */
const PROSE_SQL_WHOLE =
  /^(?:\d\S*\s+(?:or|and|xor)\b|(?:or|and)\s+\d|exec(?:ute)?\s+\w+$|(?:order|group)\s+by$|(?:is(?:\s+not)?|like)\s+null$|\d+\s+(?:is\s+not|not\s+like|like|rlike|regexp|glob)\s+\d+$|\S+\s+(?:and|or)$)/;
/** What may follow a dot in a file name an LFI names without a slash (`.htaccess`, `.env`, `..`). */
const DOT_NEXT = [
  '.',
  'sql.',
  'env',
  'ht',
  'bash',
  'zsh',
  'git',
  'npmrc',
  'pgpass',
  'my.cnf',
  'netrc',
  'ini',
  'conf',
  'sys',
  'bat',
  'properties',
  'docker',
  'kube',
  'aws',
  'ssh',
  'svn',
  'hg',
];
/** What may precede a dot in script or catalogue names (`document.cookie`, `master.dbo`, `this.x`). */
const DOT_PREV = [
  'document',
  'window',
  'master',
  'this',
  'mysql',
  'sys',
  'web',
  'boot',
  'win',
  'system',
  'php',
  'my',
  'httpd',
  'apache2',
  'nginx',
  'application',
  'autoexec',
  'config',
];

/** Groups words by one of their ASCII code units (`at(word)`): one table look-up leaves a few candidates. */
function byCode(words: readonly string[], at: (w: string) => number): (readonly string[] | undefined)[] {
  const t: (string[] | undefined)[] = new Array(128).fill(undefined);
  for (const w of words) (t[at(w)] ??= []).push(w);
  return t;
}
/** {@link DOT_NEXT} by first code unit. */
const DOT_NEXT_BY = byCode(DOT_NEXT, (w) => w.charCodeAt(0));
/** {@link DOT_PREV} by last code unit. */
const DOT_PREV_BY = byCode(DOT_PREV, (w) => w.charCodeAt(w.length - 1));
/** Substrings that make prose worth a closer look: `0x` literals, `sys` catalogues, UTF-7 `+ad` (with {@link PROSE_WORDS_DASH_AT}: `@@` variables, `web-inf`/`meta-inf`, `wp-config`, `--alter`/`--drop`). */
const PROSE_WORDS = /0x|sys|\+ad/;
/** The part of {@link PROSE_WORDS} that needs a `-` or `@` (tried only when the value has one). */
const PROSE_WORDS_DASH_AT = /@@|-inf|wp-config|--alter|--drop/;
/**
 * Whether any detector but the command-line check can match a value of {@link PROSE_CLASSES}:
 * SQL keyword pairs, `_` names (catalogues, `id_rsa`), `@@`, `0x`, `sys`, UTF-7 markup, and file
 * or script names around a dot. One substring pattern, probes around each dot and one keyword-pair
 * pattern instead of one pattern per detector.
 */
function proseTrigger(s: string, mask: number): boolean {
  if ((mask & UNDERSCORE) !== 0) return true;
  // one pass for all fixed substrings (cheaper than one `indexOf` each)
  if (PROSE_WORDS.test(s) || ((mask & (DASH | AT)) !== 0 && PROSE_WORDS_DASH_AT.test(s))) return true;
  if ((mask & DOT) !== 0) {
    for (let p = s.indexOf('.'); p !== -1; p = s.indexOf('.', p + 1)) {
      const next = s.charCodeAt(p + 1);
      const nexts = next < 128 ? DOT_NEXT_BY[next] : undefined;
      if (nexts !== undefined) for (const x of nexts) if (s.startsWith(x, p + 1)) return true;
      const prev = s.charCodeAt(p - 1);
      const prevs = prev < 128 ? DOT_PREV_BY[prev] : undefined;
      if (prevs !== undefined) for (const x of prevs) if (p >= x.length && s.startsWith(x, p - x.length)) return true;
    }
  }
  return (mask & SPACE) !== 0 && ((s.length <= 48 && PROSE_SQL_WHOLE.test(s)) || PROSE_SQL.test(s));
}
/** Characters of a plain URL without spaces, quotes, brackets or shell separators. */
const URL_CLASSES = COLON | SLASH | DOT | DASH | UNDERSCORE | QMARK | EQ | TILDE | HASH;
/** Classes a plain name (`customer_id`, `v1.2`, `x-y`) may have. */
const PLAIN_NAME_CLASSES = UNDERSCORE | DOT | DASH | UPPER;
/** Characters that can start or carry SQL beyond words: with none of them only keyword sequences can match. */
const SQL_SPECIAL = QUOTE | PAREN | SEP | ANGLE | HASH | STAR | OTHER | BRACE | BRACKET | TILDE;
/** Shell metacharacters: with none of them only a value-start command line, `if exist`, PowerShell or `sh -c` can match. */
const SHELL_META = SEP | DOLLAR | SLASH | PAREN | BRACE | QUOTE | EQ | ANGLE | BRACKET | STAR | OTHER | TILDE | HASH | QMARK;
/** Plain names worth a catalogue look-up (exact names; anything under information_schema). */
const NAME_WORDS = new Set([
  'information_schema',
  'mysql.user',
  'mysql.db',
  'sysobjects',
  'syscolumns',
  'sys.tables',
  'sys.objects',
  'sys.columns',
  'sys.databases',
  'pg_catalog',
  'pg_shadow',
  'pg_user',
  'pg_database',
  'pg_tables',
  'pg_class',
  'pg_namespace',
  'sqlite_master',
  'sqlite_schema',
  'msysobjects',
  'msysaccessobjects',
  'msysqueries',
  'msysrelationships',
  'msysaces',
  'all_tables',
  'all_tab_columns',
  'user_tables',
  'dba_users',
  'dba_tables',
  'sysdatabases',
  'sysusers',
  'syslogins',
  'sysprocesses',
  'performance_schema',
  'pg_sleep',
  'xp_cmdshell',
  'xp_dirtree',
  'xp_fileexist',
  'xp_regread',
  'sp_oacreate',
  'sp_executesql',
  'sp_makewebtask',
  'sp_password',
  'openrowset',
  'opendatasource',
  'load_file',
  'pg_read_file',
  'lo_import',
  'is_srvrolemember',
  'msdasql',
  'sqloledb',
  'tempdb',
  'northwind',
  'msdb',
  'sakila',
  'adventureworks',
  '2147483648',
  '4294967295',
  '4294967296',
  '9223372036854775807',
  '9223372036854775808',
  '18446744073709551615',
  '18446744073709551616',
  '2.2250738585072011e-308',
  '2.2250738585072012e-308',
]);
// SQL type, package and operator names as a whole value (`varchar`, `utl_http`, `xor`): level 2
for (const w of SQL_NAMES) NAME_WORDS.add(w);
/**
 * {@link NAME_WORDS} by first code unit: bit `n` is set when a word of length `n` starts with it.
 * Most names fail this test, which spares hashing them for the set look-up. A word longer than 31
 * or starting with a non-ASCII character turns the filter off ({@link NAME_FIRST_ALL}).
 */
const NAME_FIRST = new Uint32Array(128);
let NAME_FIRST_ALL = false;
for (const w of NAME_WORDS) {
  const c = w.charCodeAt(0);
  if (w.length >= 32 || !(c < 128)) NAME_FIRST_ALL = true;
  else NAME_FIRST[c] = (NAME_FIRST[c] as number) | (1 << w.length);
}
/** Whether `s` is in {@link NAME_WORDS}. */
function isNameWord(s: string): boolean {
  if (NAME_FIRST_ALL) return NAME_WORDS.has(s);
  const c = s.charCodeAt(0);
  return c < 128 && s.length < 32 && (((NAME_FIRST[c] as number) >>> s.length) & 1) === 1 && NAME_WORDS.has(s);
}

interface Runner {
  name: DetectorName;
  /** Any of these character classes must be present for the detector to run. */
  needs: number;
  /** Runs on names too (parameter and member names). */
  names: boolean;
  /** Runs on plain http(s) URLs (values of only URL characters). */
  url?: boolean;
  /** `paranoia` is the configured level: evidence above it need not be looked for. */
  run(s: string, isName: boolean, mask: number, paranoia: number): { rule: string; index: number; paranoia: number } | undefined;
}

const RUNNERS: readonly Runner[] = [
  {
    name: 'sqli',
    needs: QUOTE | PAREN | SEP | EQ | ANGLE | HASH | STAR | AT | DASH | SLASH | SPACE | UNDERSCORE | COLON | OTHER,
    names: true,
    run(s, _n, mask, paranoia) {
      // with none of the characters that build SQL syntax, only keyword sequences can match (a cheap gate)
      const words =
        (mask & SQL_SPECIAL) === 0 &&
        ((mask & DASH) === 0 || s.indexOf('--') === -1) &&
        ((mask & SLASH) === 0 || s.indexOf('/*') === -1) &&
        ((mask & AT) === 0 || s.indexOf('@@') === -1) &&
        ((mask & COLON) === 0 || s.indexOf('::') === -1);
      const h = detectSqli(s, words, paranoia);
      return h && { rule: h.rule, index: 0, paranoia: h.paranoia };
    },
  },
  {
    name: 'xss',
    needs: ANGLE | COLON | EQ | PAREN | QUOTE | BRACKET | DOT | SPACE | SLASH | DASH | OTHER,
    names: true,
    run(s, _n, mask) {
      // with none of these characters only a DOM global (`window.location`) can be script
      if ((mask & (ANGLE | COLON | EQ | PAREN | QUOTE | BRACKET)) === 0 && !XSS_WORDS.test(s)) return undefined;
      return detectXss(s);
    },
  },
  {
    name: 'cmdi',
    needs: SEP | DOLLAR | SLASH | PAREN | DASH | BRACE | SPACE | EQ | QUOTE | TILDE,
    names: true,
    run: (s, _n, mask) => ((mask & SHELL_META) === 0 ? detectCmdiWords(s) : detectCmdi(s)),
  },
  {
    name: 'lfi',
    needs: SLASH | DOT | COLON,
    names: true,
    url: true,
    run: (s, _n, mask) => ((mask & (SLASH | COLON)) === 0 && !LFI_DOT_WORDS.test(s) ? undefined : detectLfi(s)),
  },
  // COLON: a special-scheme URL needs no slash (`http:10.0.0.1`, WHATWG URL Standard)
  { name: 'ssrf', needs: SLASH | COLON, names: true, url: true, run: (s) => detectSsrf(s) },
  { name: 'nosql', needs: DOLLAR | DOT, names: true, run: (s, isName) => detectNosql(s, isName) },
  {
    name: 'ssti',
    needs: BRACE | ANGLE | BRACKET | HASH | DOLLAR,
    names: true,
    // `#set($x=…)`, `$class.inspect(…)`: Velocity directives need no brace or bracket
    run: (s, _n, mask, paranoia) => ((mask & (BRACE | ANGLE | BRACKET)) !== 0 ? detectSsti(s, paranoia) : detectTemplateDirective(s, paranoia)),
  },
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

  private readonly cmdi: boolean;
  private readonly xss: boolean;
  private readonly plainNameCheck: ((s: string) => { rule: string; paranoia: number } | undefined) | undefined;

  constructor(opts: EngineOptions, runners: readonly Runner[], exclusions: readonly CompiledExclusion[]) {
    this.opts = opts;
    this.runners = runners;
    this.exclusions = exclusions;
    this.plainNameCheck = opts.enabled.has('sqli') ? detectSqliName : undefined;
    this.cmdi = runners.some((r) => r.name === 'cmdi');
    this.xss = runners.some((r) => r.name === 'xss');
  }

  /** True once the anomaly score has reached the threshold. */
  get blocked(): boolean {
    return this.score >= this.opts.threshold;
  }

  /**
   * Inspects one raw value (already decoded once by its parser).
   * @param location called only when a detection needs naming (keeps the hot path allocation-free).
   * @param classes the character classes of `raw` ({@link CLASS} bits ORed) when the caller already
   *   has them (the JSON parser computes them while validating a string); absent or negative: computed here.
   * @returns true when scanning can stop (threshold reached in block mode, or `maxHits` reached).
   */
  inspect(raw: string, isName: boolean, location: () => string, classes?: number): boolean {
    if (raw.length === 0) return false;
    this.values++;
    // one pass over the raw value; normalising and lower-casing only copy when they change something
    let mask = classes !== undefined && classes >= 0 ? classes : classesOf(raw);
    let s = raw;
    if ((mask & NORM) !== 0) {
      s = normalize(raw);
      mask = classesOf(s) & ~(NORM | UPPER);
    } else if ((mask & UPPER) !== 0) {
      s = raw.toLowerCase();
      mask &= ~UPPER;
    }
    if (isName && (mask & ~PLAIN_NAME_CLASSES) === 0) {
      // a plain name can still be a catalogue or procedure name sent as a bare parameter
      if (s.length >= 3 && this.plainNameCheck !== undefined && (s.startsWith('information_schema') || isNameWord(s))) {
        const h = this.plainNameCheck(s);
        if (h !== undefined && h.paranoia <= this.opts.paranoia) return this.record('sqli', h.rule, h.paranoia, location(), s, 0);
      }
      // a DOM global as a parameter or cookie name (`window.location=`): script from paranoia level 2
      if (this.opts.paranoia >= 2 && this.xss && (mask & DOT) !== 0 && (s.indexOf('document.') !== -1 || s.indexOf('window.') !== -1)) {
        const h = detectXss(s);
        if (h !== undefined && h.paranoia <= this.opts.paranoia) return this.record('xss', h.rule, h.paranoia, location(), s, h.index);
      }
      return false;
    }
    if (mask === 0 || mask === UNDERSCORE || mask === DOT) {
      if (s.length >= 3 && s.length <= 32 && this.plainNameCheck !== undefined && isNameWord(s)) {
        const h = this.plainNameCheck(s);
        if (h !== undefined && h.paranoia <= this.opts.paranoia) return this.record('sqli', h.rule, h.paranoia, location(), s, 0);
      }
      if (this.opts.paranoia >= 2 && this.plainNameCheck !== undefined) {
        // `xunionselectfrom`: statement keywords glued together (level 2)
        if (s.length >= 11 && s.indexOf('union') !== -1 && /union(?:all|distinct)?select/.test(s))
          return this.record('sqli', 'glued-union-select', 2, location(), s, s.indexOf('union'));
        // `1.e.tables`: MySQL scientific notation glued to a name (CRS 942560)
        if (mask === DOT && s.indexOf('.e.') !== -1 && /\d\.e\.[a-z_]{2,}/.test(s))
          return this.record('sqli', 'scientific-notation', 2, location(), s, s.indexOf('.e.'));
      }
      if (mask === 0) {
        // a bare reconnaissance command (`visudo`): paranoia level 2
        const h = this.cmdi && this.opts.paranoia >= 2 ? detectCmdiBareWord(s) : undefined;
        return h !== undefined && this.record('cmdi', h.rule, h.paranoia, location(), s, 0);
      }
    }
    // prose: one combined pattern decides whether any detector but the command-line check can match
    if ((mask & ~PROSE_CLASSES) === 0 && !proseTrigger(s, mask)) {
      if (s.length <= 32 && this.plainNameCheck !== undefined && isNameWord(s)) {
        const h = this.plainNameCheck(s);
        if (h !== undefined && h.paranoia <= this.opts.paranoia) return this.record('sqli', h.rule, h.paranoia, location(), s, 0);
      }
      if (this.cmdi && (mask & (SPACE | DASH)) !== 0) {
        const h = detectCmdiWords(s);
        if (h !== undefined && h.paranoia <= this.opts.paranoia) return this.record('cmdi', h.rule, h.paranoia, location(), s, h.index);
      }
      return false;
    }
    // an absolute http(s) URL with nothing but URL characters: SQL, shell and markup all need characters
    // it does not have, so only the URL detectors (SSRF, traversal) run
    const urlOnly = (mask & ~URL_CLASSES) === 0 && (mask & COLON) !== 0 && (s.startsWith('https://') || s.startsWith('http://'));
    for (const r of this.runners) {
      if ((mask & r.needs) === 0 || (isName && !r.names) || (urlOnly && !r.url)) continue;
      const h = r.run(s, isName, mask, this.opts.paranoia);
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
