/**
 * SQL injection detection by tokenising the input into a short fingerprint of token classes and
 * matching the fingerprint against injection shapes: the approach made known by libinjection
 * (Nick Galbreath, 2012); this tokeniser, its classes and its shapes are our own.
 *
 * The input is tokenised three times, as libinjection does: as it is (numeric context), and as if it
 * continued a single- or a double-quoted SQL string (the attacker's quote closes it). One pass per
 * context, each linear in the input; the fingerprint keeps the first {@link MAX_TOKENS} tokens.
 * OWASP WSTG-INPV-05; CWE-89.
 */

/** Token classes (one character each, libinjection style). */
// s string  1 number  n bareword  k keyword  U union-like  E statement  f function call
// & logic (and/or/xor/&&/||)  o operator  v variable (@x, @@x)  B order/group by, limit, having
// ( ) , ;  c comment (kept only when it ends the input)

const WORDS = new Map<string, string>();
for (const w of ['and', 'or', 'xor']) WORDS.set(w, '&');
for (const w of ['like', 'rlike', 'regexp', 'is', 'not', 'between', 'div', 'mod', 'sounds', 'glob', 'collate', 'escape']) WORDS.set(w, 'o');
for (const w of ['union', 'intersect', 'except']) WORDS.set(w, 'U');
for (const w of [
  'select', 'insert', 'update', 'delete', 'drop', 'create', 'alter', 'truncate', 'exec', 'execute', 'declare', 'shutdown',
  'grant', 'revoke', 'waitfor', 'handler', 'rename', 'call', 'load', 'prepare', 'deallocate', 'merge',
]) WORDS.set(w, 'E');
for (const w of [
  'from', 'where', 'into', 'values', 'table', 'join', 'case', 'when', 'then', 'else', 'end', 'as', 'distinct', 'all',
  'procedure', 'delay', 'outfile', 'dumpfile', 'set', 'in', 'exists', 'top', 'database', 'column', 'schema', 'using',
  'offset', 'asc', 'desc', 'inner', 'outer', 'left', 'cross', 'natural', 'begin', 'declare', 'cast', 'convert', 'char',
]) if (!WORDS.has(w)) WORDS.set(w, 'k');
for (const w of ['having', 'limit']) WORDS.set(w, 'B');
for (const w of ['null', 'true', 'false']) WORDS.set(w, '1');

/** Functions whose call is itself an attack signature (time delays, file access, error-based extraction). */
const STRONG_FUNCTIONS = new Set([
  'sleep', 'benchmark', 'pg_sleep', 'load_file', 'extractvalue', 'updatexml', 'xp_cmdshell', 'sys_eval', 'sys_exec',
  'name_const', 'dbms_pipe.receive_message', 'utl_inaddr.get_host_name', 'utl_http.request', 'dbms_lock.sleep',
  'randomblob', 'geometrycollection', 'multipoint', 'polygon', 'linestring', 'multilinestring', 'exp', 'json_keys',
  'group_concat', 'concat_ws', 'information_schema', 'version', 'database', 'user', 'current_user', 'system_user',
  'session_user', 'schema', 'ascii', 'substring', 'substr', 'mid', 'ord', 'hex', 'unhex', 'char', 'chr', 'concat',
  'if', 'iif', 'ifnull', 'nullif', 'coalesce', 'count', 'length', 'len', 'md5', 'sha1', 'cast', 'convert', 'elt',
  'make_set', 'export_set', 'row_count', 'found_rows', 'last_insert_id', 'connection_id', 'charset', 'collation',
  'pg_read_file', 'lo_import', 'openrowset', 'opendatasource', 'db_name', 'host_name', 'suser_name', 'is_srvrolemember',
]);
/** Of {@link STRONG_FUNCTIONS}, the ones that are attacks even on their own (no surrounding SQL). */
const ATTACK_FUNCTIONS = new Set([
  'sleep', 'benchmark', 'pg_sleep', 'load_file', 'extractvalue', 'updatexml', 'xp_cmdshell', 'sys_eval', 'sys_exec',
  'name_const', 'dbms_pipe.receive_message', 'utl_inaddr.get_host_name', 'utl_http.request', 'dbms_lock.sleep',
  'pg_read_file', 'lo_import', 'openrowset', 'opendatasource', 'is_srvrolemember',
]);
/** Names of system catalogues: referring to them is reconnaissance (CRS 942140). */
const CATALOGUES = ['information_schema', 'mysql.user', 'sysobjects', 'syscolumns', 'sys.tables', 'pg_catalog', 'pg_shadow', 'sqlite_master', 'msysobjects', 'all_tables', 'user_tables', 'xp_cmdshell', '@@version', 'dba_users', 'sys.sql_logins', 'master..sysdatabases'];

