/**
 * SQL injection detection by tokenising the input into a stream of token classes and matching it
 * against injection shapes: the approach made known by libinjection (Nick Galbreath, 2012) for the
 * fingerprint part, plus token-sequence evidence in the spirit of the OWASP CRS 942xxx rules
 * (statement keyword pairs, stacked queries, comment obfuscation, database functions and
 * catalogues, PostgreSQL casts and JSON operators, hex literals). The tokeniser, its classes, the
 * shapes and the tables are our own.
 *
 * The input is tokenised as it is (numeric context), as if it continued a single- or a
 * double-quoted SQL string (the attacker's quote closes it), and, for `name=value` shaped input,
 * from after the first `=`. Each pass is linear in the input; at most {@link MAX_STREAM} tokens are
 * kept, and the evidence rules walk that bounded stream, so matching costs constant time.
 * OWASP WSTG-INPV-05; CWE-89.
 */

/** Token classes (one character each, libinjection style). */
// s string  1 number  n bareword  k keyword  U union-like  E statement  f function call
// & logic (and/or/xor/&&/||)  o operator  v variable (@x, @@x)  B order/group by, limit, having
// ( ) , ;  c comment (kept only when it ends the input)

const WORDS = new Map<string, string>();
for (const w of ['and', 'or', 'xor']) WORDS.set(w, '&');
for (const w of ['like', 'rlike', 'regexp', 'is', 'not', 'between', 'div', 'mod', 'sounds', 'glob', 'collate', 'escape', 'ilike', 'similar', 'notnull'])
  WORDS.set(w, 'o');
for (const w of ['union', 'intersect', 'except', 'minus']) WORDS.set(w, 'U');
for (const w of [
  'select',
  'insert',
  'update',
  'delete',
  'drop',
  'create',
  'alter',
  'truncate',
  'exec',
  'execute',
  'declare',
  'shutdown',
  'grant',
  'revoke',
  'waitfor',
  'handler',
  'rename',
  'call',
  'load',
  'prepare',
  'deallocate',
  'merge',
  'upsert',
])
  WORDS.set(w, 'E');
for (const w of [
  'from',
  'where',
  'into',
  'values',
  'table',
  'join',
  'case',
  'when',
  'then',
  'else',
  'end',
  'as',
  'distinct',
  'all',
  'procedure',
  'delay',
  'outfile',
  'dumpfile',
  'set',
  'in',
  'exists',
  'top',
  'database',
  'column',
  'schema',
  'using',
  'offset',
  'asc',
  'desc',
  'inner',
  'outer',
  'left',
  'cross',
  'natural',
  'begin',
  'cast',
  'convert',
  'char',
  'returns',
  'function',
  'trigger',
  'view',
  'index',
  'user',
  'infile',
  'data',
  'immediate',
  'distinctrow',
  'straight_join',
])
  if (!WORDS.has(w)) WORDS.set(w, 'k');
for (const w of ['having', 'limit']) WORDS.set(w, 'B');
for (const w of ['null', 'true', 'false']) WORDS.set(w, '1');

/** Functions whose call is an attack on its own: time delays, file and network access, error-based extraction. */
const ATTACK_FUNCTIONS = new Set([
  'sleep',
  'benchmark',
  'pg_sleep',
  'load_file',
  'extractvalue',
  'updatexml',
  'xp_cmdshell',
  'sys_eval',
  'sys_exec',
  'name_const',
  'dbms_pipe.receive_message',
  'utl_inaddr.get_host_name',
  'utl_http.request',
  'dbms_lock.sleep',
  'pg_read_file',
  'pg_ls_dir',
  'lo_import',
  'lo_export',
  'lo_get',
  'openrowset',
  'opendatasource',
  'is_srvrolemember',
  'xp_dirtree',
  'xp_fileexist',
  'xp_regread',
  'sp_oacreate',
  'sp_executesql',
  'sp_makewebtask',
  'dbms_xmlgen.getxml',
  'ctxsys.drithsx.sn',
  'dbms_java.runjava',
  'utl_file.fopen',
  'sp_password',
  'pg_read_binary_file',
  'openquery',
  'randomblob',
]);
/** Of {@link ATTACK_FUNCTIONS}, names that are attacks even as a bare word (no call). */
const ATTACK_WORDS = new Set([
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
  'utl_http.request',
  'dbms_pipe.receive_message',
  'utl_inaddr.get_host_name',
  'dbms_lock.sleep',
  'pg_read_file',
  'lo_import',
  'is_srvrolemember',
  'msdasql',
  'sqloledb',
]);

/**
 * SQL functions that have no English or common programming meaning: a call (`concat(`,
 * `substr (`) is evidence on its own (compare CRS 942151, paranoia level 1).
 */
const SQL_SPECIFIC = new Set(
  (
    'concat concat_ws group_concat substr substring substring_index unhex hex md5 sha1 sha2 strcmp rtrim ltrim xmltype ' +
    'current_user session_user system_user db_name database char_length character_length ifnull isnull nullif coalesce ascii ord chr ' +
    'mid instr locate lpad rpad ucase lcase sysdate curdate curtime utc_date utc_time utc_timestamp json_extract json_keys ' +
    'json_valid json_object json_array json_contains json_search json_unquote extractvalue updatexml conv crc32 elt make_set export_set ' +
    'find_in_set bit_length octet_length from_base64 to_base64 inet_aton inet_ntoa charset collation row_count found_rows last_insert_id ' +
    'connection_id schema_name table_name column_name object_id object_name suser_name suser_sname user_name host_name ' +
    'has_dbaccess is_member is_srvrolemember fn_varbintohexstr to_char to_number to_date nvl nvl2 decode regexp_substr regexp_like ' +
    'regexp_replace regexp_instr dbms_xmlgen xmlelement xmlagg xmlquery listagg string_agg array_agg pg_typeof current_database ' +
    'current_schema current_setting version_comment quote_ident quote_literal quote_nullable unistr starts_with compress uncompress ' +
    'uncompressed_length aes_encrypt aes_decrypt des_encrypt des_decrypt encrypt old_password soundex difference patindex charindex ' +
    'stuff replicate datalength sqlite_version sqlite_source_id sqlite_compileoption_get sqlite_compileoption_used load_extension zeroblob typeof printf randomblob json_each json_tree geometrycollection ' +
    'multipoint multilinestring multipolygon linestring polygon st_latfromgeohash st_longfromgeohash st_pointfromgeohash gtid_subset ' +
    'exp pow power rand random trim sin cos tan cot asin acos atan atan2 sqrt ceil ceiling floor abs sign ln log log2 log10 ' +
    'radians degrees truncate round mod pi now hour minute week weekday dayofweek dayofmonth dayofyear datediff date_add date_sub ' +
    'date_format str_to_date timestampdiff unix_timestamp from_unixtime sec_to_time time_to_sec makedate maketime ' +
    'cast convert encode upper lower length reverse repeat replace space strpos position overlay initcap bin oct'
  ).split(' '),
);
/** Of {@link SQL_SPECIFIC}, names that are also ordinary (maths, text, programming) words: counted only without whitespace before `(`. */
const CODE_WORDS = new Set(
  'exp pow power rand random trim sin cos tan cot asin acos atan atan2 sqrt ceil ceiling floor abs sign ln log log2 log10 radians degrees truncate round mod pi now hour minute week weekday cast convert encode decode upper lower length reverse repeat replace space position overlay compress uncompress typeof printf encrypt difference stuff bin oct difference starts_with'.split(
    ' ',
  ),
);
/** Function names from CRS 942410's domain that are common words everywhere: a call counts from paranoia level 2. */
const COMMON_FUNCTIONS = new Set(
  'count max min sum avg left right time date day month year quarter values user version if iif in char field format insert default schema'.split(' '),
);

/** Of {@link COMMON_FUNCTIONS}, those SQL calls without arguments (MySQL `USER()`, `VERSION()`, `SCHEMA()`). */
const NILADIC = new Set(['user', 'version', 'schema']);

/** Names of system catalogues and sample databases: referring to them is reconnaissance (CRS 942140). */
const CATALOGUES = [
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
  'sqlite_temp_master',
  'msysobjects',
  'msysaccessobjects',
  'msysqueries',
  'msysrelationships',
  'msysaces',
  'all_tables',
  'all_tab_columns',
  'user_tables',
  'user_tab_columns',
  'dba_users',
  'dba_tables',
  'sys.sql_logins',
  'master..sysdatabases',
  'master.dbo.',
  'sysdatabases',
  'sysusers',
  'syslogins',
  'sysprocesses',
  'v$version',
  'v$instance',
  'performance_schema',
  '@@version',
  'xp_cmdshell',
];
/** Sample and system database names: weaker evidence, counted from paranoia level 2 when standing alone. */
const CATALOGUE_WORDS = new Set(['tempdb', 'northwind', 'pubs', 'msdb', 'sakila', 'adventureworks']);
/** Integer-overflow and float-parsing denial-of-service magic numbers (CRS 942220; PHP bug #53632). */
const MAGIC_NUMBERS = new Set([
  '2147483648',
  '-2147483649',
  '4294967295',
  '4294967296',
  '9223372036854775807',
  '9223372036854775808',
  '-9223372036854775809',
  '18446744073709551615',
  '18446744073709551616',
  '2.2250738585072011e-308',
  '2.2250738585072012e-308',
  '0.1e-309',
]);

