/**
 * Path traversal and local file inclusion (CWE-22, CWE-98; OWASP WSTG-ATHZ-01): `../` and `..\`
 * sequences (also the `....//` filter-stripping trick and Tomcat's `..;/`), references to
 * well-known sensitive files, and stream wrappers (`php://`, `file://`, `phar://`). Linear time:
 * `indexOf` scans over a fixed list of short needles.
 */

/** Sensitive files and directories, Unix and Windows (our list; compare CRS lfi-os-files.data). */
const SENSITIVE = [
  'etc/passwd',
  'etc/shadow',
  'etc/group',
  'etc/hosts',
  'etc/issue',
  'etc/motd',
  'etc/crontab',
  'etc/fstab',
  'etc/sudoers',
  'etc/hostname',
  'etc/resolv.conf',
  'etc/environment',
  'etc/profile',
  'etc/ssh/',
  'etc/mysql/',
  'etc/httpd/',
  'etc/apache2/',
  'etc/nginx/',
  'etc/security/',
  'etc/master.passwd',
  'etc/pwd.db',
  'etc/os-release',
  'etc/lsb-release',
  'etc/redhat-release',
  'proc/self/',
  'proc/version',
  'proc/cpuinfo',
  'proc/meminfo',
  'proc/net/',
  'proc/sched_debug',
  'proc/mounts',
  'var/log/',
  'var/run/secrets',
  'var/lib/mlocate',
  'usr/local/etc/',
  'root/.',
  'home/',
  '.ssh/',
  'id_rsa',
  'id_dsa',
  'id_ecdsa',
  'id_ed25519',
  'authorized_keys',
  'known_hosts',
  '.bash_history',
  '.bashrc',
  '.bash_profile',
  '.zsh_history',
  '.mysql_history',
  '.psql_history',
  '.htaccess',
  '.htpasswd',
  '.git/',
  '.gitconfig',
  '.svn/',
  '.hg/',
  '.env',
  '.aws/credentials',
  '.aws/config',
  '.docker/config.json',
  '.kube/config',
  '.npmrc',
  '.pgpass',
  '.my.cnf',
  '.netrc',
  'wp-config.php',
  'web.config',
  'web-inf/',
  'meta-inf/',
  'boot.ini',
  'win.ini',
  'system.ini',
  'windows/system32',
  'windows\\system32',
  'winnt/',
  'system32/config',
  'inetpub/',
  'etc/subuid',
  'etc/subgid',
  'sys/class/',
  'sys/kernel/',
  'proc/interrupts',
  '.docker/',
  'autoexec.bat',
  'config.sys',
  'php.ini',
  'my.ini',
  'httpd.conf',
  'apache2.conf',
  'nginx.conf',
  'application.properties',
];
const SENSITIVE_LIST = SENSITIVE.map((p) => [p, p.replaceAll('/', '\\')] as const);

const WRAPPERS = [
  'php://',
  'file://',
  'phar://',
  'zip://',
  'expect://',
  'glob://',
  'data://',
  'zlib://',
  'compress.zlib://',
  'compress.bzip2://',
  'ogg://',
  'rar://',
  'jar:file:',
  'netdoc:',
];

const WRAPPER_RE = new RegExp(WRAPPERS.map((w) => w.replaceAll('.', '\\.').replaceAll('/', '\\/')).join('|'));

const RESTRICTED_EXT =
  /\.(?:sql|sql\.(?:gz|zip|bz2|xz)|bak|backup|old|orig|swp|swo|log|ini|env|pem|key|p12|pfx|kdbx|sqlite|db|mdb|dump|tar|tar\.gz|tgz|zip|7z|rar)$/;

/**
 * Request paths that reach for files an API never serves: dot-files and dot-directories (except
 * `/.well-known/`, RFC 8615), backup/log/database/key extensions, and sensitive files spread over
 * several segments (`/etc/passwd`). `path` is the decoded, lower-case path.
 */