/** Maximum tokens kept in a fingerprint. */
export const MAX_TOKENS = 10;

interface Fingerprint {
  fp: string;
  /** A call to a function in {@link STRONG_FUNCTIONS}. */
  strong: boolean;
  /** A call to a function in {@link ATTACK_FUNCTIONS}. */
  attackFn: boolean;
  /** `@@name` system variable. */
  sysvar: boolean;
  /** A call to any function in {@link SQL_FUNCTIONS}. */
  sqlFn: boolean;
}

/** SQL functions common to MySQL, PostgreSQL, SQL Server, Oracle and SQLite (paranoia 2 evidence). */
const SQL_FUNCTIONS = new Set(
  ('abs acos ascii asin atan atan2 avg bin bit_length ceil ceiling char char_length character_length charindex chr coalesce ' +
    'concat concat_ws conv convert cos cot count crc32 curdate current_date current_time current_timestamp curtime database ' +
    'date_add date_format date_sub datediff day dayname decode degrees elt encode exp export_set extract extractvalue field ' +
    'find_in_set floor format found_rows from_base64 group_concat hex ifnull iif inet_aton insert instr isnull last_insert_id ' +
    'lcase least left length ln load_file locate log log10 log2 lower lpad ltrim make_set md5 mid now nullif oct octet_length ' +
    'ord overlay pg_sleep pi position pow power quote radians rand random randomblob repeat replace reverse right round rpad ' +
    'rtrim schema sha sha1 sha2 sign sin sleep soundex space sqrt str_to_date strcmp subdate substr substring substring_index ' +
    'sum sysdate tan to_base64 to_char trim truncate ucase unhex updatexml upper user utl_http version waitfor benchmark ' +
    'json_extract json_keys xmltype dbms_xmlgen db_name host_name suser_sname is_srvrolemember openrowset xp_cmdshell').split(' '),
);

function isWordChar(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 95 || c === 36 || c === 46 || (c >= 65 && c <= 90) || c > 127;
}

function isSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13) || c === 160 || c === 43; /* '+' left from form encoding counts as space too */
}

/**
 * Tokenises `s` (already lower-cased) into a fingerprint. `quote` (`'`, `"` or `''`) says the input
 * starts inside a string closed by that quote.
 */