/** Statement keywords that, after `;` or a quote break-out, start a second statement (stacked queries). */
const STACKABLE = new Set([
  'select',
  'insert',
  'update',
  'delete',
  'drop',
  'create',
  'alter',
  'truncate',
  'exec',
  'execute',
  'declare',
  'shutdown',
  'waitfor',
  'replace',
  'set',
  'grant',
  'revoke',
  'rename',
  'call',
  'load',
  'handler',
  'merge',
  'begin',
  'if',
  'use',
  'backup',
  'restore',
  'kill',
  'dbcc',
]);
/** Object kinds after DDL verbs (`drop table`, `create function`). */
const DDL_OBJECTS = new Set([
  'table',
  'database',
  'schema',
  'procedure',
  'function',
  'view',
  'index',
  'user',
  'trigger',
  'column',
  'login',
  'role',
  'event',
  'tablespace',
  'sequence',
  'type',
  'proc',
]);
/** PostgreSQL cast targets (`::int`, `::text`). */
const CAST_TYPES = new Set([
  'int',
  'int2',
  'int4',
  'int8',
  'integer',
  'bigint',
  'smallint',
  'text',
  'varchar',
  'char',
  'bpchar',
  'numeric',
  'decimal',
  'real',
  'float',
  'float4',
  'float8',
  'double',
  'bool',
  'boolean',
  'json',
  'jsonb',
  'bytea',
  'regclass',
  'regproc',
  'oid',
  'xml',
  'date',
  'timestamp',
  'money',
  'inet',
  'uuid',
  'name',
  'tsvector',
  'interval',
]);

/** Maximum tokens in a fingerprint (the libinjection-style shapes look at these). */
export const MAX_TOKENS = 10;
/** Maximum tokens kept for the sequence rules. */
export const MAX_STREAM = 64;

/** The token stream of one tokenisation pass. */
export interface Fingerprint {
  /** The first {@link MAX_TOKENS} token classes (mid-stream comments dropped). */
  fp: string;
  /** Token classes of up to {@link MAX_STREAM} tokens (comments kept as `c`). */
  types: string;
  /** Per token of `types`: the lower-case word (words, operators), or the first characters of a string's content. */
  words: string[];
  /** Per token of `types`: whitespace or a comment separated it from the previous token. */
  spaced: boolean[];
  /** A call of an {@link ATTACK_FUNCTIONS} function anywhere in the input (not only in the kept tokens). */
  attackFn: string | undefined;
  /** `@@name` system variable. */
  sysvar: boolean;
  /** A MySQL versioned or optimizer comment (`/*!50000`, `/*+`). */
  versioned: boolean;
}

function isWordChar(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 95 || c === 36 || c === 46 || (c >= 65 && c <= 90) || c > 127;
}

function isSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13) || c === 160 || c === 43; /* '+' left from form encoding counts as space too */
}

function isOpChar(c: number): boolean {
  return (
    c === 61 ||
    c === 60 ||
    c === 62 ||
    c === 33 ||
    c === 43 ||
    c === 45 ||
    c === 42 ||
    c === 47 ||
    c === 37 ||
    c === 94 ||
    c === 124 ||
    c === 38 ||
    c === 126 ||
    c === 58 ||
    c === 63
  );
}

/**
 * Tokenises `s` (already lower-cased). `quote` (`'` or `"`) says the input starts inside a string
 * closed by that quote. Linear in `s`; tokens beyond {@link MAX_STREAM} are only scanned for
 * attack-function calls when `full` is true. `backslash` false treats `\` as an ordinary character
 * (a backslash the application strips or doubles does not escape the attacker's quote).
 */
export function fingerprint(s: string, quote: '' | "'" | '"' | '`', full = false, backslash = true): Fingerprint {
  let types = '';
  const words: string[] = [];
  const spaced: boolean[] = [];
  let attackFn: string | undefined;
  let sysvar = false;
  let versioned = false;
  const n = s.length;
  let i = 0;
  let gap = false;
  const push = (t: string, w: string): void => {
    if (types.length < MAX_STREAM) {
      types += t;
      words.push(w);
      spaced.push(gap);
    }
    gap = false;
  };
  if (quote !== '') {
    const q = quote.charCodeAt(0);
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c === 92 && backslash) i += 2;
      else if (c === q) {
        if (s.charCodeAt(i + 1) === q) i += 2;
        else break;
      } else i++;
    }
    const cls = quote === '`' ? 'n' : 's';
    if (i >= n) return { fp: cls, types: cls, words: [quote === '`' ? '`' : ''], spaced: [false], attackFn, sysvar, versioned };
    push(cls, quote === '`' ? '`' : '');
    i++;
  }
  let inVersioned = false;
  while (i < n && (types.length < MAX_STREAM || (full && attackFn === undefined))) {
    const c = s.charCodeAt(i);
    if (isSpace(c)) {
      gap = true;
      i++;
      continue;
    }
    // strings
    if (c === 39 || c === 34) {
      let j = i + 1;
      while (j < n) {
        const d = s.charCodeAt(j);
        if (d === 92 && backslash) j += 2;
        else if (d === c) {
          if (s.charCodeAt(j + 1) === c) j += 2;
          else break;
        } else j++;
      }
      push('s', s.slice(i + 1, Math.min(j, i + 25)));
      i = j + 1;
      continue;
    }
    if (c === 96 /* ` */) {
      const j = s.indexOf('`', i + 1);
      push('n', '`');
      i = j === -1 ? n : j + 1;
      continue;
    }
    // comments
    if (c === 35 /* # */ || (c === 45 && s.charCodeAt(i + 1) === 45)) {
      const j = s.indexOf('\n', i);
      push('c', c === 35 ? '#' : '--');
      i = j === -1 ? n : j + 1;
      gap = true;
      continue;
    }
    if (c === 47 && s.charCodeAt(i + 1) === 42 /* slash-star */) {
      const d = s.charCodeAt(i + 2);
      if (d === 33 /* ! MySQL versioned comment: its body is code */ || (d === 43 && s.charCodeAt(i + 3) !== 32) /* optimizer hint */) {
        i += 3;
        if (s.charCodeAt(i) === 33) i++;
        while (i < n && s.charCodeAt(i) >= 48 && s.charCodeAt(i) <= 57) i++;
        inVersioned = true;
        versioned = true;
        gap = true;
        continue;
      }
      const j = s.indexOf('*/', i + 2);
      push('c', '/*');
      i = j === -1 ? n : j + 2;
      gap = true;
      continue;
    }
    if (c === 42 && s.charCodeAt(i + 1) === 47 && inVersioned) {
      inVersioned = false;
      i += 2;
      gap = true;
      continue;
    }
    // numbers (also 0x hex literals and MySQL's `1.e(` scientific-notation trick)
    if ((c >= 48 && c <= 57) || (c === 46 && s.charCodeAt(i + 1) >= 48 && s.charCodeAt(i + 1) <= 57)) {
      let j = i + 1;
      while (j < n && isWordChar(s.charCodeAt(j))) j++;
      push('1', s.slice(i, Math.min(j, i + 24)));
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
      push('v', s.slice(i, Math.min(j, i + 24)));
      i = j;
      continue;
    }
    // words
    if (isWordChar(c)) {
      let j = i + 1;
      while (j < n && isWordChar(s.charCodeAt(j))) j++;
      let word = s.slice(i, j);
      if (word.charCodeAt(0) === 46) word = word.replace(/^\.+/, '');
      // `select.1`, `union.select`: a dot after a keyword ends the keyword
      const dot = word.indexOf('.');
      if (dot > 0) {
        const head = WORDS.get(word.slice(0, dot));
        if (head === 'E' || head === 'U' || head === 'k' || head === '&') {
          j = i + dot + 1;
          word = word.slice(0, dot);
        }
      }
      // x'414243' / b'0101' literals
      if ((word === 'x' || word === 'b' || word === 'n' || word === '_binary') && s.charCodeAt(j) === 39) {
        const e = s.indexOf("'", j + 1);
        push('1', `${word}'`);
        i = e === -1 ? n : e + 1;
        continue;
      }
      let k = j;
      let sp = false;
      while (k < n && (isSpace(s.charCodeAt(k)) || s.charCodeAt(k) === 92)) {
        k++;
        sp = true;
      }
      // comments between a function name and its parenthesis still make a call
      while (s.charCodeAt(k) === 47 && s.charCodeAt(k + 1) === 42) {
        const e = s.indexOf('*/', k + 2);
        k = e === -1 ? n : e + 2;
        sp = true;
        while (k < n && isSpace(s.charCodeAt(k))) k++;
      }
      const cls = WORDS.get(word);
      if (s.charCodeAt(k) === 40 /* ( */ && (cls === undefined || cls === 'k' || cls === '1' || word === 'insert' || word === 'replace')) {
        push('f', sp ? `${word} ` : word);
        if (attackFn === undefined && ATTACK_FUNCTIONS.has(word)) attackFn = word;
      } else if ((word === 'order' || word === 'group' || word === 'partition') && s.startsWith('by', k) && !isWordChar(s.charCodeAt(k + 2))) {
        push('B', `${word} by`);
        j = k + 2;
      } else if (cls === 'U') {
        push('U', word);
        // union all / union distinct fold into one token
        for (const w of ['all', 'distinct', 'distinctrow']) {
          if (s.startsWith(w, k) && !isWordChar(s.charCodeAt(k + w.length))) {
            j = k + w.length;
            break;
          }
        }
      } else push(cls ?? 'n', word);
      i = j;
      continue;
    }
    // operators
    if ((c === 124 && s.charCodeAt(i + 1) === 124) || (c === 38 && s.charCodeAt(i + 1) === 38)) {
      push('&', c === 124 ? '||' : '&&');
      i += 2;
      continue;
    }
    if (c === 40 || c === 41 || c === 44 || c === 59) {
      push(String.fromCharCode(c), '');
      i++;
      continue;
    }
    if (c === 58 && s.charCodeAt(i + 1) === 58) {
      push('o', '::');
      i += 2;
      continue;
    }
    if (isOpChar(c)) {
      let j = i + 1;
      while (j < n && j - i < 3) {
        const d = s.charCodeAt(j);
        if (d === 61 || d === 60 || d === 62 || d === 33 || d === 124 || d === 38 || d === 64 || d === 63) j++;
        else break;
      }
      // a lone unary sign before a number folds into the number
      if ((c === 45 || c === 43) && j === i + 1 && (types === '' || /[&o(,=]$/.test(types)) && s.charCodeAt(j) >= 48 && s.charCodeAt(j) <= 57) {
        i = j;
        continue;
      }
      push('o', s.slice(i, j));
      i = j;
      continue;
    }
    i++; // other punctuation is ignored
  }
  // comments in the middle are whitespace to the database: only a trailing one matters
  let fp = types;
  if (fp.indexOf('c') !== -1) {
    const trailing = fp.endsWith('c');
    fp = fp.replaceAll('c', '');
    if (trailing) fp += 'c';
  }
  return { fp: fp.slice(0, MAX_TOKENS), types, words, spaced, attackFn, sysvar, versioned };
}

