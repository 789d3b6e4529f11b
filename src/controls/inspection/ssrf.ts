/**
 * Server-side request forgery (OWASP API Security Top 10 2023 API7; CWE-918; OWASP SSRF Prevention
 * Cheat Sheet): URL-valued parameters whose host is loopback, private (RFC 1918), shared (RFC 6598),
 * link-local (RFC 3927), unspecified, unique-local/link-local IPv6 (RFC 4193, RFC 4291) or a cloud
 * metadata endpoint, in every spelling an URL parser accepts: dotted, decimal (`2130706433`),
 * hexadecimal (`0x7f000001`, `0x7f.1`), octal (`0177.0.0.1`), shortened (`127.1`) and IPv4-mapped /
 * IPv4-compatible / NAT64 IPv6 (`[::ffff:127.0.0.1]`, `[::ffff:7f00:1]`). URLs are read as the
 * WHATWG URL Standard reads them (Node's `fetch`/undici, browsers): `http:10.0.0.1`,
 * `http:/\10.0.0.1`, tab/newline inside the host, IDNA full stops (`169。254。169。254`) and ignorable
 * code points. Also `*.localhost` (RFC 6761 §6.3), the wildcard-DNS services that spell an address
 * in the name (`127.0.0.1.nip.io`, `localtest.me`), and schemes that only serve SSRF (`gopher:`,
 * `dict:`). Host names an attacker controls that resolve to internal addresses (DNS rebinding)
 * cannot be seen in the request: that needs the egress side to resolve and check. Linear in the value.
 */

/** A detected SSRF target. */
export interface SsrfHit {
  rule: string;
  index: number;
  paranoia: number;
}

const METADATA_HOSTS = new Set([
  'metadata.google.internal',
  'metadata',
  'metadata.azure.internal',
  'instance-data',
  'instance-data.ec2.internal',
  'metadata.packet.net',
  'metadata.oraclecloud.com',
]);

/**
 * Parses an IPv4 host the way the WHATWG URL Standard §3.5 ("IPv4 parser") does: one to four parts,
 * each decimal, `0x` hexadecimal or `0`-prefixed octal; the last part fills the remaining bytes.
 * @returns the address as an unsigned 32-bit number and the spelling (`dotted`, `decimal`, `hex`,
 *   `octal`, `short`), or `undefined` when `host` is not an IPv4 address.
 */
export function parseIPv4(host: string): { addr: number; form: string } | undefined {
  let h = host;
  if (h.endsWith('.')) h = h.slice(0, -1);
  const parts = h.split('.');
  if (parts.length === 0 || parts.length > 4) return undefined;
  const nums: number[] = [];
  let form = parts.length === 4 ? 'dotted' : parts.length === 1 ? 'decimal' : 'short';
  for (const p of parts) {
    let v: number;
    if (p === '') return undefined;
    if (/^0x[0-9a-f]*$/.test(p)) {
      v = p.length === 2 ? 0 : Number.parseInt(p.slice(2), 16);
      form = 'hex';
    } else if (/^0[0-7]+$/.test(p)) {
      v = Number.parseInt(p.slice(1), 8);
      form = 'octal';
    } else if (/^[0-9]+$/.test(p)) v = Number(p);
    else return undefined;
    if (!Number.isFinite(v)) return undefined;
    nums.push(v);
  }
  const last = nums[nums.length - 1] as number;
  for (let i = 0; i < nums.length - 1; i++) if ((nums[i] as number) > 255) return undefined;
  if (last >= 256 ** (5 - nums.length)) return undefined;
  let addr = last;
  for (let i = 0; i < nums.length - 1; i++) addr += (nums[i] as number) * 256 ** (3 - i);
  return { addr: addr >>> 0, form };
}