export function fingerprint(s: string, quote: '' | "'" | '"'): Fingerprint {
  let fp = '';
  let sqlFn = false;
  let strong = false;
  let attackFn = false;
  let sysvar = false;
  const n = s.length;
  let i = 0;
  if (quote !== '') {
    const q = quote.charCodeAt(0);
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c === 92) i += 2;
      else if (c === q) {
        if (s.charCodeAt(i + 1) === q) i += 2;
        else break;
      } else i++;
    }
    if (i >= n) return { fp: 's', strong, attackFn, sysvar, sqlFn };
    fp = 's';
    i++;
  }
  let inVersioned = false;
  while (i < n && fp.length < MAX_TOKENS) {
    const c = s.charCodeAt(i);
    if (isSpace(c)) {
      i++;
      continue;
    }
    // strings
    if (c === 39 || c === 34) {
      let j = i + 1;
      while (j < n) {
        const d = s.charCodeAt(j);
        if (d === 92) j += 2;
        else if (d === c) {
          if (s.charCodeAt(j + 1) === c) j += 2;
          else break;
        } else j++;
      }
      fp += 's';
      i = j + 1;
      continue;
    }
    if (c === 96 /* ` */) {
      const j = s.indexOf('`', i + 1);
      fp += 'n';
      i = j === -1 ? n : j + 1;
      continue;
    }
    // comments
    if (c === 35 /* # */ || (c === 45 && s.charCodeAt(i + 1) === 45)) {
      const j = s.indexOf('\n', i);
      fp += 'c';
      i = j === -1 ? n : j + 1;
      continue;
    }
    if (c === 47 && s.charCodeAt(i + 1) === 42 /* slash-star */) {
      if (s.charCodeAt(i + 2) === 33 /* ! MySQL versioned comment: its body is code */) {
        i += 3;
        while (i < n && s.charCodeAt(i) >= 48 && s.charCodeAt(i) <= 57) i++;
        inVersioned = true;
        continue;
      }
      const j = s.indexOf('*/', i + 2);
      fp += 'c';
      i = j === -1 ? n : j + 2;
      continue;
    }
    if (c === 42 && s.charCodeAt(i + 1) === 47 && inVersioned) {
      inVersioned = false;
      i += 2;
      continue;
    }
    // numbers
    if ((c >= 48 && c <= 57) || (c === 46 && s.charCodeAt(i + 1) >= 48 && s.charCodeAt(i + 1) <= 57)) {
      let j = i + 1;
      while (j < n && isWordChar(s.charCodeAt(j))) j++;
      fp += '1';
      i = j;
      continue;
    }
    // variables
    if (c === 64 /* @ */) {
      let j = i + 1;
      if (s.charCodeAt(j) === 64) {
        j++;
        sysvar = true;
      }
      while (j < n && isWordChar(s.charCodeAt(j))) j++;
      fp += 'v';
      i = j;
      continue;
    }
    // words
    if (isWordChar(c)) {
      let j = i + 1;
      while (j < n && isWordChar(s.charCodeAt(j))) j++;
      let word = s.slice(i, j);
      if (word.charCodeAt(0) === 46) word = word.replace(/^\.+/, '');
      let k = j;
      while (k < n && isSpace(s.charCodeAt(k))) k++;
      // comments between a function name and its parenthesis still make a call
      while (s.charCodeAt(k) === 47 && s.charCodeAt(k + 1) === 42) {
        const e = s.indexOf('*/', k + 2);
        k = e === -1 ? n : e + 2;
        while (k < n && isSpace(s.charCodeAt(k))) k++;
      }
      const cls = WORDS.get(word);
      if (s.charCodeAt(k) === 40 /* ( */ && (cls === undefined || cls === 'k' || cls === '1')) {
        fp += 'f';
        if (STRONG_FUNCTIONS.has(word)) strong = true;
        if (ATTACK_FUNCTIONS.has(word)) attackFn = true;
        if (SQL_FUNCTIONS.has(word)) sqlFn = true;
      } else if ((word === 'order' || word === 'group') && s.startsWith('by', k)) {
        fp += 'B';
        j = k + 2;
      } else if (cls === 'U') {
        fp += 'U';
        // union all / union distinct fold into one token
        if (s.startsWith('all', k) || s.startsWith('distinct', k)) j = s.indexOf(' ', k) === -1 ? n : k + (s.startsWith('all', k) ? 3 : 8);
      } else fp += cls ?? 'n';
      i = j;
      continue;
    }
    // operators
    if (c === 124 && s.charCodeAt(i + 1) === 124) {
      fp += '&';
      i += 2;
      continue;
    }
    if (c === 38 && s.charCodeAt(i + 1) === 38) {
      fp += '&';
      i += 2;
      continue;
    }
    if (c === 40 || c === 41 || c === 44 || c === 59) {
      fp += String.fromCharCode(c);
      i++;
      continue;
    }
    if (c === 61 || c === 60 || c === 62 || c === 33 || c === 43 || c === 45 || c === 42 || c === 47 || c === 37 || c === 94 || c === 124 || c === 38 || c === 126 || c === 58) {
      let j = i + 1;
      while (j < n && j - i < 3) {
        const d = s.charCodeAt(j);
        if (d === 61 || d === 60 || d === 62 || d === 33 || d === 124 || d === 38) j++;
        else break;
      }
      // a lone unary sign before a number folds into the number
      if ((c === 45 || c === 43) && j === i + 1 && (fp === '' || /[&o(,=]$/.test(fp)) && s.charCodeAt(j) >= 48 && s.charCodeAt(j) <= 57) {
        i = j;
        continue;
      }
      fp += 'o';
      i = j;
      continue;
    }
    i++; // other punctuation is ignored
  }
  // comments in the middle are whitespace to the database: only a trailing one matters
  if (fp.indexOf('c') !== -1) {
    const trailing = fp.endsWith('c');
    fp = fp.replaceAll('c', '');
    if (trailing) fp += 'c';
  }
  return { fp, strong, attackFn, sysvar, sqlFn };
}

/**
 * Injection shapes over a fingerprint. Each is anchored and free of nested quantifiers, and
 * fingerprints are at most {@link MAX_TOKENS} characters long, so matching costs constant time.
 */
