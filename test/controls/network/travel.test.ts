/** Impossible-travel rules (implied speed, new country, new ASN) on stored sightings. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assessTravel, parseSighting, sightingOf, type TravelRules } from '../../../src/controls/network/travel.ts';

const rules: TravelRules = { maxSpeedKmh: 900, minDistanceKm: 300, newCountryWindowMs: 600_000, newAsnWindowMs: 0 };
const NY = { t: 0, lat: 40.7128, lon: -74.006, cc: 'US' };
const LDN = { lat: 51.5074, lon: -0.1278, cc: 'GB' };
const HOUR = 3_600_000;

describe('assessTravel', () => {
  it('New York then London 30 s later is impossible', () => {
    assert.deepEqual(assessTravel(NY, { ...LDN, t: 30_000 }, rules), {
      reason: 'speed',
      from_country: 'US',
      to_country: 'GB',
      distance_km: 5570,
      speed_kmh: 668_428,
      elapsed_s: 30,
    });
  });
  it('New York then London 7 h later is a flight (796 km/h)', () => {
    assert.equal(assessTravel(NY, { ...LDN, t: 7 * HOUR }, rules), undefined);
  });
  it('New York then London 6 h later is not (928 km/h)', () => {
    assert.equal(assessTravel(NY, { ...LDN, t: 6 * HOUR }, rules)?.speed_kmh, 928);
  });
  it('the same instant from two far places has no finite speed', () => {
    assert.equal(assessTravel(NY, { ...LDN, t: 0 }, rules)?.speed_kmh, -1);
  });
  it('moves within min_distance_km never count, however fast', () => {
    assert.equal(assessTravel(NY, { t: 1000, lat: 40.7357, lon: -74.1724, cc: 'US' }, rules), undefined); // Newark, 14 km
  });
  it('a new country within the window fires even when near (Detroit → Windsor)', () => {
    const detroit = { t: 0, lat: 42.3314, lon: -83.0458, cc: 'US' };
    assert.deepEqual(assessTravel(detroit, { t: 60_000, lat: 42.3149, lon: -83.0364, cc: 'CA' }, rules), {
      reason: 'new-country',
      from_country: 'US',
      to_country: 'CA',
      elapsed_s: 60,
    });
    assert.equal(assessTravel(detroit, { t: 600_000, lat: 42.3149, lon: -83.0364, cc: 'CA' }, rules), undefined);
  });
  it('a new ASN fires only when its window is on', () => {
    const a = { t: 0, cc: 'US', asn: 7922 };
    const b = { t: 1000, cc: 'US', asn: 15169 };
    assert.equal(assessTravel(a, b, rules), undefined);
    assert.deepEqual(assessTravel(a, b, { ...rules, newAsnWindowMs: 60_000 }), { reason: 'new-asn', from_asn: 7922, to_asn: 15169, elapsed_s: 1 });
  });
  it('sightings without coordinates only compare countries', () => {
    assert.equal(assessTravel({ t: 0, cc: 'US' }, { t: 10 * HOUR, cc: 'GB' }, rules), undefined);
    assert.equal(assessTravel({ t: 0, cc: 'US' }, { t: 1000, cc: 'GB' }, rules)?.reason, 'new-country');
  });
});

describe('sightings', () => {
  it('round to 4 decimals (≈11 m) and survive the store', () => {
    const s = sightingOf({ country: 'US', latitude: 40.729099273681, longitude: -73.992897033691 }, 5);
    assert.deepEqual(s, { t: 5, lat: 40.7291, lon: -73.9929, cc: 'US' });
    assert.deepEqual(parseSighting(JSON.stringify(s)), s);
    assert.equal(parseSighting(null), undefined);
    assert.equal(parseSighting('{oops'), undefined);
    assert.equal(parseSighting('42'), undefined);
  });
});