export function detectRestrictedPath(path: string): LfiHit | undefined {
  const segs = path.split('/');
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i] as string;
    if (seg.length > 1 && seg.charCodeAt(0) === 46 && seg.charCodeAt(1) !== 46 && !(i === 1 && seg === '.well-known'))
      return { rule: 'dot-file', index: 0, paranoia: 1 };
  }
  const last = segs[segs.length - 1] as string;
  if (RESTRICTED_EXT.test(last)) return { rule: 'restricted-extension', index: 0, paranoia: 1 };
  const h = detectLfi(path);
  if (h?.rule.startsWith('sensitive-file')) return h;
  for (const p of ['/sys/', '/proc/', '/@fs/', '/@id/', '/wp-content/debug', '/web-inf', '/meta-inf', '/cgi-bin/'])
    if (path.includes(p) || `${path}/`.includes(p)) return { rule: `restricted-path:${p}`, index: 0, paranoia: 1 };
  return undefined;
}

/** Server-side files an upload must not be named after: the server would run or trust them (paranoia level 1). */
const UPLOAD_EXECUTABLE = /^\.(?:htaccess|htpasswd|htdigest|user\.ini)$|^web\.config$|\.(?:php\d?|phtml|phar|asp|aspx|jsp|jspx|cgi|shtml)$/;
/** Configuration and system file names (procfs entries too) an upload name should not be (paranoia level 2). */
const UPLOAD_CONFIG =
  /^(?:wp-config|settings|config|configuration|local_?settings|database|secrets?|credentials?|parameters|appsettings|application|aws(?:-key)?|compose|docker-compose)(?:[-._][a-z0-9]+){0,3}\.(?:txt|ini|json|ya?ml|xml|toml|py|rb|pl|js|conf|cnf|env|properties|bak|old)$|^(?:acpi|asound|buddyinfo|cgroups|cmdline|cpuinfo|meminfo|environ|boot\.ini|composer\.(?:json|lock)|auth\.json|bower\.json|id_(?:rsa|dsa|ecdsa|ed25519)|authorized_keys|known_hosts)$/;

/**
 * Restricted upload file names (compare CRS 932180, which reads `X-Filename`-style headers): dot-files
 * (`.boto`, `.bashrc`), server-executed files (`settings.php`, `.htaccess`, `web.config`) and
 * configuration or system file names (`config.yml`, `wp-config_php.txt`, `acpi`). `name` is the
 * header value, lower-cased; whitespace is ignored and only the last path segment counts.
 */
export function detectRestrictedUpload(name: string): LfiHit | undefined {
  let b = name.replace(/\s+/g, '');
  const slash = Math.max(b.lastIndexOf('/'), b.lastIndexOf('\\'));
  if (slash !== -1) b = b.slice(slash + 1);
  if (b.length < 2) return undefined;
  if (UPLOAD_EXECUTABLE.test(b)) return { rule: 'restricted-upload', index: 0, paranoia: 1 };
  if (b.charCodeAt(0) === 46 && b !== '..') return { rule: 'restricted-upload:dot-file', index: 0, paranoia: 1 };
  if (UPLOAD_CONFIG.test(b)) return { rule: 'restricted-upload:config', index: 0, paranoia: 2 };
  return undefined;
}

/** Every entry of {@link SENSITIVE} contains one of these (a directory followed by a separator, or a file name). */
const ANCHOR =
  /(?:etc|proc|var|usr|root|home|sys|windows|winnt|system32|inetpub|web-inf|meta-inf|\.ssh|\.git|\.svn|\.hg|\.aws|\.docker|\.kube)[/\\]|id_(?:rsa|dsa|ecdsa|ed25519)|authorized_keys|known_hosts|\.(?:bash|zsh|mysql|psql)_history|\.bash(?:rc|_profile)|\.ht(?:access|passwd)|\.env|\.gitconfig|\.npmrc|\.pgpass|\.my\.cnf|\.netrc|wp-config|web\.config|boot\.ini|win\.ini|system\.ini|autoexec\.bat|config\.sys|php\.ini|my\.ini|httpd\.conf|apache2\.conf|nginx\.conf|application\.properties/;