/**
 * Injection shapes over a fingerprint. Each is anchored and free of nested quantifiers, and
 * fingerprints are at most {@link MAX_TOKENS} characters long, so matching costs constant time.
 */
const SON = /^s[)]*o[s1nfv(]/; // '='  '||'  '+sleep(5)+'
const QUOTED_SHAPES: readonly RegExp[] = [
  /^s[)]*&[(]*[1sfvnEU(]/, // ' or 1=1   ') or ('a'='a   (not `' and = x`)
  SON,
  /^s[)]*U[(]*[E1c]/, // ' union select   (not `9'union all` alone)
  /^s[)]*;[EkBnv]/, // '; drop table   ';@@version
  /^s[)]*;?c/, // admin'--   admin';#
  /^s[)]*;$/, // admin';
  /^s[)]*B/, // ' order by 1
  /^s[)]*k[ns1(]/, // ' from x   ' into outfile
];

const VERB_KEYWORD_SHAPE = /^[(]*Ek[n1v(]/;
const LIMIT_SHAPE = /^[1nsv)][)]*B[1n]/;
/** Index in `f.types` of the first token after token `k` that is no comment. */
function tokenAfter(f: Fingerprint, k: number): number {
  let j = k + 1;
  while (j < f.types.length && f.types.charCodeAt(j) === 99 /* c */) j++;
  return j;
}
/** Keywords a statement verb takes next (`delete from`, `insert into`, `drop table`); verbs not listed take any. */
function verbTakes(verb: string, kw: string): boolean {
  switch (verb) {
    case 'delete':
      return kw === 'from';
    case 'insert':
    case 'replace':
      return kw === 'into';
    case 'drop':
    case 'create':
    case 'alter':
    case 'truncate':
    case 'rename':
      return DDL_OBJECTS.has(kw) || kw === 'table';
    default:
      return true;
  }
}
const PLAIN_SHAPES: readonly RegExp[] = [
  /^[1nv]?[)]*[1nsv]&[(]*[fv(]/, // 1 and sleep(5)   1 or (select
  /^[1nv]?[)]*[1nsv]&[(]*[1sv][)]*o/, // 1 or 1=1   x or 'a'='a
  /^[1nv][)]+&[(]*[1sfv(]/, // 1) or 1
  /^&[(]*[1sv][)]*o[(]*[1svf]/, // or 1=1
  /^&[(]*f[(]/, // and sleep(
  /^&[(]*n[)]*o[(]*[s1v]/, // and name = '
  /^&[(]*[1s][)]*c$/, // or 1#
  /U[(]*E/, // union select
  /;[(]*E/, // ; drop table
  /^[1nsv)]+;c?$/, // 1;--
  VERB_KEYWORD_SHAPE, // delete from x ; drop table x ; insert into t
  LIMIT_SHAPE, // 1 order by 1
  /^[1s][)]*[1n]?c$/, // 1--  1/*
  /^[1nv][)]*o[(]*[1vs]&/, // 1=1 or
  /^[1sv][)]*o[(]*f[(]/, // 1+sleep(5)
  /^[1n][)]*[&o][(]*E/, // 1 and (select
  /^E[n1]+;?c$/, // drop x;--
  /^s,s[)]*o[s1]/, // 'admin', '1'='1
];

/**
 * Barewords the tokeniser leaves as `n` that are SQL syntax all the same (`for update`, `with rollup`,
 * `on duplicate key`, `interval 1 day`): a run of them is no prose.
 */
const SQL_BAREWORDS = new Set(
  'on for with by key duplicate rollup lock share mode primary foreign references default if row rows only first next fetch nowait ignore temporary unsigned signed binary interval day hour minute second month year week microsecond dual nocase over partition window filter within returning conflict nothing do'.split(
    ' ',
  ),
);
/** Barewords that may stand right before a string literal: typed literals and introducers (`date '2024-01-01'`, `interval '1' day`). */
const LITERAL_PREFIXES = new Set(['date', 'time', 'timestamp', 'interval', 'binary', 'n', 'x', 'b', 'e', 'u&']);
/** Symbol operators that can also start an operand (unary signs, negation, placeholders). */
const UNARY_OPERATORS = new Set(['-', '+', '!', '~', '?', '!!']);

/**
 * Whether the token stream after a quote break-out (`f`, a quoted-context stream; token 0 is the
 * closed string) holds a syntax error before the end of the kept tokens or a comment: three
 * barewords in a row (`[set github actions`), a bareword right before a string literal
 * (`/docs/connect">…`, `create a release" endpoint`), two symbol operators where the second cannot
 * start an operand (`](https://`). A continuation the database cannot parse is no working
 * injection, whatever its first tokens look like: prose that happens to contain a quote. Linear in
 * the (bounded) stream.
 */
export function brokenContinuation(f: Fingerprint): boolean {
  const t = f.types;
  const w = f.words;
  let run = 0;
  for (let k = 1; k < t.length; k++) {
    const ty = t.charCodeAt(k);
    // a comment ends what the database reads; after `;` a new statement starts (any grammar)
    if (ty === 99 /* c */ || ty === 59 /* ; */) return false;
    const word = w[k] as string;
    if (ty === 110 /* n */) {
      if (word === '`' || SQL_BAREWORDS.has(word)) run = 0;
      else run = f.spaced[k] === true && run > 0 ? run + 1 : 1;
      if (run >= 3) return true;
      // (a quoted name that ends the value, `'msdasql'`, is a name, not a continuation)
      if (
        t.charCodeAt(k + 1) === 115 /* s */ &&
        word !== '`' &&
        !LITERAL_PREFIXES.has(word) &&
        !word.startsWith('_') &&
        !(k + 2 === t.length && w[k + 1] === '')
      )
        return true;
      continue;
    }
    run = 0;
    if (ty === 111 /* o */ && t.charCodeAt(k + 1) === 111 && /^[^a-z]/.test(word)) {
      const w1 = w[k + 1] as string;
      if (/^[^a-z]/.test(w1) && !UNARY_OPERATORS.has(w1) && word !== '::') return true;
    }
  }
  return false;
}

/**
 * Where the quote at `i` of `s` opens an HTML attribute value inside a start tag
 * (`<a href="/docs/x">`, `<a href='#y'>`) whose value is one token (no whitespace, quotes,
 * parentheses, `;`, `*` or `--`) closed by the same quote and then `>`, `/` or whitespace: the index
 * of the closing quote, else -1. Such a quote is markup, not a break-out: the value is a URL or a
 * name, and a `#` in it would only comment out the rest of the line. Looks back at most 128 characters.
 */
function attributeValueEnd(s: string, i: number): number {
  if (s.charCodeAt(i - 1) !== 61 /* = */) return -1;
  let j = i - 2;
  const nameEnd = j;
  while (j >= 0 && nameEnd - j < 32) {
    const c = s.charCodeAt(j);
    if ((c >= 97 && c <= 122) || c === 45 || c === 58 || c === 95 || (c >= 48 && c <= 57)) j--;
    else break;
  }
  if (j === nameEnd || j < 0 || !isSpace(s.charCodeAt(j))) return -1;
  const stop = Math.max(0, i - 128);
  while (j >= stop && s.charCodeAt(j) !== 60 && s.charCodeAt(j) !== 62) j--;
  if (j < stop || s.charCodeAt(j) !== 60) return -1;
  const t0 = s.charCodeAt(j + 1);
  if (!(t0 >= 97 && t0 <= 122)) return -1;
  const q = s.charCodeAt(i);
  for (let k = i + 1; k < s.length && k - i <= 512; k++) {
    const c = s.charCodeAt(k);
    if (c === q) {
      const after = s.charCodeAt(k + 1);
      return k > i + 1 && (after === 62 || after === 47 || isSpace(after)) ? k : -1;
    }
    if (
      c <= 32 ||
      c === 34 ||
      c === 39 ||
      c === 96 ||
      c === 40 ||
      c === 41 ||
      c === 59 ||
      c === 42 ||
      c === 60 ||
      c === 62 ||
      (c === 45 && s.charCodeAt(k + 1) === 45)
    )
      return -1;
  }
  return -1;
}

/** Attribute values skipped at most before the quoted context is taken from where it stands. */
const MAX_ATTRIBUTE_SKIPS = 16;

/**
 * The quoted-context stream of `s` for quote `q` ({@link fingerprint}), with HTML attribute values
 * ({@link attributeValueEnd}) passed over: the first quote that does not open one is the break-out.
 * `undefined` when every quote of that kind opens an attribute value (markup, no break-out).
 */
function quotedStream(s: string, q: "'" | '"'): Fingerprint | undefined {
  let from = 0;
  for (let n = 0; n < MAX_ATTRIBUTE_SKIPS; n++) {
    const i = s.indexOf(q, from);
    if (i === -1) return from === 0 ? fingerprint(s, q) : undefined;
    if (i > 0 && s.charCodeAt(i - 1) === 92 /* escaped */) break;
    const end = attributeValueEnd(s, i);
    if (end === -1) break;
    from = end + 1;
  }
  return fingerprint(from === 0 ? s : s.slice(from), q);
}

/** Keywords that may follow a closed string: clause words and CASE branches (`' from`, `' into outfile`, `' then`). */
const AFTER_VALUE = new Set(['from', 'into', 'as', 'then', 'else', 'end', 'when', 'where', 'in', 'using', 'asc', 'desc', 'procedure']);

/** A detected SQL injection. */
export interface SqliHit {
  /** Evidence that matched, e.g. `'` + shape, `function:concat`, `stacked-query`. */
  rule: string;
  fingerprint: string;
  /** CRS-style paranoia level at which the hit counts (1 = always). */
  paranoia: number;
}

/** Of two pieces of evidence, the one at the lower paranoia level (the first on a tie). */
function lower<T extends { paranoia: number }>(a: T | undefined, b: T): T {
  return a === undefined || b.paranoia < a.paranoia ? b : a;
}

/** What may follow `is` / `is not`: a truth value. */
const IS_OPERANDS = new Set(['null', 'true', 'false', 'unknown']);
/** What may follow `not` as an infix: a word operator or `in`/`exists`. */
const NOT_OPERATORS = new Set(['like', 'rlike', 'regexp', 'glob', 'ilike', 'similar', 'between', 'in', 'exists', 'null', 'sounds']);

/**
 * Whether the operator at token `ko` of `f` has a right operand the grammar allows: `is [not]`
 * takes null/true/false, `not` a word operator or `in`, any other operator an operand (a literal, a
 * name, a variable, a call, a parenthesis, or a unary sign before one), or nothing when the value
 * ends there (`xor 2 <`, a probe). Prose reads `and version is still available`, `or `x` is
 * required`, `` or `failure`\n* **pending** ``: no comparison.
 */
function comparisonRest(f: Fingerprint, ko: number, next: (k: number) => number): boolean {
  const t = f.types;
  const w = f.words;
  const op = w[ko] as string;
  const kr = next(ko);
  // the value ends at the operator (not the kept window); a `?` that ends it ends a question
  if (kr >= t.length) return t.length < MAX_STREAM && op !== '?';
  const r = w[kr] as string;
  if (op === 'is') return IS_OPERANDS.has(r) || (r === 'not' && IS_OPERANDS.has(w[next(kr)] ?? ''));
  if (op === 'not') return NOT_OPERATORS.has(r);
  // `:` is no SQL operator (`or subtrees: `x``)
  if (op === ':') return false;
  const tr = t[kr] as string;
  // a name that ends with a full stop ends a sentence (`or one-time. <`)
  if (tr === 'n' && r.endsWith('.')) return false;
  if (tr === 'o' && UNARY_OPERATORS.has(r)) return /[1snvf(]/.test(t[next(kr)] ?? '');
  if (!/[1snvf(]/.test(tr)) return false;
  const ka = next(kr);
  // `the <code>`: `<`, a word and `>` without spaces are a tag
  if (op === '<' && tr === 'n' && !f.spaced[kr] && w[ka] === '>' && !f.spaced[ka]) return false;
  // `or off-session while`, `and new/pending proration`: an operand then another word is a sentence
  if (tr !== 'f' && tr !== '(' && (t[ka] === 'n' || t[ka] === 'f') && f.spaced[ka] === true && !SQL_BAREWORDS.has((w[ka] as string).trimEnd())) return false;
  return true;
}

/**
 * Token-sequence evidence over a plain-context stream (compare CRS 942xxx). Returns the rule name
 * and paranoia level of the first (lowest-level) match.
 */
function sequenceEvidence(f: Fingerprint): { rule: string; paranoia: number } | undefined {
  const t = f.types;
  const w = f.words;
  const m = t.length;
  let weak: { rule: string; paranoia: number } | undefined;
  const at = (k: number, cls: string): boolean => t.charCodeAt(k) === cls.charCodeAt(0);
  // next non-comment token index after k
  const next = (k: number): number => {
    let j = k + 1;
    while (j < m && t.charCodeAt(j) === 99 /* c */) j++;
    return j;
  };
  for (let k = 0; k < m; k++) {
    const ty = t[k] as string;
    const word = w[k] as string;
    const k1 = next(k);
    const w1 = w[k1] ?? '';
    const t1 = t[k1] ?? '';
    if (ty === 'f') {
      const name = word.endsWith(' ') ? word.slice(0, -1) : word;
      const spacedCall = word.endsWith(' ');
      // prose puts a space before a parenthesis ("lower (unnamed) rank", "Left (WA, RR)"): ordinary
      // words count only as calls without one
      if (SQL_SPECIFIC.has(name)) {
        if (!CODE_WORDS.has(name)) return { rule: `function:${name}`, paranoia: 1 };
        if (!spacedCall) return { rule: `function:${name}`, paranoia: 1 };
      } else if (COMMON_FUNCTIONS.has(name) && !spacedCall) {
        // `user()`, `version()` take no argument: `user(s)` is an English plural
        const k2 = next(k1);
        if (!(NILADIC.has(name) && k2 < m && t[k2] !== ')')) weak = lower(weak, { rule: `function:${name}`, paranoia: 2 });
      }
      // `in (0,1)`, `in ('a','b')`, `in (select`: a SQL list (CRS 942120, PL2)
      if (name === 'in' && t1 === '(' && /^[1s](?:,[1s])|^E/.test(t.slice(k1 + 1, k1 + 4))) weak = lower(weak, { rule: 'in-list', paranoia: 2 });
      continue;
    }
    if (ty === 'o' && word === '::' && (CAST_TYPES.has(w1) || w1 === 'double') && k > 0 && /[)s1n]/.test(t[k - 1] as string))
      return { rule: 'cast', paranoia: 1 };
    if (
      ty === 'o' &&
      k > 0 &&
      at(k - 1, 's') &&
      (w[k - 1] as string).length > 0 &&
      /^[{[]/.test(w[k - 1] as string) &&
      /^(?:\?[|&]?|@>|<@|->>?|#>>?|@\?|@@|-)$/.test(word)
    )
      return { rule: 'json-operator', paranoia: 1 };
    if (ty === '1' && /^\d+\.e$/.test(word) && (t1 === '(' || t1 === 'n' || t1 === 'f' || t1 === 'E')) return { rule: 'scientific-notation', paranoia: 1 };
    if (ty === ';' && (t1 === 'E' || ((t1 === 'n' || t1 === 'k' || t1 === 'f') && STACKABLE.has(w1.trim())))) {
      const w2 = w[next(k1)] ?? '';
      if (t1 === 'E' || w1 === 'replace' || (w1.trim() === 'set' && (t[next(k1)] === 'v' || w2.startsWith('@')) && t[next(next(k1))] === 'o'))
        return { rule: 'stacked-query', paranoia: 1 };
    }
    if (ty === 'c' && word === '/*' && !f.spaced[k] && k > 0 && /[EUB&k]/.test(t[k - 1] as string)) return { rule: 'comment-obfuscation', paranoia: 1 };
    if (ty === 'c' && word === '/*' && k1 < m && /[EUB&]/.test(t1) && !f.spaced[k1]) return { rule: 'comment-obfuscation', paranoia: 1 };
    // `9999 or /* hint */ true`: a comment between a logic operator and its operand (CRS 942500 domain, PL2)
    if (ty === 'c' && word === '/*' && k > 0 && t[k - 1] === '&' && /[1sn(]/.test(t1)) weak = lower(weak, { rule: 'comment-obfuscation', paranoia: 2 });
    // "from `db`.`table` limit": a back-quoted table name between `from` and a clause keyword (CRS 942380, PL2)
    if (ty === 'k' && word === 'from' && t1 === 'n' && w1 === '`' && /^n{0,3}(?:B|k)/.test(t.slice(k1 + 1, k1 + 5))) {
      const j = k1 + 1 + t.slice(k1 + 1, k1 + 5).search(/[Bk]/);
      if (t[j] === 'B' || w[j] === 'where') weak = lower(weak, { rule: 'from-quoted-name', paranoia: 2 });
    }
    if (ty === 'U') {
      const k2 = t1 === '(' ? next(k1) : k1;
      if (t[k2] === 'E') return { rule: 'union-select', paranoia: 1 };
    }
    if (ty === 'E') {
      const k2 = next(k1);
      const t2 = t[k2] ?? '';
      const w2 = w[k2] ?? '';
      switch (word) {
        case 'select': {
          if (t1 === 'o' && w1 === '*') return { rule: 'select-star', paranoia: 1 };
          if (t1 === 'f' || t1 === 'v' || t1 === '1' || (t1 === 'n' && ATTACK_WORDS.has(w1)) || (t1 === '(' && t2 === 'E'))
            return { rule: 'select-expression', paranoia: 1 };
          if (t1 === '(' && w2 === 'case') weak = lower(weak, { rule: 'select-expression', paranoia: 2 });
          // select <columns> from <table> (where|limit|order|;|--|end)
          for (let j = k1; j < Math.min(m, k + 12); j++) {
            if (t[j] === 'k' && w[j] === 'from') {
              const j1 = next(j);
              const tj1 = t[j1] ?? '';
              if (tj1 === 'n' || tj1 === '(') {
                const j2 = next(j1);
                const end =
                  j2 >= m ||
                  t[j2] === ';' ||
                  t[j2] === 'c' ||
                  t[j2] === 'B' ||
                  t[j2] === ')' ||
                  (t[j2] === 'k' && (w[j2] === 'where' || w[j2] === 'join' || w[j2] === 'inner' || w[j2] === 'left')) ||
                  t[j2] === 'U';
                if (end) return { rule: 'select-from', paranoia: 1 };
              }
              break;
            }
          }
          break;
        }
        case 'insert':
        case 'replace':
          if (w1 === 'into' && (t2 === 'n' || t2 === 'f')) return { rule: 'insert-into', paranoia: 1 };
          break;
        case 'delete':
          if (w1 === 'from' && t2 === 'n') return { rule: 'delete-from', paranoia: 1 };
          break;
        case 'drop':
        case 'alter':
        case 'truncate':
        case 'create':
        case 'rename':
          if ((t1 === 'k' || t1 === 'n' || t1 === 'f') && DDL_OBJECTS.has(w1.trim()) && (word !== 'create' || t2 === 'n' || t2 === 'f')) {
            if (word !== 'create' || /[(]/.test(t.slice(k2, k2 + 3)) || w[k2 + 1] === 'as' || w[k2 + 1] === 'returns')
              return { rule: `ddl:${word}-${w1.trim()}`, paranoia: 1 };
            // `create login links for …`: a name followed by more prose words is a sentence
            const after = t[next(k2)];
            if (word !== 'create' || after !== 'n' || /^(?:with|on|identified|if|from|as)$/.test(w[next(k2)] ?? ''))
              weak = lower(weak, { rule: `ddl:${word}-${w1.trim()}`, paranoia: 2 });
          }
          if (word === 'drop' && t1 === 'n' && (t2 === ';' || t2 === 'c' || k2 >= m)) weak = lower(weak, { rule: 'ddl:drop', paranoia: 2 });
          break;
        case 'update':
          if (t1 === 'n' && w2 === 'set') return { rule: 'update-set', paranoia: 1 };
          break;
        case 'exec':
        case 'execute':
          // `exec (@sql)`, `exec('select …')`: dynamic SQL is a string, a variable or a call (not `execute (e.g., …`)
          if (
            /^(?:xp_|sp_|master\.|immediate)/.test(w1) ||
            w1 === 'immediate' ||
            t1 === 'v' ||
            (t1 === '(' && (k2 >= m || /[svf(]/.test(t2))) ||
            (t1 === 'f' && /^(?:xp_|sp_)/.test(w1))
          )
            return { rule: `exec:${w1.slice(0, 16)}`, paranoia: 1 };
          if (t1 === 'n' && (t2 === 'n' || k2 >= m)) weak = lower(weak, { rule: 'exec', paranoia: 2 });
          break;
        case 'waitfor':
          if (w1 === 'delay' || w1 === 'time') return { rule: 'waitfor-delay', paranoia: 1 };
          break;
        case 'declare':
          if (t1 === 'v') return { rule: 'declare-variable', paranoia: 1 };
          break;
        case 'load':
          if (w1 === 'data' && (w2 === 'infile' || w2 === 'local')) return { rule: 'load-data', paranoia: 1 };
          break;
        case 'shutdown':
          if (w1 === 'with' || k1 >= m || t1 === ';' || t1 === 'c') return { rule: 'shutdown', paranoia: 1 };
          break;
      }
      continue;
    }
    if (ty === 'k') {
      if (word === 'into' && (w1 === 'outfile' || w1 === 'dumpfile')) return { rule: 'into-outfile', paranoia: 1 };
      if (word === 'procedure' && w1.trimEnd() === 'analyse') return { rule: 'procedure-analyse', paranoia: 1 };
      if (word === 'set' && t1 === 'v' && t[next(k1)] === 'o') {
        if (k > 0 && t[k - 1] === ';') return { rule: 'set-variable', paranoia: 1 };
        weak = lower(weak, { rule: 'set-variable', paranoia: 2 });
      }
      // `;SET @OLD_SQL_MODE`: a session variable named at the end of a value (CRS 942210, PL2)
      if (
        word === 'set' &&
        t1 === 'v' &&
        next(k1) >= m &&
        (k === 0 || t[k - 1] === ';' || t[k - 1] === 'o') &&
        (w[k1] as string).startsWith('@') &&
        (w[k1] as string).length > 1
      )
        weak = lower(weak, { rule: 'set-variable', paranoia: 2 });
      // `) when 234 then`: a CASE branch after the application's parenthesis (CRS 942300, PL2)
      if (word === 'when' && (k === 0 || t[k - 1] === ')') && /[1sn]/.test(t1) && w[next(k1)] === 'then')
        weak = lower(weak, { rule: 'case-when', paranoia: 2 });
      if (word === 'case' && w1 === 'when') {
        for (let j = k1; j < Math.min(m, k + 10); j++) {
          if (t[j] === 'k' && w[j] === 'then') {
            weak = lower(weak, { rule: 'case-when', paranoia: /[o(f1]/.test(t.slice(k1, j)) || k === 0 || /[(,o&Ek]/.test(t[k - 1] as string) ? 1 : 2 });
            if ((weak as { paranoia: number }).paranoia === 1) return weak;
            break;
          }
        }
      }
      if (word === 'as' && k > 0 && /[)n]/.test(t[k - 1] as string) && t1 === 'n' && w[next(k1)] === 'from') {
        if ((w[k - 1] === '`' || w1 === '`') && k <= 2) return { rule: 'alias-from', paranoia: 1 };
        if (t[k - 1] === ')' || w[k - 1] === '`' || w1 === '`') weak = lower(weak, { rule: 'alias-from', paranoia: 2 });
      }
      // `) as user from`, `; as not from`: an alias after a break-out (CRS 942360/942362, PL2)
      if (word === 'as' && k > 0 && (t[k - 1] === ')' || t[k - 1] === ';') && /[nko]/.test(t1) && w[next(k1)] === 'from')
        weak = lower(weak, { rule: 'alias-from', paranoia: 2 });
      if (word === 'in' && t1 === '(' && /^[1s](?:,[1s])|^E/.test(t.slice(k1 + 1, k1 + 4))) weak = lower(weak, { rule: 'in-list', paranoia: 2 });
      continue;
    }
    if (ty === 'B') {
      if (word === 'having' && (t1 === 'f' || ((t1 === '1' || t1 === 'n') && t[next(k1)] === 'o'))) return { rule: 'having', paranoia: 1 };
      if ((word === 'order by' || word === 'group by') && t1 === '1' && /^[\d]+$/.test(w1) && /^(?:[,;c)&B]|$)/.test(t[next(k1)] ?? ''))
        return { rule: word.replace(' ', '-'), paranoia: 1 };
      if ((word === 'order by' || word === 'group by') && (t1 === 'n' || t1 === '1')) {
        const t2 = t[next(k1)];
        if (t2 === ';' || t2 === 'c' || t2 === 'B') return { rule: word.replace(' ', '-'), paranoia: 1 };
        // a sort key ends the clause, or a list, direction, limit or operator follows; prose goes on with words
        // (`order by creation date`, `order by id.`, `order by `created` or `effective_at``)
        const sentence = (t1 === 'n' && w1.endsWith('.')) || t2 === 'n' || t2 === 'f' || t2 === '&' || t2 === 's';
        if (!sentence) weak = lower(weak, { rule: word.replace(' ', '-'), paranoia: 2 });
      }
      if (word === 'limit' && t1 === '1' && t[next(k1)] === ',') weak = lower(weak, { rule: 'limit', paranoia: 2 });
      continue;
    }
    if (ty === 'n' && ATTACK_WORDS.has(word)) return { rule: `attack-name:${word}`, paranoia: 1 };
    // a whole hex literal (`0x414243`), not a token fragment that happens to start with 0x (`-0x0lsoto…`)
    if (ty === '1' && word.startsWith('0x') && word.length >= 4 && /^0x[0-9a-f]+$/.test(word) && k > 0 && /[,o(&]/.test(t[k - 1] as string))
      weak = lower(weak, { rule: 'hex-literal', paranoia: 2 });
    // `xor` is no English word: a logic operator between operands (CRS 942120, PL2)
    if (ty === '&' && word === 'xor' && k > 0 && /[1s)]/.test(t[k - 1] as string) && /[1sn(vf]/.test(t1))
      weak = lower(weak, { rule: 'operator:xor', paranoia: 2 });
    // `) like (`: closing the application's parenthesis and comparing
    if (ty === ')' && k === 0 && t1 === 'o' && /^[a-z]/.test(w1) && /[(s1]/.test(t[next(k1)] ?? '')) return { rule: 'parenthesis-breakout', paranoia: 1 };
    // operators between literals: 1!=2, 42 like 42, 'a' not regexp 'b' (tautology probes)
    if (
      ty === 'o' &&
      k > 0 &&
      /[1s]/.test(t[k - 1] as string) &&
      (t1 === '1' || t1 === 's' || (t1 === 'o' && t[next(k1)] !== undefined && /[1s]/.test(t[next(k1)] as string)))
    ) {
      // word operators from level 2; `1!=2`, `a<>b` also read as maths and code, so from level 3;
      // a word comparison of two literals that is false (`1 is not 1`, `'1' not regexp '1'`) is no tautology probe
      if (/^(?:like|rlike|regexp|is|not|sounds|glob|ilike|similar)$/.test(word)) {
        if (literalComparison(f, k - 1)?.truth !== false) weak = lower(weak, { rule: `operator:${word}`, paranoia: 2 });
      } else if (/^(?:<=>|!=|<>|==)$/.test(word)) weak = lower(weak, { rule: `operator:${word}`, paranoia: 3 });
    }
    if (ty === '&' && (k === 0 || t[k - 1] === ')' || t[k - 1] === '1' || t[k - 1] === 's' || t[k - 1] === 'n')) {
      // chained conditions: `and x = 1`, `|| c == '`, `&& (l=!0)`, `xor 2 <`
      const k2 = t1 === '(' ? next(k1) : k1;
      if (/[n1sv]/.test(t[k2] ?? '') && t[next(k2)] === 'o' && !(t[k2] === 'n' && (w[k2] as string).endsWith('.')) && comparisonRest(f, next(k2), next))
        weak = lower(weak, { rule: 'chained-condition', paranoia: 2 });
    }
  }
  return weak;
}

/** Part after `name=` when the value is shaped like a parameter assignment (payloads smuggled in a name). */
function afterAssignment(s: string): string | undefined {
  const eq = s.indexOf('=');
  if (eq <= 0 || eq > 64 || eq === s.length - 1) return undefined;
  for (let i = 0; i < eq; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 95 || c === 45 || c === 46 || c === 91 || c === 93)) return undefined;
  }
  return s.slice(eq + 1);
}

const SPECIAL_RE = /['"`;()=<>#|&@*/:!?^~{}[\]$%]|--/;
const WORD_HINT = /[a-z]_[a-z]|0x[0-9a-f]|^(?:xor|rlike|regexp)$/;
/** Keyword pairs that can make SQL out of words alone (`union select`, `order by 1`, `drop table`). */
const STATEMENT_HINT =
  /\b(?:(?:union|intersect|except)\s+(?:all\s+|distinct\s+)?select|select\s|(?:order|group)\s+by|case\s+when|(?:insert|replace)\s+into|delete\s+from|(?:drop|alter|create|truncate|rename)\s+(?:table|database|schema|procedure|function|view|index|user|trigger|column|login|role|event|tablespace|sequence|type|proc)|update\s+\w+\s+set|exec(?:ute)?\s+(?:xp_|sp_|immediate|master)|waitfor\s+(?:delay|time)|into\s+(?:outfile|dumpfile)|load\s+data|shutdown|procedure\s+analyse|(?:declare|set)\s+@|(?:or|and|xor)\s+\S+\s*(?:[=<>]|like|rlike|regexp|between|sounds|glob)|xor|rlike|regexp)\b|^\d\S*\s+(?:or|and|xor)\b|^(?:or|and)\s+\d|^exec(?:ute)?\s+\w+$|^(?:order|group)\s+by$|^(?:is(?:\s+not)?|like)\s+null$|^\d+\s+(?:is\s+not|not\s+like|like|rlike|regexp|glob)\s+\d+$|^\S+\s+(?:and|or)$|[a-z]_[a-z]|0x[0-9a-f]/;
const CATALOGUE_RE = new RegExp(CATALOGUES.map((c) => c.replace(/[.$@]/g, (m) => `\\${m}`)).join('|'));

/** Catalogue and attack names in a plain parameter or member name (`information_schema`, `xp_dirtree`). */
export function detectSqliName(s: string): SqliHit | undefined {
  for (const cat of CATALOGUES) if (s.includes(cat)) return { rule: `catalogue:${cat}`, fingerprint: '', paranoia: 1 };
  if (ATTACK_WORDS.has(s)) return { rule: `attack-name:${s}`, fingerprint: '', paranoia: 1 };
  if (CATALOGUE_WORDS.has(s)) return { rule: `catalogue:${s}`, fingerprint: '', paranoia: 2 };
  if (SQL_NAMES.has(s)) return { rule: `sql-name:${s}`, fingerprint: '', paranoia: 2 };
  if (MAGIC_NUMBERS.has(s)) return { rule: 'magic-number', fingerprint: '', paranoia: 2 };
  return undefined;
}

/** Function names a probe ends with (`sin (`, `version=(`, `if !(`): {@link SQL_SPECIFIC}, {@link COMMON_FUNCTIONS} and these. */
const PROBE_FUNCTIONS = new Set('if password floor day month length ln user values version quarter time in'.split(' '));
/** SQL word operators (CRS 942120). */
const WORD_OPERATORS = new Set(['like', 'rlike', 'regexp', 'glob', 'sounds', 'xor', 'ilike', 'similar', 'notnull']);

/** Comparison operators that are true for equal literals (CRS 942130). */
const EQUAL_OPS = new Set(['=', '==', '<=>', 'like', 'ilike', 'glob', 'rlike', 'regexp', 'is', 'sounds like']);
/** Comparison operators that are true for different literals (CRS 942131). */
const UNEQUAL_OPS = new Set(['!=', '<>', '^', 'is not', 'not like', 'not ilike', 'not glob', 'not rlike', 'not regexp']);

/**
 * The truth of a comparison of two literals (numbers or strings, compared as text the way MySQL
 * compares `'1'` and `1`) whose left operand is token `k` of `f`: `1=1`, `11!=1`, `'a' like 'a'`,
 * `1 is not 2`. `end` is the right operand's token index. Undefined when token `k` does not start
 * such a comparison or an operand was truncated.
 */
function literalComparison(f: Fingerprint, k: number): { truth: boolean; end: number } | undefined {
  const t = f.types;
  if (t[k] !== '1' && t[k] !== 's') return undefined;
  let j = k + 1;
  let op = '';
  while (j < t.length && j - k <= 2 && t[j] === 'o') {
    op += (op === '' ? '' : ' ') + (f.words[j] as string);
    j++;
  }
  if (op === '' || (t[j] !== '1' && t[j] !== 's')) return undefined;
  const equal = EQUAL_OPS.has(op) ? true : UNEQUAL_OPS.has(op) ? false : undefined;
  const a = f.words[k] as string;
  const b = f.words[j] as string;
  if (equal === undefined || a.length >= 24 || b.length >= 24) return undefined;
  return { truth: (a === b) === equal, end: j };
}

/** SQL operators that are a probe when they are the whole value (CRS 942120). */
const BARE_OPERATORS = new Set(['!=', '<=>', '==', '>=', '<=', '<>', '&&', '||', '>>', '<<', '->', '->>']);
/** SQL type, package and session names that are a probe when they are the whole value (CRS 942470, 942140). */
export const SQL_NAMES = new Set(
  (
    'varchar nvarchar varchar2 nvarchar2 sql_variant sql_longvarchar utl_http utl_file utl_inaddr utl_smtp utl_tcp dbms_java ' +
    'dbms_pipe dbms_lock dbms_sql dbms_xmlgen owa_util autonomous_transaction tbcreator schema_name xor rlike regexp notnull isnull'
  ).split(' '),
);
/** `/x or `, `/3 and `: a path-like word, then a logic or comparison word that a character follows (CRS 942210). */
const SLASH_LOGIC = /^\/\w{1,64};?\s+(?:and|x?or|div|like|between|having|select)[^\w]/;
/** `or x==`, `div id="`: a value that starts with an operator word, a name and a comparison against a quote (CRS 942210). */
const OPERATOR_ASSIGN = /^(?:&&|\|\||and|x?or|div|like|between|not)[\s(]+\w{1,64}[\s)]*[!+=]{1,3}\s*\d*["'`()=]/;
/** `--alter`, `; updatex`: a statement verb glued to a comment, or glued to a name after a statement separator (CRS 942210). */
const SEPARATOR_VERB = /(?:^|[^\w-])--(?:alter|drop)\b|;\s*update[a-z]{2,}/;
/** `"' * 123`, `` `>65 ``, `'][0]`, `"2562*23`: a quote, an operator and a number starting the value (CRS 942490, 942370). */
const QUOTE_NUMBER = /^["'`]\s*(?:\d{1,24}\s*[*+%<>=^]|[*+/%<>=^,;)\]|&}"'`])[^\w]*\d|\^["'`]/;
/** `6 as" from`, `) AS 'x' FROM`, `1234 as "foobar" from`: an alias after a number, `)` or punctuation, then `from` (CRS 942360/942362). */
const ALIAS_FROM = /[^a-z_\s.,]\s*\bas\s*(?:["'`][\w\s]{0,64}["'`]?|\w{1,64})\s*\bfrom\b/;
/** `' alter/`, `'union a`: punctuation then `alter` or `union` starting the value (CRS 942361). */
const PUNCT_VERB = /^[^\w\s]{1,8}\s*(?:alter|union)\b/;
/** `div(23,-2)`: MySQL integer division as a call on numbers (CRS 942320). */
const DIV_CALL = /\bdiv\s*\(\s*[+-]*[\s.\d]{1,32},[+-]*[\s.\d]{1,32}\)/;
/** `\x27`, `\x23`, `\x3d`: a quote, hash or equals sign spelt as a C escape (CRS 942330). */
const ESCAPED_QUOTE = /\\x(?:2[37]|3d)/;
/** `3' ' 1`: empty-string juxtaposition between numbers; `admin'`, `admin "`: the administrator account then a quote (CRS 942180). */
const AUTH_BYPASS = /\d["'`]\s+["'`]\s+\d|^admin\s*["'`]/;
/** `1.e.tables`: MySQL scientific notation glued to a name (CRS 942560). */
const SCIENTIFIC_NAME = /\b\d+\.e\.[a-z_]{2,}/;
/** `having 1=`, `having 'a'<`: a HAVING clause comparing a literal (CRS 942380). */
const HAVING_COMPARISON = /\bhaving\s+(?:\d{1,10}|'[^=']{1,10}')\s*[<=>]/;
/** `\0xf00d`: a hex literal behind a backslash escape (CRS 942450). */
const ESCAPED_HEX = /\\0x[0-9a-f]{3,}/;
/** `>foo##'.`: an operator, a name, punctuation and a quote starting the value (CRS 942370). */
const OPERATOR_WORD_QUOTE = /^[%()*+<>-][\w-]{1,64}[^\s\w"'`]{1,8}["'`][^,]/;
/** `dr/**\/op`: a statement keyword split by an inline comment (CRS 942440). */
const SPLIT_KEYWORD = /([a-z]{1,8})\/\*[^*]{0,64}\*\/([a-z]{1,8})/;

/**
 * Whole-value SQL fragments, paranoia level 2 (CRS 942120, 942130/942131, 942180, 942200,
 * 942210, 942320, 942330, 942360-942362, 942370, 942380, 942440, 942470, 942490, 942510, 942540,
 * 942560): values that tokenise to SQL operators, literals and keywords without prose — a bare
 * operator, a true comparison of literals, a literal list, a clause fragment, a quote then an
 * operator and a number. `s` is the normalised value, `plain` its numeric-context stream. Linear:
 * anchored or bounded patterns and walks over the bounded token stream.
 */
export function fragmentEvidence(s: string, plain: Fingerprint): string | undefined {
  const t = plain.types;
  const w = plain.words;
  const v = s.trim();
  if (SQL_NAMES.has(v)) return `sql-name:${v}`;
  // a single operator, or `is null`, `like null`, `is not null`
  if ((t === 'o' || t === '&') && (BARE_OPERATORS.has(w[0] as string) || WORD_OPERATORS.has(w[0] as string))) return 'operator';
  if (/^o{1,2}1$/.test(t) && w[t.length - 1] === 'null' && (w[0] === 'is' || w[0] === 'like')) return `operator:${w[0]}-null`;
  // `1=1`, `b,1=1`, `42<=>42`, `11!=1`: a comparison of literals that is always true
  for (let k = 0; k < t.length; k++) {
    if (k > 0 && !/[,(&;]/.test(t[k - 1] as string)) continue;
    const c = literalComparison(plain, k);
    if (c?.truth === true && (c.end + 1 >= t.length || /[),&;c]/.test(t[c.end + 1] as string))) return 'tautology';
  }
  // `'admin', '1'`, `VALUES ('a', 'b')`, `'', '', 13`: a list of literals with a string in it
  if (
    t.length < MAX_STREAM &&
    /^(?:f(?=\())?[(]*[s1][)]*(?:,[(]*[s1][)]*)+$/.test(t) &&
    t.includes('s') &&
    /^[\s'"(\d]|^values/.test(v) &&
    (t[0] !== 'f' || (w[0] as string).trimEnd() === 'values')
  )
    return 'literal-list';
  // `order by`, `having 1=`, `from t where x = `, `in (a, b)`
  if (t === 'B' && (w[0] === 'order by' || w[0] === 'group by')) return `clause:${w[0]}`;
  if (s.includes('having') && HAVING_COMPARISON.test(s)) return 'having';
  // `2499999||this.x`, `5&&(`: a number glued to a logic operator and an expression (CRS 942120)
  if (/^1&[1snf(v]/.test(t) && (w[1] === '||' || w[1] === '&&') && !plain.spaced[1]) return 'number-logic';
  if (/^knkno/.test(t) && w[0] === 'from' && w[2] === 'where') return 'from-where';
  if (/^in\s*\([^()]{1,256}\)$/.test(v) && v.includes(',')) return 'in-list';
  if (SLASH_LOGIC.test(s)) return 'slash-logic';
  if (OPERATOR_ASSIGN.test(v)) return 'operator-assignment';
  if ((s.includes('--') || s.includes(';')) && SEPARATOR_VERB.test(s)) return 'separator-verb';
  if (QUOTE_NUMBER.test(v)) return 'quote-number';
  if (/^[^\w\s]?["'`]$/.test(v)) return 'bare-quote';
  if (/^`[^`]{1,64}`$/.test(v)) return 'back-quoted-name';
  if (s.includes('as') && s.includes('from') && ALIAS_FROM.test(s)) return 'alias-from';
  if (PUNCT_VERB.test(v)) return 'punctuation-verb';
  if (s.includes('div') && DIV_CALL.test(s)) return 'div-call';
  if (s.includes('\\x') && ESCAPED_QUOTE.test(s)) return 'escaped-quote';
  if (AUTH_BYPASS.test(v)) return 'auth-bypass';
  if (s.includes('.e.') && SCIENTIFIC_NAME.test(s)) return 'scientific-notation';
  if (s.includes('\\0x') && ESCAPED_HEX.test(s)) return 'escaped-hex';
  if (OPERATOR_WORD_QUOTE.test(v)) return 'operator-word-quote';
  if (s.includes('/*')) {
    const m = SPLIT_KEYWORD.exec(s);
    if (m && (WORDS.get(`${m[1]}${m[2]}`) === 'E' || WORDS.get(`${m[1]}${m[2]}`) === 'U')) return 'split-keyword';
  }
  // `,varname"`: a comma, a name and a quote that ends the value (CRS 942200)
  const last = v.charCodeAt(v.length - 1);
  if (last === 34 || last === 39 || last === 96) {
    let j = v.length - 2;
    while (j >= 0 && j > v.length - 66 && isWordChar(v.charCodeAt(j))) j--;
    if (j >= 0 && j < v.length - 2 && v.charCodeAt(j) === 44) return 'comma-quote';
  }
  return undefined;
}

/**
 * Probes and fragments that count from paranoia level 2 or 3 only (compare CRS 942120, 942151,
 * 942260, 942360, 942390, 942400, 942410, 942490, 942510, 942520, 942522 at PL2): pieces of SQL
 * that ordinary text holds less rarely than the level-1 evidence. `plain` is the numeric-context
 * stream of `s`. Linear: fixed look-backs plus at most two more tokenisation passes.
 */
function probeEvidence(s: string, plain: Fingerprint): { rule: string; paranoia: number } | undefined {
  let weak: { rule: string; paranoia: number } | undefined;
  const fp = plain.fp;
  const t = plain.types;
  // `sin (`, `version=(`, `length||!!$(`: a function name, a few non-word characters and a parenthesis that ends the value
  let e = s.length - 1;
  while (e > 0 && s.charCodeAt(e) === 32) e--;
  if (s.charCodeAt(e) === 40 && s.charCodeAt(e - 1) !== 58 /* `:(` is a frown */) {
    let j = e - 1;
    while (j >= 0 && e - j <= 8 && (!isWordChar(s.charCodeAt(j)) || s.charCodeAt(j) === 46 || s.charCodeAt(j) === 36)) j--;
    const end = j + 1;
    while (j >= 0 && isWordChar(s.charCodeAt(j)) && s.charCodeAt(j) !== 46) j--;
    const name = s.slice(j + 1, end);
    if (j < 0 || !isWordChar(s.charCodeAt(j)))
      if (SQL_SPECIFIC.has(name) || COMMON_FUNCTIONS.has(name) || PROBE_FUNCTIONS.has(name)) return { rule: `function-probe:${name}`, paranoia: 2 };
  }
  // `or 88`, `xor 5-`: a value that starts with a logic operator and a number
  if (/^&[(]*1(?:o|c|$)/.test(fp) && t.length <= 3) return { rule: 'logic-probe', paranoia: 2 };
  // `and '5'x`: a value that starts with a logic operator and a string
  if (/^&[(]*s/.test(fp)) return { rule: 'logic-string', paranoia: 2 };
  // `/3 and(`, `= ( select`: a logic operator or a sub-query opened at the end of the value
  if (/[1sn)]&[(]+$/.test(fp) || /\([(]*E$/.test(fp) || (t.length < MAX_STREAM && /\([(]*E$/.test(t))) return { rule: 'open-expression', paranoia: 2 };
  // `1 like 42`, `1 is not 2`: a comparison of two numbers with a word operator
  if (/^1o+1$/.test(fp) && WORD_OPERATORS.has(plain.words[1] as string)) return { rule: `operator:${plain.words[1]}`, paranoia: 2 };
  // `x like '`: a word operator before a quote that ends the value
  const last = s.charCodeAt(e);
  if ((last === 39 || last === 34) && t.length >= 2 && t[t.length - 1] === 's' && t[t.length - 2] === 'o') {
    const op = plain.words[t.length - 2] as string;
    if (WORD_OPERATORS.has(op) && s.slice(0, e).trimEnd().endsWith(op)) return { rule: 'operator-quote', paranoia: 2 };
  }
  for (const q of ["'", '"', '`'] as const) {
    if (s.indexOf(q) === -1) continue;
    // `\' and(`, `\"or"1`: a backslash the application strips or doubles does not escape the quote (CRS 942522)
    if (q !== '`' && s.indexOf(`\\${q}`) !== -1) {
      const r = fingerprint(s, q, false, false);
      if (/^s[)]*&$|^s1[)]*&[(]*[1sn]|^s[)]*&o\(/.test(r.fp) || QUOTED_SHAPES.some((re) => re.test(r.fp)))
        return { rule: `${q}:backslash-breakout`, paranoia: 2 };
    }
    // `` \`or`1 ``: the same with a back-quote (CRS 942522)
    if (q === '`' && s.indexOf('\\`') !== -1 && /^n[)]*&[(]*[1sn]/.test(fingerprint(s, q, false, false).fp))
      return { rule: '`:backslash-breakout', paranoia: 2 };
    const r = q === '`' ? fingerprint(s, q) : quotedStream(s, q);
    if (r === undefined) continue;
    // `" UNION A`, `' union/`: a quote then a set operator (CRS 942361, PL2); `' * from`: a quote, an operator and a clause
    if (
      q !== '`' &&
      ((/^s[)]*U[no]?$/.test(r.fp) && r.spaced[r.types.indexOf('U')] === true) ||
        (/^s[)]*o[(]*k/.test(r.fp) && /^(?:from|where)$/.test(r.words[r.fp.indexOf('k')] ?? '')))
    )
      return { rule: `${q}:quote-${r.fp.includes('U') ? 'union' : 'clause'}`, paranoia: 2 };
    // (past its first tokens, prose around a quote is no probe)
    if (q !== '`' && brokenContinuation(r)) continue;
    // `x'+email--`, `id'is not-id--`: a quote, an operator, and a comment that ends the value (CRS 942520)
    if (q !== '`' && /^s[)]*o/.test(r.fp) && r.fp.endsWith('c')) return { rule: `${q}:operator-comment`, paranoia: 2 };
    // `a'or?--`: a quote, a logic operator, and a comment that ends the value (CRS 942521)
    if (q !== '`' && /^s[)]*&/.test(r.fp) && r.fp.endsWith('c')) return { rule: `${q}:logic-comment`, paranoia: 2 };
    // ``x`;``: a back-quote closed and a statement ended (CRS 942540)
    if (q === '`' && /^n[)]*;$/.test(r.fp)) return { rule: '`:statement-end', paranoia: 2 };
    // `` ` REGEXP ``: a back-quoted name and a word operator (CRS 942360)
    if (q === '`' && /^n[)]*o/.test(r.fp) && WORD_OPERATORS.has(r.words[r.fp.indexOf('o')] ?? '')) return { rule: '`:operator', paranoia: 2 };
  }
  // paranoia level 3: whole values that are a single SQL operator (`xor`, `!=`, `<=>`, `&&`), a back-quoted
  // name, a quote then an operator and a number (CRS 942120, 942490, 942510), `execute x`, `order by`
  if ((t === 'o' || t === '&') && (WORD_OPERATORS.has(plain.words[0] as string) || /^(?:!=|<=>|==|>=|<=|<>|&&|\|\|)$/.test(plain.words[0] as string)))
    weak = { rule: 'operator', paranoia: 3 };
  else if (/^`[^`]{1,64}`$/.test(s)) weak = { rule: 'back-quoted-name', paranoia: 3 };
  else if (/^["'`](?:[<>=*+%-]{1,2}\s*\d|\d+\s*[*+/%<>=-])/.test(s)) weak = { rule: 'quote-probe', paranoia: 3 };
  else if (/^B1?$/.test(t) || (t === 'En' && (plain.words[0] === 'exec' || plain.words[0] === 'execute')))
    weak = { rule: `fragment:${plain.words[0]}`, paranoia: 3 };
  else if (/[1n]&$/.test(fp) && t.length <= 4) weak = { rule: 'trailing-logic', paranoia: 3 };
  return weak;
}

function detectIn(s: string, top: boolean): SqliHit | undefined {
  const plain = fingerprint(s, '', top);
  if (plain.attackFn) return { rule: `attack-function:${plain.attackFn}`, fingerprint: plain.fp, paranoia: 1 };
  for (const re of PLAIN_SHAPES) {
    if (!re.test(plain.fp)) continue;
    // `a limit ranging from`: `limit` takes a number; `delete all usage`: a statement verb and a keyword it cannot take
    if (re === LIMIT_SHAPE) {
      const b = plain.types.indexOf('B');
      if (plain.words[b] === 'limit' && plain.types[tokenAfter(plain, b)] !== '1') continue;
    }
    if (re === VERB_KEYWORD_SHAPE) {
      const e = plain.types.indexOf('E');
      if (!verbTakes(plain.words[e] as string, plain.words[tokenAfter(plain, e)] ?? '')) continue;
    }
    return { rule: `plain:${re.source}`, fingerprint: plain.fp, paranoia: 1 };
  }
  // `1 or 1`, `1 or 1--`: a numeric tautology (not "2024 or 2025 model", not "true or false")
  if (/^1[)]*&[(]*1[)]*(?:c|;|$)/.test(plain.fp) && /^\d/.test(plain.words[0] as string) && plain.words[0] === plain.words[plain.types.indexOf('&') + 1])
    return { rule: 'numeric-tautology', fingerprint: plain.fp, paranoia: 1 };
  if (plain.sysvar) return { rule: 'system-variable', fingerprint: plain.fp, paranoia: 1 };
  if (plain.versioned) return { rule: 'versioned-comment', fingerprint: plain.fp, paranoia: 1 };
  // a value that starts with a quote and compares it: '1'='1, 'x'!='y
  if (/^s[)]*o[(]*[s1]/.test(plain.fp) && (s.charCodeAt(0) === 39 || s.charCodeAt(0) === 34))
    return { rule: 'quoted-comparison', fingerprint: plain.fp, paranoia: 1 };
  let weak: SqliHit | undefined;
  const seq = sequenceEvidence(plain);
  if (seq) {
    if (seq.paranoia === 1) return { rule: seq.rule, fingerprint: plain.fp, paranoia: 1 };
    weak = { rule: seq.rule, fingerprint: plain.fp, paranoia: seq.paranoia };
  }
  for (const q of ["'", '"', '`'] as const) {
    if (s.indexOf(q) === -1) continue;
    const r = q === '`' ? fingerprint(s, q) : quotedStream(s, q);
    if (r === undefined) continue;
    if (r.attackFn) return { rule: `attack-function:${r.attackFn}`, fingerprint: r.fp, paranoia: 1 };
    if (r.sysvar && q !== '`') return { rule: `${q}:system-variable`, fingerprint: r.fp, paranoia: 1 };
    // the database must be able to parse what follows the break-out: prose around a quote is no injection
    if (q !== '`' && brokenContinuation(r)) continue;
    if (q !== '`') {
      for (const re of QUOTED_SHAPES) {
        if (!re.test(r.fp)) continue;
        // `":60` probes a JSON string's end (CRS 942490): `:` is no SQL operator, so only at the start of the value
        if (re === SON && r.words[r.fp.indexOf('o')] === ':' && s.charCodeAt(0) !== q.charCodeAt(0)) continue;
        // `' from x`, `' into outfile`: only a keyword that can follow a value (not `"user"`, `"[set github`); `in` needs its list
        if (re.source === '^s[)]*k[ns1(]') {
          const kw = r.words[r.fp.indexOf('k')] as string;
          if (!AFTER_VALUE.has(kw) || (kw === 'in' && r.fp[r.fp.indexOf('k') + 1] !== '(')) continue;
        }
        // `id'is notes`: a word operator then a bareword needs more SQL after it
        if (
          re === SON &&
          /^(?:[a-z]|!$)/.test(r.words[r.fp.indexOf('o')] ?? '') &&
          r.fp[r.fp.indexOf('o') + 1] === 'n' &&
          !/^[c&o;]/.test(r.fp.slice(r.fp.indexOf('o') + 2))
        )
          continue;
        return { rule: `${q}:${re.source}`, fingerprint: r.fp, paranoia: 1 };
      }
    }
    const qs = sequenceEvidence(r);
    if (qs && qs.paranoia === 1) return { rule: `${q}:${qs.rule}`, fingerprint: r.fp, paranoia: 1 };
    if (q !== '`' && weak === undefined && /^s[)]*E[n(]/.test(r.fp)) weak = { rule: `${q}:statement`, fingerprint: r.fp, paranoia: 2 };
  }
  return weak;
}

/**
 * Detects SQL injection in a normalised (lower-case, decoded) value. `paranoia` (1-4, default 4)
 * skips the evidence that only counts above it (the level-2/3 probes cost a second tokenisation).
 * @returns the first matching evidence at the lowest paranoia level found, or `undefined`.
 */
export function detectSqli(s: string, wordsOnly?: boolean, paranoia = 4): SqliHit | undefined {
  if (s.length < 2) return undefined;
  const cat = CATALOGUE_RE.exec(s);
  if (cat) return { rule: `catalogue:${cat[0]}`, fingerprint: '', paranoia: 1 };
  if (paranoia >= 2 && s.length <= 32 && SQL_NAMES.has(s.trim())) return { rule: `sql-name:${s.trim()}`, fingerprint: '', paranoia: 2 };
  // from level 2, `=`, a leading `/`, `\x` escapes and `1.e.` also make fragments worth tokenising (`1=1`, `/x or `)
  const special = wordsOnly === undefined ? SPECIAL_RE.test(s) : !wordsOnly;
  if (
    !special &&
    paranoia >= 2 &&
    (s.indexOf('=') !== -1 ||
      s.charCodeAt(0) === 47 ||
      s.indexOf('\\x') !== -1 ||
      s.indexOf('.e.') !== -1 ||
      (s.indexOf(' as') !== -1 && s.indexOf('from') !== -1))
  ) {
    const rest = afterAssignment(s);
    const fr = fragmentEvidence(s, fingerprint(s, '')) ?? (rest !== undefined ? fragmentEvidence(rest, fingerprint(rest, '')) : undefined);
    if (fr !== undefined) return { rule: `fragment:${fr}`, fingerprint: '', paranoia: 2 };
  }
  // words, numbers, spaces and dots alone: only statement keyword sequences (or a numeric `1 or 1`) can be SQL
  // a single word (no space) cannot hold a keyword pair
  if (
    !special &&
    !(s.indexOf(' ') === -1 && s.indexOf('+') === -1 && s.indexOf('\t') === -1 && s.indexOf('\n') === -1 ? WORD_HINT.test(s) : STATEMENT_HINT.test(s))
  ) {
    if (CATALOGUE_WORDS.has(s) || ATTACK_WORDS.has(s) || MAGIC_NUMBERS.has(s)) return detectSqliName(s);
    return undefined;
  }
  let hit = detectIn(s, true);
  if (hit?.paranoia === 1) return hit;
  const rest = afterAssignment(s);
  if (paranoia >= 2 && (hit === undefined || hit.paranoia > 2)) {
    const plain = fingerprint(s, '');
    const fr = fragmentEvidence(s, plain) ?? (rest !== undefined ? fragmentEvidence(rest, fingerprint(rest, '')) : undefined);
    const pr = fr !== undefined ? { rule: `fragment:${fr}`, paranoia: 2 } : probeEvidence(s, plain);
    if (pr && (hit === undefined || pr.paranoia < hit.paranoia)) hit = { rule: pr.rule, fingerprint: '', paranoia: pr.paranoia };
    // `1´ or ´1´=´x´`: an acute accent some client charsets turn into a quote (CRS 942430 counts it as one)
    // (normalising decomposes it into a space and a combining acute accent)
    if ((hit === undefined || hit.paranoia > 2) && (s.indexOf('\u00b4') !== -1 || s.indexOf('\u0301') !== -1)) {
      const h = detectIn(s.replace(/ ?\u0301|\u00b4/g, "'"), false);
      if (h) hit = { rule: `acute-accent:${h.rule}`, fingerprint: h.fingerprint, paranoia: 2 };
    }
  }
  if (rest !== undefined) {
    const h2 = detectIn(rest, false);
    if (h2 && (hit === undefined || h2.paranoia < hit.paranoia)) return { ...h2, rule: `assignment:${h2.rule}` };
  }
  return hit;
}
