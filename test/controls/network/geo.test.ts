/** Geo lookups over the shipped DB-IP City Lite database (pinned package version) and haversine. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { defaultLocationDatabases, GeoLookup, haversineKm } from '../../../src/geo/index.ts';

const tmp = mkdtempSync(join(tmpdir(), 'rampart-geo-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('GeoLookup over the shipped database', () => {
  let geo: GeoLookup;
  before(async () => {
    geo = await GeoLookup.open({ location: defaultLocationDatabases(), asn: [] });
  });
  it('knows New York (NYU, 128.122.0.0/16), London and Tokyo', () => {
    const ny = geo.lookup('128.122.0.1');
    assert.equal(ny?.country, 'US');
    assert.equal(Math.round(ny?.latitude as number), 41);
    assert.equal(Math.round(ny?.longitude as number), -74);
    const ldn = geo.lookup('81.2.69.160');
    assert.equal(ldn?.country, 'GB');
    assert.equal(Math.round(ldn?.latitude as number), 52);
    assert.equal(geo.lookup('210.140.92.1')?.country, 'JP');
  });
  it('IPv6 addresses are looked up in the IPv6 file', () => {
    assert.equal(geo.lookup('2001:67c:2e8::1')?.country, 'NL'); // RIPE NCC, Amsterdam
    assert.equal(geo.lookup('::ffff:128.122.0.1')?.country, 'US', 'IPv4-mapped is looked up as IPv4');
  });
  it('an unknown, private or invalid address is a miss, never an exception', () => {
    assert.equal(geo.lookup('10.1.2.3'), undefined);
    assert.equal(geo.lookup('127.0.0.1'), undefined);
    assert.equal(geo.lookup('not-an-ip'), undefined);
    assert.equal(geo.lookup(''), undefined);
    assert.equal(geo.lookup('128.122.0.1')?.asn, undefined, 'the shipped database has no ASN');
  });
  it('reuses the open database for the same unchanged file', async () => {
    const again = await GeoLookup.open({ location: defaultLocationDatabases(), asn: [] });
    assert.deepEqual(again.lookup('128.122.0.1'), geo.lookup('128.122.0.1'));
  });
});

describe('bad database files', () => {
  it('a missing file is an error naming it', async () => {
    const f = join(tmp, 'nope.mmdb');
    await assert.rejects(GeoLookup.open({ location: [f], asn: [] }), (e: Error) => e.message.startsWith(`geo database "${f}" cannot be read: ENOENT`));
  });
  it('a file that is not a MaxMind DB is an error naming it', async () => {
    const f = join(tmp, 'text.mmdb');
    writeFileSync(f, 'hello, not a database\n');
    await assert.rejects(GeoLookup.open({ location: [], asn: [f] }), (e: Error) =>
      e.message.startsWith(`geo database "${f}" is not a readable MaxMind DB file:`),
    );
  });
});

describe('haversineKm', () => {
  it('New York to London is about 5,570 km', () => {
    assert.equal(Math.round(haversineKm(40.7128, -74.006, 51.5074, -0.1278)), 5570);
  });
  it('zero for the same point; half the circumference for antipodes', () => {
    assert.equal(haversineKm(10, 20, 10, 20), 0);
    assert.equal(Math.round(haversineKm(0, 0, 0, 180)), Math.round(Math.PI * 6371.0088));
  });
});
