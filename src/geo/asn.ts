/**
 * IP address → autonomous system (RFC 1930) over the shipped `@ip-location-db/asn` data:
 * Route Views, the five RIRs' delegation statistics and DB-IP IP to ASN Lite, merged by
 * ip-location-db (CC BY 4.0; attribution "IP to ASN data by Route Views and DB-IP").
 *
 * The package has no MMDB file, only CSV: `asn-ipv4-num.csv` and `asn-ipv6-num.csv`, one range a
 * line, `start,end,asn,org` with the addresses as decimal integers (IPv4 as 32-bit, IPv6 as 128-bit
 * numbers), `org` quoted with `""` escapes when it holds a comma or a quote (RFC 4180 §2).
 * They are parsed once per process, on first use, into sorted typed arrays searched by bisection:
 * - IPv4: `Uint32Array` starts, ends, ASNs and org indexes (16 bytes a range);
 * - IPv6: `BigUint64Array` high and low halves of starts and ends (32 bytes a range) plus
 *   `Uint32Array` ASNs and org indexes;
 * - organisation names deduplicated into one string array.
 * Where two ranges overlap (one case in the IPv4 file), the later, starting higher, wins its span.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { isIP } from 'node:net';

/** What the ASN table knows about an address. */
export interface AsnInfo {
  /** Autonomous system number. */
  asn: number;
  /** Organisation name of the AS (absent when the data has none). */
  org?: string;
}

/** Sizes of a loaded {@link AsnTable}. */
export interface AsnTableStats {
  v4Ranges: number;
  v6Ranges: number;
  /** Distinct organisation names. */
  orgs: number;
  /** Bytes held by the typed arrays (the org strings come on top). */
  arrayBytes: number;
  /** Overlapping ranges trimmed at load. */
  trimmed: number;
}

const require = createRequire(import.meta.url);
const MASK64 = (1n << 64n) - 1n;

/**
 * Absolute paths of the shipped CSV files.
 * @throws {Error} when the `@ip-location-db/asn` package is not installed.
 */
export function defaultAsnFiles(): { v4: string; v6: string } {
  return { v4: require.resolve('@ip-location-db/asn/asn-ipv4-num.csv'), v6: require.resolve('@ip-location-db/asn/asn-ipv6-num.csv') };
}

/**
 * Scans an ip-location-db numeric CSV buffer, calling `row(line, s0, s1, e0, e1, asn, org)` for
 * each non-empty line with the byte offsets of the start and end numbers, the AS number and the
 * index of the organisation name (deduplicated through `orgOf`; a line whose org bytes equal the
 * previous line's is not decoded again).
 * @throws {Error} `line N: ...` on a malformed line.
 */
function scanCsv(
  buf: Buffer,
  orgOf: (o: string) => number,
  row: (line: number, s0: number, s1: number, e0: number, e1: number, asn: number, org: number) => void,
): void {
  const n = buf.length;
  let pos = 0;
  let line = 0;
  let prevOrgAt = -1;
  let prevOrgEnd = -1;
  let prevOrg = 0;
  while (pos < n) {
    line++;
    let eol = buf.indexOf(10, pos);
    if (eol === -1) eol = n;
    let stop = eol;
    if (stop > pos && buf[stop - 1] === 13) stop--;
    if (stop === pos) {
      pos = eol + 1;
      continue;
    }
    let c1 = pos;
    while (c1 < stop && buf[c1] !== 44) c1++;
    let c2 = c1 + 1;
    while (c2 < stop && buf[c2] !== 44) c2++;
    let asn = 0;
    let c3 = c2 + 1;
    for (; c3 < stop; c3++) {
      const d = (buf[c3] as number) - 48;
      if (d < 0 || d > 9) break;
      asn = asn * 10 + d;
    }
    if (c3 >= stop || buf[c3] !== 44 || c3 === c2 + 1 || asn > 0xffffffff) throw new Error(`line ${line}: expected start,end,asn,org`);
    for (let i = pos; i < c2; i++) {
      const d = (buf[i] as number) - 48;
      if ((d < 0 || d > 9) && i !== c1) throw new Error(`line ${line}: invalid address number`);
    }
    if (c1 === pos || c2 === c1 + 1 || c1 - pos > 39 || c2 - c1 - 1 > 39) throw new Error(`line ${line}: invalid address number`);
    const o0 = c3 + 1;
    let org: number;
    if (prevOrgAt !== -1 && stop - o0 === prevOrgEnd - prevOrgAt && buf.compare(buf, prevOrgAt, prevOrgEnd, o0, stop) === 0) org = prevOrg;
    else {
      let text: string;
      if (buf[o0] === 34) {
        if (stop - o0 < 2 || buf[stop - 1] !== 34) throw new Error(`line ${line}: unterminated quoted org`);
        text = buf.toString('utf8', o0 + 1, stop - 1);
        if (text.includes('"')) text = text.replaceAll('""', '"');
      } else text = buf.toString('utf8', o0, stop);
      org = orgOf(text);
    }
    prevOrgAt = o0;
    prevOrgEnd = stop;
    prevOrg = org;
    row(line, pos, c1, c1 + 1, c2, asn, org);
    pos = eol + 1;
  }
}

