/**
 * Server-side request forgery (OWASP API Security Top 10 2023 API7; CWE-918; OWASP SSRF Prevention
 * Cheat Sheet): URL-valued parameters whose host is loopback, private (RFC 1918), shared (RFC 6598),
 * link-local (RFC 3927), unspecified, unique-local/link-local IPv6 (RFC 4193, RFC 4291) or a cloud
 * metadata endpoint, in every spelling an URL parser accepts: dotted, decimal (`2130706433`),
 * hexadecimal (`0x7f000001`, `0x7f.1`), octal (`0177.0.0.1`), shortened (`127.1`) and IPv4-mapped /
 * IPv4-compatible / NAT64 IPv6 (`[::ffff:127.0.0.1]`, `[::ffff:7f00:1]`). Also schemes that only
 * serve SSRF (`gopher:`, `dict:`). Linear in the value.
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
  if (b0 === 0) return 'unspecified';
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

const SSRF_ONLY_SCHEMES = ['gopher://', 'dict://', 'ldap://', 'tftp://', 'sftp://', 'jar:http', 'netdoc://'];
/** First code units of {@link SSRF_ONLY_SCHEMES}: any other scheme start skips the list. */
const SSRF_ONLY_FIRST = new Set(SSRF_ONLY_SCHEMES.map((x) => x.charCodeAt(0)));

/**
 * Whether `s.slice(start, end)` (a URL host, lower case) can be one {@link classifyHost} reports:
 * an IPv6 literal, a name starting like `localhost`, `ip6-…`, `instance-data` or `metadata…`, a name
 * ending in `localhost`, or only IPv4 characters (digits, hex digits, `x`, dots). A cheap necessary
 * condition (no copy, no hashing): ordinary public host names (`shop.example.com`) fail it.
 */
function mayBeInternalHost(s: string, start: number, end: number): boolean {
  const c = s.charCodeAt(start);
  if (c === 91 /* [ */ || c === 108 /* l */ || c === 105 /* i */ || c === 109 /* m */) return true;
  let e = end;
  if (s.charCodeAt(e - 1) === 46) e--;
  if (e - start >= 9 && s.startsWith('localhost', e - 9)) return true;
  for (let i = start; i < end; i++) {
    const d = s.charCodeAt(i);
    // IPV4_CHARS: 0-9 a-f x .
    if (!((d >= 48 && d <= 57) || (d >= 97 && d <= 102) || d === 120 || d === 46)) return false;
  }
  return true;
}

/**
 * Detects SSRF in a normalised (decoded, lower-case) value: every `scheme://host` (and `//host`)
 * in it is checked.
 * @returns the first hit, or `undefined`.
 */
export function detectSsrf(s: string): SsrfHit | undefined {
  let p = s.indexOf('//');
  while (p !== -1) {
    // scheme before '//' (letters, digits, + - .), or a scheme-relative URL at the start
    let a = s.charCodeAt(p - 1) === 58 ? p - 1 : p;
    while (a > 0 && p - a < 32 && isSchemeChar(s.charCodeAt(a - 1))) a--;
    const schemed = s.charCodeAt(p - 1) === 58 && a < p - 1;
    if (schemed || p === 0) {
      if (SSRF_ONLY_FIRST.has(s.charCodeAt(a)) && SSRF_ONLY_SCHEMES.some((x) => s.startsWith(x, a)))
        return { rule: `scheme:${schemed ? s.slice(a, p - 1) : ''}`, index: a, paranoia: 1 };
      // authority: up to / ? # or whitespace; strip userinfo and port
      let e = p + 2;
      while (e < s.length) {
        const c = s.charCodeAt(e);
        if (c === 47 || c === 63 || c === 35 || c === 32 || c === 92 || c === 34 || c === 39 || c === 60 || c === 62) break;
        e++;
      }
      // host: after the last `@` of the authority, up to `]` (IPv6 literal) or the port's `:`
      let hs = e;
      while (hs > p + 2 && s.charCodeAt(hs - 1) !== 64) hs--;
      let he = hs;
      if (s.charCodeAt(hs) === 91 /* [ */) {
        while (he < e && s.charCodeAt(he) !== 93) he++;
        he = he < e ? he + 1 : e;
      } else while (he < e && s.charCodeAt(he) !== 58) he++;
      if (he > hs && mayBeInternalHost(s, hs, he)) {
        const why = classifyHost(s.slice(hs, he));
        if (why !== undefined && !(schemed && p - 1 - a === 4 && s.startsWith('file', a))) return { rule: `internal-host:${why}`, index: a, paranoia: 1 };
      }
    }
    p = s.indexOf('//', p + 2);
  }
  return undefined;
}
