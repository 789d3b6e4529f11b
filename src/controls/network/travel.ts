/**
 * Impossible travel and network binding: the per-identity location history and the per-token
 * "first seen" network, kept in the state store (bounded, TTL'd), and the decisions over them.
 *
 * Impossible travel compares each sighting with the previous one of the same identity: an implied
 * ground speed (great-circle distance / elapsed time) over a threshold — 900 km/h by default, about
 * an airliner's cruise — or a change of country or autonomous system within a short window.
 * (The technique of NIST SP 800-207 §2.1 "dynamic policy" / behavioural attributes; Microsoft Entra
 * ID Protection and Okta call it "impossible travel" / "velocity".)
 */
import { createHash } from 'node:crypto';
import { type GeoInfo, haversineKm } from '../../geo/index.ts';

/** One sighting of an identity: when and where (what the database knew). Stored as JSON. */
export interface Sighting {
  /** Epoch milliseconds. */
  t: number;
  /** Latitude / longitude, degrees (absent when the database has no coordinates for the address). */
  lat?: number;
  lon?: number;
  /** ISO 3166-1 alpha-2 country. */
  cc?: string;
  asn?: number;
}

/** Thresholds of {@link assessTravel}. */
export interface TravelRules {
  /** Implied speed above which travel is impossible, km/h. */
  maxSpeedKmh: number;
  /** Distances up to this many km never count (geolocation of the same user jitters by city), km. */
  minDistanceKm: number;
  /** A new country within this many ms of the previous sighting fires (0 = off), ms. */
  newCountryWindowMs: number;
  /** A new autonomous system within this many ms fires (0 = off), ms. */
  newAsnWindowMs: number;
}

/** Why a sighting is suspicious, for the event (no coordinates: city-level locations are personal data). */
export interface TravelFinding {
  reason: 'speed' | 'new-country' | 'new-asn';
  from_country?: string;
  to_country?: string;
  distance_km?: number;
  speed_kmh?: number;
  elapsed_s: number;
  from_asn?: number;
  to_asn?: number;
}

/** Builds the sighting of `geo` at `now` (ms). */
export function sightingOf(geo: GeoInfo, now: number): Sighting {
  const s: Sighting = { t: now };
  if (geo.latitude !== undefined && geo.longitude !== undefined) {
    s.lat = Math.round(geo.latitude * 1e4) / 1e4;
    s.lon = Math.round(geo.longitude * 1e4) / 1e4;
  }
  if (geo.country !== undefined) s.cc = geo.country;
  if (geo.asn !== undefined) s.asn = geo.asn;
  return s;
}

/** Parses a stored sighting; `undefined` when absent or not a sighting. */
export function parseSighting(v: string | null): Sighting | undefined {
  if (v === null) return undefined;
  try {
    const o = JSON.parse(v) as Sighting;
    return typeof o === 'object' && o !== null && typeof o.t === 'number' ? o : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Compares the current sighting with the previous one.
 * @returns the first rule broken (speed, then country, then ASN), or `undefined`.
 */
export function assessTravel(prev: Sighting, cur: Sighting, rules: TravelRules): TravelFinding | undefined {
  const elapsedMs = Math.max(0, cur.t - prev.t);
  const elapsed_s = Math.round(elapsedMs / 1000);
  if (prev.lat !== undefined && prev.lon !== undefined && cur.lat !== undefined && cur.lon !== undefined) {
    const d = haversineKm(prev.lat, prev.lon, cur.lat, cur.lon);
    if (d > rules.minDistanceKm) {
      const hours = elapsedMs / 3_600_000;
      const speed = hours === 0 ? Number.POSITIVE_INFINITY : d / hours;
      if (speed > rules.maxSpeedKmh) {
        return {
          reason: 'speed',
          from_country: prev.cc,
          to_country: cur.cc,
          distance_km: Math.round(d),
          speed_kmh: Number.isFinite(speed) ? Math.round(speed) : -1,
          elapsed_s,
        };
      }
    }
  }
  if (rules.newCountryWindowMs > 0 && prev.cc !== undefined && cur.cc !== undefined && prev.cc !== cur.cc && elapsedMs < rules.newCountryWindowMs) {
    return { reason: 'new-country', from_country: prev.cc, to_country: cur.cc, elapsed_s };
  }
  if (rules.newAsnWindowMs > 0 && prev.asn !== undefined && cur.asn !== undefined && prev.asn !== cur.asn && elapsedMs < rules.newAsnWindowMs) {
    return { reason: 'new-asn', from_asn: prev.asn, to_asn: cur.asn, elapsed_s };
  }
  return undefined;
}

/** A short, stable store-key component for `parts` (base64url of the first 16 bytes of SHA-256). */
export function keyHash(...parts: (string | undefined)[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p ?? '').update('\n');
  return h.digest('base64url').slice(0, 22);
}

/**
 * Store key of a revoked access token `jti`, in the format the `identity` control checks on every
 * request (`identity:revoked-jti:<jti>`, value `1`, TTL at least the token's remaining lifetime;
 * see `revokedJtiKey` in src/controls/identity/index.ts and `rampart tokens revoke`). Written here
 * rather than imported, because a control never imports another control.
 */
export function revokedJtiStoreKey(jti: string): string {
  return `identity:revoked-jti:${jti}`;
}