function countLines(buf: Buffer): number {
  let count = 1;
  for (let i = buf.indexOf(10); i !== -1; i = buf.indexOf(10, i + 1)) count++;
  return count;
}

/** The number of the decimal digits `buf[a..b)` (validated by the scanner; at most 15 digits are exact). */
function smallNumber(buf: Buffer, a: number, b: number): number {
  let v = 0;
  for (let i = a; i < b; i++) v = v * 10 + ((buf[i] as number) - 48);
  return v;
}

/** The 32-bit number of a dotted-quad IPv4 address (already validated by `isIP`). */
export function ipv4ToNumber(ip: string): number {
  let n = 0;
  let part = 0;
  for (let i = 0; i < ip.length; i++) {
    const c = ip.charCodeAt(i);
    if (c === 46) {
      n = n * 256 + part;
      part = 0;
    } else part = part * 10 + (c - 48);
  }
  return n * 256 + part;
}

/**
 * The high and low 64-bit halves of an IPv6 address (already validated by `isIP`; a zone
 * `%eth0` is ignored; an embedded IPv4 tail is handled).
 */
export function ipv6ToHalves(ip: string): [bigint, bigint] {
  let s = ip;
  const pct = s.indexOf('%');
  if (pct !== -1) s = s.slice(0, pct);
  const words = new Array<number>(8).fill(0);
  const lastColon = s.lastIndexOf(':');
  const last = s.slice(lastColon + 1);
  let tailWords = 0;
  if (last.includes('.')) {
    const v4 = ipv4ToNumber(last);
    words[6] = v4 >>> 16;
    words[7] = v4 & 0xffff;
    tailWords = 2;
    s = s.slice(0, lastColon + (s[lastColon - 1] === ':' ? 1 : 0));
  }
  const dbl = s.indexOf('::');
  const parse = (t: string) => (t === '' ? [] : t.split(':').map((x) => Number.parseInt(x, 16)));
  const head = parse(dbl === -1 ? s : s.slice(0, dbl));
  const tail = dbl === -1 ? [] : parse(s.slice(dbl + 2));
  for (let i = 0; i < head.length; i++) words[i] = head[i] as number;
  const tailAt = 8 - tailWords - tail.length;
  for (let i = 0; i < tail.length; i++) words[tailAt + i] = tail[i] as number;
  const w = (i: number) => BigInt(((words[i] as number) * 0x10000 + (words[i + 1] as number)) >>> 0);
  return [(w(0) << 32n) | w(2), (w(4) << 32n) | w(6)];
}

/** A loaded IP → ASN table (immutable). */
export class AsnTable {
  private readonly v4Start: Uint32Array;
  private readonly v4End: Uint32Array;
  private readonly v4Asn: Uint32Array;
  private readonly v4Org: Uint32Array;
  private readonly v6StartHi: BigUint64Array;
  private readonly v6StartLo: BigUint64Array;
  private readonly v6EndHi: BigUint64Array;
  private readonly v6EndLo: BigUint64Array;
  private readonly v6Asn: Uint32Array;
  private readonly v6Org: Uint32Array;
  private readonly orgs: string[];
  readonly stats: AsnTableStats;