const reEscape = (w: string): string => w.replace(/[.\\/]/g, (c) => `\\${c}`);
/** Directories {@link ANCHOR} names before a slash or backslash. */
const DIR_BEFORE_SLASH = [
  'etc',
  'proc',
  'var',
  'usr',
  'root',
  'home',
  'sys',
  'windows',
  'winnt',
  'system32',
  'inetpub',
  'web-inf',
  'meta-inf',
  '.ssh',
  '.git',
  '.svn',
  '.hg',
  '.aws',
  '.docker',
  '.kube',
];
/**
 * What follows a dot in the names {@link ANCHOR} lists without a slash or `_` (`.bashrc`, `.htaccess`,
 * `.env`, `.gitconfig`, `.npmrc`, `.pgpass`, `.my.cnf`, `.netrc`, `web.config`, `*.ini`, `*.conf`,
 * `autoexec.bat`, `config.sys`, `application.properties`), and in `..` and `.sql.`.
 */
const AFTER_DOT = ['.', 'sql.', 'bash', 'ht', 'env', 'gitconfig', 'npmrc', 'pgpass', 'my.', 'netrc', 'conf', 'ini', 'bat', 'sys', 'properties'];
/**
 * A necessary condition for any {@link detectLfi} hit, as one pattern that V8 scans quickly: every hit
 * needs `..`, `0x`, `.sql.`, an {@link ANCHOR} name (an `_` or `\`, `wp-config`, a listed directory
 * before `/`, a listed word after a dot) or a stream wrapper name before `:`. Ordinary URLs, dates
 * and prose fail it and skip the pattern passes. The look-behinds are bounded (linear time).
 */
const LFI_CANDIDATE = new RegExp(
  `[_\\\\]|0x|wp-config|\\.(?:${AFTER_DOT.map(reEscape).join('|')})|(?<=${DIR_BEFORE_SLASH.map(reEscape).join('|')})\\/|(?<=${WRAPPERS.map((w) => reEscape(w.slice(0, w.indexOf(':')))).join('|')}):`,
);

/** System directories named at the end of a value (`/sys/class`, `/proc/net`). */
const SYS_DIR_END = /\/(?:sys\/(?:class|kernel)|proc\/net|etc\/(?:ssh|mysql|httpd|apache2|nginx|security))$/;

/** Archive and split-volume suffixes after `.sql.` (compressed database dumps; CRS lfi-os-files.data). */
const SQL_DUMP = /^(?:\d{3}|7z|bz2?|ace|arj|cpio|gz|gzip|lha|lz|lzma|pa|pea|r\d\d|rar|rev|tar|taz|tbz2?|tgz|txz|uha|xz|yz1|z|zip|zst)(?![a-z0-9])/;

/** A detected traversal/LFI pattern. */
export interface LfiHit {
  rule: string;
  index: number;
  paranoia: number;
}

/**
 * Detects path traversal / LFI in a normalised (decoded, lower-case) value.
 * @returns the first hit, or `undefined`.
 */