/** Why an IPv4 address is internal, or `undefined` when it is public. */
export function internalIPv4(a: number): string | undefined {
  const b0 = a >>> 24;
  const b1 = (a >>> 16) & 255;
  if (b0 === 127) return 'loopback';
  // 0.0.0.0 reaches the local host (Linux, macOS); the rest of 0.0.0.0/8 is no destination (RFC 6890 §2.2.2)
  if (a === 0) return 'unspecified';
  if (b0 === 10 || (b0 === 172 && b1 >= 16 && b1 <= 31) || (b0 === 192 && b1 === 168)) return 'private';
  if (b0 === 169 && b1 === 254) return a === 0xa9fea9fe ? 'cloud-metadata' : 'link-local';
  if (b0 === 100 && b1 >= 64 && b1 <= 127) return a === 0x646464c8 ? 'cloud-metadata' : 'shared';
  if (b0 === 198 && (b1 === 18 || b1 === 19)) return 'benchmarking';
  if (b0 >= 224) return 'multicast-or-reserved';
  return undefined;
}

/** Expands an IPv6 literal (no brackets, no zone) to eight 16-bit groups; `undefined` when malformed. */
export function parseIPv6(h: string): number[] | undefined {
  let s = h;
  const pct = s.indexOf('%');
  if (pct !== -1) s = s.slice(0, pct);
  let tail: number[] = [];
  const lastColon = s.lastIndexOf(':');
  if (s.indexOf('.', lastColon) !== -1) {
    const v4 = parseIPv4(s.slice(lastColon + 1));
    if (v4 === undefined) return undefined;
    tail = [v4.addr >>> 16, v4.addr & 0xffff];
    s = s.slice(0, lastColon + 1);
    if (!s.endsWith('::')) s = s.slice(0, -1);
  }
  const dbl = s.indexOf('::');
  const parseGroups = (x: string): number[] | undefined => {
    if (x === '') return [];
    const out: number[] = [];
    for (const g of x.split(':')) {
      if (!/^[0-9a-f]{1,4}$/.test(g)) return undefined;
      out.push(Number.parseInt(g, 16));
    }
    return out;
  };
  let groups: number[] | undefined;
  if (dbl !== -1) {
    const head = parseGroups(s.slice(0, dbl));
    const rest = parseGroups(s.slice(dbl + 2));
    if (head === undefined || rest === undefined) return undefined;
    const fill = 8 - head.length - rest.length - tail.length;
    if (fill < 0) return undefined;
    groups = [...head, ...new Array<number>(fill).fill(0), ...rest, ...tail];
  } else {
    const g = parseGroups(s);
    if (g === undefined) return undefined;
    groups = [...g, ...tail];
  }
  return groups.length === 8 ? groups : undefined;
}

/** Why an IPv6 address is internal (including embedded IPv4 forms), or `undefined`. */
export function internalIPv6(g: number[]): string | undefined {
  const zeroTo = (k: number): boolean => g.slice(0, k).every((x) => x === 0);
  if (zeroTo(7) && g[7] === 1) return 'loopback';
  if (zeroTo(8)) return 'unspecified';
  const v4 = (((g[6] as number) << 16) | (g[7] as number)) >>> 0;
  if (zeroTo(5) && g[5] === 0xffff) return internalIPv4(v4) ? `ipv4-mapped-${internalIPv4(v4)}` : undefined; // ::ffff:a.b.c.d
  if (zeroTo(6)) return internalIPv4(v4) ? `ipv4-compatible-${internalIPv4(v4)}` : undefined; // ::a.b.c.d
  if (g[0] === 0x64 && g[1] === 0xff9b && internalIPv4(v4)) return `nat64-${internalIPv4(v4)}`;
  const g0 = g[0] as number;
  if ((g0 & 0xfe00) === 0xfc00) return g0 === 0xfd00 && g[1] === 0xec2 ? 'cloud-metadata' : 'unique-local';
  if ((g0 & 0xffc0) === 0xfe80) return 'link-local';
  return undefined;
}

const IPV4_CHARS = /^[0-9a-fx.]+$/;