  private constructor(
    v4: { start: Uint32Array; end: Uint32Array; asn: Uint32Array; org: Uint32Array },
    v6: { startHi: BigUint64Array; startLo: BigUint64Array; endHi: BigUint64Array; endLo: BigUint64Array; asn: Uint32Array; org: Uint32Array },
    orgs: string[],
    trimmed: number,
  ) {
    this.v4Start = v4.start;
    this.v4End = v4.end;
    this.v4Asn = v4.asn;
    this.v4Org = v4.org;
    this.v6StartHi = v6.startHi;
    this.v6StartLo = v6.startLo;
    this.v6EndHi = v6.endHi;
    this.v6EndLo = v6.endLo;
    this.v6Asn = v6.asn;
    this.v6Org = v6.org;
    this.orgs = orgs;
    const bytes = (a: ArrayBufferView[]) => a.reduce((s, x) => s + x.byteLength, 0);
    this.stats = {
      v4Ranges: v4.start.length,
      v6Ranges: v6.startHi.length,
      orgs: orgs.length - 1,
      arrayBytes: bytes([v4.start, v4.end, v4.asn, v4.org, v6.startHi, v6.startLo, v6.endHi, v6.endLo, v6.asn, v6.org]),
      trimmed,
    };
  }

  /**
   * Parses the two numeric CSV files (see the module comment for the format).
   * @throws {Error} naming the file when it cannot be read, has a malformed line, or is not sorted
   *   by range start.
   */
  static async load(v4File: string, v6File: string): Promise<AsnTable> {
    const orgs: string[] = [''];
    const orgIndex = new Map<string, number>([['', 0]]);
    const orgOf = (o: string): number => {
      let i = orgIndex.get(o);
      if (i === undefined) {
        i = orgs.length;
        orgs.push(o);
        orgIndex.set(o, i);
      }
      return i;
    };
    let trimmed = 0;
    const read = async (file: string): Promise<Buffer> => {
      try {
        return await readFile(file);
      } catch (e) {
        throw new Error(`ASN data file "${file}" cannot be read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
    };
    const [b4, b6] = await Promise.all([read(v4File), read(v6File)]);

    // IPv4
    let cap = countLines(b4);
    const start = new Uint32Array(cap);
    const end = new Uint32Array(cap);
    let asn = new Uint32Array(cap);
    let org = new Uint32Array(cap);
    let k = 0;
    try {
      scanCsv(b4, orgOf, (line, s0, s1, e0, e1, as, o) => {
        const s = s1 - s0 > 10 ? Number.POSITIVE_INFINITY : smallNumber(b4, s0, s1);
        const e = e1 - e0 > 10 ? Number.POSITIVE_INFINITY : smallNumber(b4, e0, e1);
        if (!(s <= e && e <= 0xffffffff)) throw new Error(`line ${line}: invalid range`);
        if (k > 0) {
          const ps = start[k - 1] as number;
          if (s < ps) throw new Error(`line ${line}: ranges are not sorted by start`);
          if (s <= (end[k - 1] as number)) {
            trimmed++;
            if (s === ps) k--;
            else end[k - 1] = s - 1;
          }
        }
        start[k] = s;
        end[k] = e;
        asn[k] = as;
        org[k] = o;
        k++;
      });
    } catch (e) {
      throw new Error(`ASN data file "${v4File}": ${(e as Error).message}`);
    }
    const v4 = { start: start.slice(0, k), end: end.slice(0, k), asn: asn.slice(0, k), org: org.slice(0, k) };

    // IPv6
    cap = countLines(b6);
    const startHi = new BigUint64Array(cap);
    const startLo = new BigUint64Array(cap);
    const endHi = new BigUint64Array(cap);
    const endLo = new BigUint64Array(cap);
    asn = new Uint32Array(cap);
    org = new Uint32Array(cap);
    k = 0;
    let prevStart = -1n;
    let prevEnd = -1n;
    try {
      scanCsv(b6, orgOf, (line, s0, s1, e0, e1, as, o) => {
        const s = BigInt(b6.toString('latin1', s0, s1));
        const e = BigInt(b6.toString('latin1', e0, e1));
        if (!(s <= e && e >> 128n === 0n)) throw new Error(`line ${line}: invalid range`);
        if (k > 0) {
          if (s < prevStart) throw new Error(`line ${line}: ranges are not sorted by start`);
          if (s <= prevEnd) {
            trimmed++;
            if (s === prevStart) k--;
            else {
              endHi[k - 1] = (s - 1n) >> 64n;
              endLo[k - 1] = (s - 1n) & MASK64;
            }
          }
        }
        startHi[k] = s >> 64n;
        startLo[k] = s & MASK64;
        endHi[k] = e >> 64n;
        endLo[k] = e & MASK64;
        asn[k] = as;
        org[k] = o;
        prevStart = s;
        prevEnd = e;
        k++;
      });
    } catch (e) {
      throw new Error(`ASN data file "${v6File}": ${(e as Error).message}`);
    }
    const v6 = {
      startHi: startHi.slice(0, k),
      startLo: startLo.slice(0, k),
      endHi: endHi.slice(0, k),
      endLo: endLo.slice(0, k),
      asn: asn.slice(0, k),
      org: org.slice(0, k),
    };
    return new AsnTable(v4, v6, orgs, trimmed);
  }

  /**
   * Looks `address` up (IPv4-mapped IPv6 as IPv4). Never throws: an invalid address or one in no
   * range gives `undefined`.
   */
  lookup(address: string): AsnInfo | undefined {
    let ip = address;
    let family = isIP(ip);
    if (family === 6 && ip.length > 7 && ip.slice(0, 7).toLowerCase() === '::ffff:' && isIP(ip.slice(7)) === 4) {
      ip = ip.slice(7);
      family = 4;
    }
    if (family === 4) return this.lookupV4(ipv4ToNumber(ip));
    if (family === 6) {
      const [hi, lo] = ipv6ToHalves(ip);
      return this.lookupV6(hi, lo);
    }
    return undefined;
  }

  /** Looks up a 32-bit IPv4 address number. */
  lookupV4(n: number): AsnInfo | undefined {
    const starts = this.v4Start;
    let lo = 0;
    let hi = starts.length - 1;
    let at = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if ((starts[mid] as number) <= n) {
        at = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (at === -1 || n > (this.v4End[at] as number)) return undefined;
    return this.info(this.v4Asn[at] as number, this.v4Org[at] as number);
  }

  /** Looks up an IPv6 address given as its high and low 64-bit halves. */
  lookupV6(aHi: bigint, aLo: bigint): AsnInfo | undefined {
    const sHi = this.v6StartHi;
    const sLo = this.v6StartLo;
    let lo = 0;
    let hi = sHi.length - 1;
    let at = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const h = sHi[mid] as bigint;
      if (h < aHi || (h === aHi && (sLo[mid] as bigint) <= aLo)) {
        at = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (at === -1) return undefined;
    const eh = this.v6EndHi[at] as bigint;
    if (aHi > eh || (aHi === eh && aLo > (this.v6EndLo[at] as bigint))) return undefined;
    return this.info(this.v6Asn[at] as number, this.v6Org[at] as number);
  }

  private info(asn: number, org: number): AsnInfo {
    return org === 0 ? { asn } : { asn, org: this.orgs[org] as string };
  }
}

let shipped: Promise<AsnTable> | undefined;

/**
 * The table of the shipped `@ip-location-db/asn` files, loaded on the first call and shared by
 * every API and reload of the process (about 10 MB of typed arrays plus the org names).
 * @throws {Error} (rejects) naming the file when the package is missing or a file is malformed;
 *   a later call tries again.
 */
export function shippedAsnTable(): Promise<AsnTable> {
  if (shipped === undefined) {
    let p: Promise<AsnTable>;
    try {
      const f = defaultAsnFiles();
      p = AsnTable.load(f.v4, f.v6);
    } catch (e) {
      p = Promise.reject(new Error(`the shipped ASN data (@ip-location-db/asn) is not installed: ${(e as Error).message}`));
    }
    shipped = p;
    p.catch(() => {
      if (shipped === p) shipped = undefined;
    });
  }
  return shipped;
}