export function detectLfi(s0: string): LfiHit | undefined {
  // U+2044 fraction slash: `..⁄..⁄etc⁄passwd` (normalize() maps the other slash look-alikes)
  const s = s0.indexOf('\u2044') === -1 ? s0 : s0.replaceAll('\u2044', '/');
  if (!LFI_CANDIDATE.test(s)) return undefined;
  let p = s.indexOf('..');
  while (p !== -1) {
    let j = p + 2;
    while (s.charCodeAt(j) === 46) j++; // ....// filter evasion
    const c = s.charCodeAt(j);
    const prev0 = p === 0 ? 47 : s.charCodeAt(p - 1);
    // `..;` as a whole segment: `;` starts a path parameter (Tomcat, Jetty and Spring read `..;x` as `..`),
    // also `;..;` where `;` separates segments (CRS 930110 `(?:^|[/;\\])\.{2,3}[/;\\]`)
    if (c === 59 && j - p <= 3 && (prev0 === 47 || prev0 === 92 || prev0 === 59)) return { rule: 'traversal', index: p, paranoia: 1 };
    const slash = c === 47 || c === 92 || (c === 59 && s.charCodeAt(j + 1) === 47);
    if (slash && (j - p === 2 || s.charCodeAt(j + 1) === 47 || s.charCodeAt(j + 1) === 92)) {
      const prev = p === 0 ? 47 : s.charCodeAt(p - 1);
      if (
        j - p > 2 ||
        prev === 47 ||
        prev === 92 ||
        prev === 32 ||
        prev === 61 ||
        prev === 34 ||
        prev === 39 ||
        prev === 58 ||
        prev === 59 ||
        prev === 0 ||
        p === 0
      ) {
        return { rule: 'traversal', index: p, paranoia: 1 };
      }
    }
    p = s.indexOf('..', j);
  }
  // hex-spelt dots and slashes (`0x2e0x2e0x2f`, `0x5c0x2e`): an evasion of traversal filters
  const hx = s.indexOf('0x');
  if (hx !== -1 && /(?:0x(?:2e|2f|5c)){2}/.test(s)) return { rule: 'encoded-traversal', index: hx, paranoia: 1 };
  // compressed or split database dumps (`backup.sql.gz`, `db.sql.zip`, `dump.sql.r00`): CRS lfi-os-files.data
  const sq = s.indexOf('.sql.');
  if (sq !== -1 && SQL_DUMP.test(s.slice(sq + 5, sq + 12))) return { rule: 'sensitive-file:sql-dump', index: sq, paranoia: 1 };
  // one regex pass decides whether the needle list can match at all (keeps the common case cheap)
  if (ANCHOR.test(s) || SYS_DIR_END.test(s)) {
    for (const [unix, win] of SENSITIVE_LIST) {
      let q = s.indexOf(unix);
      if (q === -1 && win !== unix) q = s.indexOf(win);
      // a directory entry (`sys/class/`) also matches at the very end of the value (`/sys/class`)
      if (q === -1 && unix.endsWith('/') && s.endsWith(unix.slice(0, -1)) && s.length >= unix.length) q = s.length - unix.length + 1;
      if (q === -1) continue;
      // a bare `.env` or `home/` inside a word is not a file reference
      const prev = q === 0 ? 47 : s.charCodeAt(q - 1);
      if (unix.startsWith('.') || unix === 'home/' || unix === 'root/.' || unix === 'var/log/' || unix === 'web-inf/' || unix === 'meta-inf/') {
        if (!(prev === 47 || prev === 92 || prev === 61 || q === 0 || prev === 32 || prev === 126)) continue;
        if (unix === '.env' && /[a-z0-9_]/.test(s.charAt(q + 4))) continue;
      } else if (!(prev === 47 || prev === 92 || prev === 61 || q === 0 || prev === 32 || prev === 58 || prev === 34 || prev === 39 || prev === 126)) {
        if (!(unix.startsWith('etc/') || unix.startsWith('proc/'))) continue;
        if (prev !== 47 && prev !== 92) continue;
      }
      return { rule: `sensitive-file:${unix}`, index: q, paranoia: unix.startsWith('home/') || unix === 'var/log/' ? 2 : 1 };
    }
  }
  if (s.indexOf(':') !== -1) {
    const m = WRAPPER_RE.exec(s);
    if (m) return { rule: `wrapper:${m[0]}`, index: m.index, paranoia: 1 };
  }
  return undefined;
}