/**
 * Host names of public wildcard-DNS services that answer with the address spelt in the name
 * (`10.0.0.1.nip.io`, `app-127-0-0-1.sslip.io`, `app-7f000001.nip.io`, `--1.sslip.io`).
 */
const IP_IN_NAME_SUFFIXES = ['.nip.io', '.sslip.io', '.xip.io'];
/** Public domains whose every name resolves to 127.0.0.1 (`localtest.me`, `lvh.me`, `vcap.me` and subdomains). */
const LOOPBACK_DOMAINS = ['localtest.me', 'lvh.me', 'vcap.me'];

/** Whether `h` is `d` or a subdomain of it. */
function inDomain(h: string, d: string): boolean {
  return h === d || (h.endsWith(d) && h.charCodeAt(h.length - d.length - 1) === 46);
}

/**
 * Why the address a wildcard-DNS name spells (the labels before `.nip.io` and the like) is
 * internal: the last four dotted labels, the last four dash-separated parts of the last label,
 * its last part as eight hex digits, or a dashed IPv6 address (`--1`); `undefined` otherwise.
 */
function addressInName(name: string): string | undefined {
  const labels = name.split('.');
  if (labels.length >= 4) {
    const dotted = labels.slice(-4);
    if (dotted.every((l) => /^[0-9]{1,3}$/.test(l))) {
      const v4 = parseIPv4(dotted.join('.'));
      if (v4 !== undefined) return internalIPv4(v4.addr);
    }
  }
  const last = labels[labels.length - 1] as string;
  if (last.includes('--')) {
    const g = parseIPv6(last.replaceAll('-', ':'));
    if (g !== undefined) return internalIPv6(g);
  }
  const parts = last.split('-');
  if (parts.length >= 4 && parts.slice(-4).every((l) => /^[0-9]{1,3}$/.test(l))) {
    const v4 = parseIPv4(parts.slice(-4).join('.'));
    if (v4 !== undefined) return internalIPv4(v4.addr);
  }
  const tail = parts[parts.length - 1] as string;
  if (/^[0-9a-f]{8}$/.test(tail)) return internalIPv4(Number.parseInt(tail, 16) >>> 0);
  return undefined;
}

/** Classifies a URL host (lower case, brackets allowed); `undefined` when not internal. */
export function classifyHost(rawHost: string): string | undefined {
  let h = rawHost;
  if (h.startsWith('[')) {
    const e = h.indexOf(']');
    const g = parseIPv6(h.slice(1, e === -1 ? undefined : e));
    return g ? internalIPv6(g) : undefined;
  }
  if (h.endsWith('.')) h = h.slice(0, -1);
  if (h === 'localhost' || h.endsWith('.localhost') || h === 'localhost.localdomain' || h === 'ip6-localhost' || h === 'ip6-loopback') return 'loopback';
  if (METADATA_HOSTS.has(h)) return 'cloud-metadata';
  if (h.charCodeAt(h.length - 1) === 111 /* o */ || h.charCodeAt(h.length - 1) === 101 /* e */) {
    for (const d of LOOPBACK_DOMAINS) if (inDomain(h, d)) return 'loopback-wildcard-dns';
    for (const suffix of IP_IN_NAME_SUFFIXES) {
      if (!h.endsWith(suffix)) continue;
      const why = addressInName(h.slice(0, -suffix.length));
      return why === undefined ? undefined : `${why}-wildcard-dns`;
    }
  }
  // an IPv4 literal in any spelling has only digits, dots and hex digits after 0x: a host name is not one
  if (!IPV4_CHARS.test(h)) return undefined;
  const v4 = parseIPv4(h);
  if (v4 === undefined) return undefined;
  const why = internalIPv4(v4.addr);
  return why === undefined ? undefined : v4.form === 'dotted' ? why : `${why}-${v4.form}`;
}

function isSchemeChar(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 43 || c === 46 || c === 45;
}