const QUOTED_SHAPES: readonly RegExp[] = [
  /^s[)]*&/, // ' or 1=1   ') or ('a'='a
  /^s[)]*o[s1nfv(]/, // '='  '||'  '+sleep(5)+'
  /^s[)]*U/, // ' union select
  /^s[)]*;[EkBn]/, // '; drop table
  /^s[)]*;?c/, // admin'--   admin';#
  /^s[)]*B/, // ' order by 1
  /^s[)]*k[ns1(]/, // ' from x   ' into outfile
];

const PLAIN_SHAPES: readonly RegExp[] = [
  /^[1nv)]*[1nsv]&[(]*[1sfv(]/, // 1 or 1=1   1 and sleep(5)   1 or (select
  /^[1nv]+[)]*&[1sfv(]/, // 1) or 1
  /^&[(]*[1sv][)]*o[(]*[1sv]/, // or 1=1
  /^&[(]*f[(]/, // and sleep(
  /U[(]*E/, // union select
  /;[(]*E/, // ; drop table
  /^[1nsv)]+;c?$/, // 1;--
  /^[(]*E[(]*[ov1f(]/, // select * ; select version()
  /^[(]*E[kn]k/, // select name from
  /^[(]*Ek[n1v(]/, // delete from x ; drop table x ; insert into t
  /^[1nsv)][)]*B[1n]/, // 1 order by 1
  /^[1s][)]*[1n]?c$/, // 1--  1/*
  /^[1nv][)]*o[(]*[1vs]&/, // 1=1 or
  /^[1sv][)]*o[(]*f[(]/, // 1+sleep(5)
  /^[1n][)]*[&o][(]*E/, // 1 and (select
];

/** A detected SQL injection. */
export interface SqliHit {
  /** Shape that matched, e.g. `s&` context `'`. */
  rule: string;
  fingerprint: string;
  /** CRS-style paranoia level at which the hit counts (1 = always). */
  paranoia: number;
}

function hasAny(s: string, chars: string): boolean {
  for (let i = 0; i < chars.length; i++) if (s.indexOf(chars[i] as string) !== -1) return true;
  return false;
}

const KEYWORD_HINT = /\b(?:union|select|sleep|benchmark|waitfor|insert|delete|drop|update|exec|order|group|having|and|or|xor|like|from|rlike|regexp|declare|create|alter|shutdown)\b/;

/**
 * Detects SQL injection in a normalised (lower-case, decoded) value.
 * @returns the first matching shape, or `undefined`.
 */
export function detectSqli(s: string): SqliHit | undefined {
  if (s.length < 2) return undefined;
  for (const cat of CATALOGUES) if (s.includes(cat)) return { rule: `catalogue:${cat}`, fingerprint: '', paranoia: 1 };
  const special = hasAny(s, "'\"`;()=<>#|&@*/-");
  if (!special && !KEYWORD_HINT.test(s)) return undefined;
  const plain = fingerprint(s, '');
  if (plain.attackFn) return { rule: 'attack-function', fingerprint: plain.fp, paranoia: 1 };
  for (const re of PLAIN_SHAPES) if (re.test(plain.fp)) return { rule: `plain:${re.source}`, fingerprint: plain.fp, paranoia: 1 };
  if (plain.sysvar) return { rule: 'system-variable', fingerprint: plain.fp, paranoia: 1 };
  for (const q of ["'", '"'] as const) {
    if (s.indexOf(q) === -1) continue;
    const r = fingerprint(s, q);
    if (r.attackFn) return { rule: 'attack-function', fingerprint: r.fp, paranoia: 1 };
    for (const re of QUOTED_SHAPES) if (re.test(r.fp)) return { rule: `${q}:${re.source}`, fingerprint: r.fp, paranoia: 1 };
  }
  // weaker evidence, counted from paranoia level 2: a call to a database function next to SQL punctuation
  if (plain.strong && /[&o,;(]f|^f\(.*[o&,]/.test(plain.fp)) return { rule: 'database-function', fingerprint: plain.fp, paranoia: 2 };
  // paranoia 2: any call of a known SQL function (`ord(`, `rtrim(`, `pg_sleep(`) in a short value
  if (plain.sqlFn && s.length <= 256) return { rule: 'sql-function-call', fingerprint: plain.fp, paranoia: 2 };
  return undefined;
}