/**
 * Whether `s.slice(a, c)` is a WHATWG URL Standard §4.1 "special scheme" whose URLs carry a host a
 * server-side client fetches (`http`, `https`, `ws`, `wss`, `ftp`): after `scheme:` any run of `/`
 * and `\` (also none at all: `http:10.0.0.1`) starts the authority ("special authority ignore
 * slashes state"). `file` is special too but is LFI's business. No copy.
 */
function isSpecialScheme(s: string, a: number, c: number): boolean {
  switch (c - a) {
    case 2:
      return s.startsWith('ws', a);
    case 3:
      return s.startsWith('wss', a) || s.startsWith('ftp', a);
    case 4:
      return s.startsWith('http', a);
    case 5:
      return s.startsWith('https', a);
    default:
      return false;
  }
}

const SSRF_ONLY_SCHEMES = ['gopher://', 'dict://', 'ldap://', 'tftp://', 'sftp://', 'jar:http', 'netdoc://'];
/** First code units of {@link SSRF_ONLY_SCHEMES}: any other scheme start skips the list. */
const SSRF_ONLY_FIRST = new Set(SSRF_ONLY_SCHEMES.map((x) => x.charCodeAt(0)));

/**
 * Whether `s.slice(start, end)` (a URL host, lower case, ASCII) can be one {@link classifyHost}
 * reports: an IPv6 literal, a name starting like `localhost`, `ip6-…`, `instance-data` or
 * `metadata…`, a name ending in `localhost`, `.io` or `.me` (the wildcard-DNS services), or only
 * IPv4 characters (digits, hex digits, `x`, dots). A cheap necessary condition (no copy, no
 * hashing): ordinary public host names (`shop.example.com`) fail it.
 */
function mayBeInternalHost(s: string, start: number, end: number): boolean {
  const c = s.charCodeAt(start);
  if (c === 91 /* [ */ || c === 108 /* l */ || c === 105 /* i */ || c === 109 /* m */) return true;
  let e = end;
  if (s.charCodeAt(e - 1) === 46) e--;
  if (e - start >= 9 && s.startsWith('localhost', e - 9)) return true;
  if (e - start >= 3 && (s.startsWith('.io', e - 3) || s.startsWith('.me', e - 3))) return true;
  for (let i = start; i < end; i++) {
    const d = s.charCodeAt(i);
    // IPV4_CHARS: 0-9 a-f x .
    if (!((d >= 48 && d <= 57) || (d >= 97 && d <= 102) || d === 120 || d === 46)) return false;
  }
  return true;
}

/**
 * The host as a WHATWG URL parser sees it, for a host range holding tab/newline or non-ASCII code
 * units: ASCII tab and newline are removed from the whole URL (URL Standard §4.4 basic URL parser),
 * the IDNA full stops U+3002, U+FF0E, U+FF61 and U+FE12 become `.` (UTS #46 mapping), and every
 * other non-ASCII code point is dropped. The last over-approximates UTS #46, which ignores the
 * default-ignorables (soft hyphen, zero-width space, variation selectors) and turns real
 * internationalised labels into `xn--` names: neither can make an internal address out of an
 * external one, while a dropped ignorable can hide one (`127.0\u00ad.0.1`).
 */
function cleanHost(s: string, start: number, end: number): string {
  let out = '';
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c === 9 || c === 10 || c === 13) continue;
    if (c < 128) out += s[i];
    else if (c === 0x3002 || c === 0xff0e || c === 0xff61 || c === 0xfe12) out += '.';
  }
  return out;
}

/** Where the authority {@link checkAuthority} last read ends (a module variable: no result object per URL). */
let authorityEnd = 0;

/**
 * Classifies the host of the authority starting at `from` (after the scheme's slashes); sets
 * {@link authorityEnd}.
 * @returns the reason the host is internal, or `undefined`.
 */
function checkAuthority(s: string, from: number): string | undefined {
  // authority: up to / \ ? # or a character no host has (space, quotes, angle brackets)
  let e = from;
  let dirty = false;
  while (e < s.length) {
    const c = s.charCodeAt(e);
    if (c === 47 || c === 63 || c === 35 || c === 32 || c === 92 || c === 34 || c === 39 || c === 60 || c === 62) break;
    if (c === 9 || c === 10 || c === 13 || c >= 128) dirty = true;
    e++;
  }
  let h = s;
  let hs = from;
  let he0 = e;
  if (dirty) {
    h = cleanHost(s, from, e);
    hs = 0;
    he0 = h.length;
  }
  // host: after the last `@` of the authority, up to `]` (IPv6 literal) or the port's `:`
  let a = he0;
  while (a > hs && h.charCodeAt(a - 1) !== 64) a--;
  let he = a;
  if (h.charCodeAt(a) === 91 /* [ */) {
    while (he < he0 && h.charCodeAt(he) !== 93) he++;
    he = he < he0 ? he + 1 : he0;
  } else while (he < he0 && h.charCodeAt(he) !== 58) he++;
  authorityEnd = e;
  return he > a && mayBeInternalHost(h, a, he) ? classifyHost(h.slice(a, he)) : undefined;
}

/** `/`, `\`, tab, LF or CR: what a special URL skips between `scheme:` and the authority. */
function isAuthoritySlash(c: number): boolean {
  return c === 47 || c === 92 || c === 9 || c === 10 || c === 13;
}

/**
 * Detects SSRF in a normalised (decoded, lower-case) value, reading URLs as the WHATWG URL Standard
 * (and so Node's `fetch`/undici) does: after a special scheme (`http:`, `https:`, `ws:`, `wss:`,
 * `ftp:`) any run of `/` and `\`, also none, starts the authority (`http:169.254.169.254`,
 * `http:/\10.0.0.1`); other schemes need `//`; a value starting with two slashes or backslashes is
 * a scheme-relative URL. Each host is checked after removing tab/newline and mapping the IDNA full
 * stops (see {@link cleanHost}). Linear: every colon is looked at once, and the search resumes after
 * each authority read.
 * @returns the first hit, or `undefined`.
 */
export function detectSsrf(s: string): SsrfHit | undefined {
  const n = s.length;
  if (n > 2 && (s.charCodeAt(0) === 47 || s.charCodeAt(0) === 92) && (s.charCodeAt(1) === 47 || s.charCodeAt(1) === 92)) {
    let f = 2;
    while (f < n && isAuthoritySlash(s.charCodeAt(f))) f++;
    const why = checkAuthority(s, f);
    if (why !== undefined) return { rule: `internal-host:${why}`, index: 0, paranoia: 1 };
  }
  let c = s.indexOf(':');
  while (c !== -1) {
    let next = c + 1;
    // scheme before ':' (a letter, then letters, digits, + - .), at most 32 characters back
    let a = c;
    while (a > 0 && c - a < 32 && isSchemeChar(s.charCodeAt(a - 1))) a--;
    while (a < c && !(s.charCodeAt(a) >= 97 && s.charCodeAt(a) <= 122)) a++;
    if (a < c) {
      const slashes = s.charCodeAt(c + 1) === 47 && s.charCodeAt(c + 2) === 47;
      if (SSRF_ONLY_FIRST.has(s.charCodeAt(a)) && SSRF_ONLY_SCHEMES.some((x) => s.startsWith(x, a)))
        return { rule: `scheme:${s.slice(a, c)}`, index: a, paranoia: 1 };
      let from = -1;
      const len = c - a;
      if (isSpecialScheme(s, a, c)) {
        from = c + 1;
        while (from < n && isAuthoritySlash(s.charCodeAt(from))) from++;
      } else if (slashes && !(len === 4 && s.startsWith('file', a))) from = c + 3;
      if (from !== -1) {
        const why = checkAuthority(s, from);
        if (why !== undefined) return { rule: `internal-host:${why}`, index: a, paranoia: 1 };
        if (authorityEnd > next) next = authorityEnd;
      }
    }
    c = s.indexOf(':', next);
  }
  return undefined;
}
