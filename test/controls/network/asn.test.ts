/**
 * ASN lookups over the shipped `@ip-location-db/asn` CSV data (pinned package version): expected
 * values are read from the CSV files themselves by a naive reference scan, the parser's edge cases
 * on small fixture files, and ASN binding end to end through a real gateway (client IPs set by
 * X-Forwarded-For from a trusted proxy).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { z } from 'zod';
import { CONTROLS } from '../../../src/controls/index.ts';
import { AsnTable, defaultAsnFiles, ipv6ToHalves, shippedAsnTable } from '../../../src/geo/asn.ts';
import { defaultLocationDatabases, GeoLookup } from '../../../src/geo/index.ts';
import { defineControl } from '../../../src/pipeline/control.ts';
import { echoUpstream, httpRequestText, startTestGateway, type TestUpstream } from '../../helpers/gateway.ts';

const tmp = mkdtempSync(join(tmpdir(), 'rampart-asn-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Reference: the CSV line whose range holds `n` (linear scan, RFC 4180 quoting), straight from the file. */
function csvAnswer(file: string, n: bigint): { asn: number; org: string } | undefined {
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^(\d+),(\d+),(\d+),(.*)$/.exec(line);
    if (!m) continue;
    if (BigInt(m[1] as string) <= n && n <= BigInt(m[2] as string)) {
      const raw = m[4] as string;
      const org = raw.startsWith('"') ? raw.slice(1, -1).replaceAll('""', '"') : raw;
      return { asn: Number(m[3]), org };
    }
  }
  return undefined;
}
const v4n = (ip: string) => ip.split('.').reduce((a, p) => a * 256n + BigInt(p), 0n);
const v6n = (ip: string) => {
  const [hi, lo] = ipv6ToHalves(ip);
  return (hi << 64n) | lo;
};

describe('the shipped ASN table', () => {
  let table: AsnTable;
  before(async () => {
    table = await shippedAsnTable();
  });
  it('answers what the CSV files say for well-known IPv4 addresses', () => {
    const { v4 } = defaultAsnFiles();
    assert.deepEqual(csvAnswer(v4, v4n('1.1.1.1')), { asn: 13335, org: 'Cloudflare, Inc.' });
    for (const ip of ['1.1.1.1', '1.0.0.1', '8.8.8.8', '9.9.9.9', '128.122.0.1', '81.2.69.160']) {
      assert.deepEqual(table.lookup(ip), csvAnswer(v4, v4n(ip)), ip);
    }
    assert.equal(table.lookup('8.8.8.8')?.asn, 15169);
    assert.equal(table.lookup('128.122.0.1')?.asn, 12, 'NYU');
    assert.deepEqual(table.lookup('::ffff:1.1.1.1'), table.lookup('1.1.1.1'), 'IPv4-mapped is looked up as IPv4');
  });
  it('answers what the CSV files say for well-known IPv6 addresses', () => {
    const { v6 } = defaultAsnFiles();
    assert.deepEqual(csvAnswer(v6, v6n('2606:4700:4700::1111')), { asn: 13335, org: 'Cloudflare, Inc.' });
    assert.deepEqual(csvAnswer(v6, v6n('2001:4860:4860::8888')), { asn: 15169, org: 'Google LLC' });
    for (const ip of ['2606:4700:4700::1111', '2001:4860:4860::8888', '2001:67c:2e8::1']) {
      assert.deepEqual(table.lookup(ip), csvAnswer(v6, v6n(ip)), ip);
    }
  });
  it('a private, reserved or invalid address is a miss, never an exception', () => {
    for (const ip of ['10.0.0.1', '127.0.0.1', '192.168.1.1', '::1', 'fe80::1%eth0', 'not-an-ip', '']) assert.equal(table.lookup(ip), undefined, ip);
  });
  it('holds every line of the files (one overlapping range cut short) with deduplicated org names', () => {
    const { v4, v6 } = defaultAsnFiles();
    const lines = (f: string) =>
      readFileSync(f, 'utf8')
        .split('\n')
        .filter((l) => l !== '').length;
    assert.equal(table.stats.v4Ranges + table.stats.v6Ranges, lines(v4) + lines(v6));
    assert.equal(table.stats.trimmed, 1);
    assert.ok(table.stats.orgs < table.stats.v4Ranges / 2);
    assert.equal(table.stats.arrayBytes, table.stats.v4Ranges * 16 + table.stats.v6Ranges * 40);
  });
  it('is loaded once per process', async () => {
    assert.equal(await shippedAsnTable(), table);
  });
});

describe('ipv6ToHalves', () => {
  it('expands compressed forms, embedded IPv4 and zones', () => {
    assert.deepEqual(ipv6ToHalves('::'), [0n, 0n]);
    assert.deepEqual(ipv6ToHalves('::1'), [0n, 1n]);
    assert.deepEqual(ipv6ToHalves('2001:db8::1'), [0x20010db800000000n, 1n]);
    assert.deepEqual(ipv6ToHalves('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'), [0xffffffffffffffffn, 0xffffffffffffffffn]);
    assert.deepEqual(ipv6ToHalves('::ffff:1.2.3.4'), [0n, 0xffff01020304n]);
    assert.deepEqual(ipv6ToHalves('64:ff9b::1.2.3.4'), [0x0064ff9b00000000n, 0x01020304n]);
    assert.deepEqual(ipv6ToHalves('1:2:3:4:5:6:1.2.3.4'), [0x0001000200030004n, 0x0005000601020304n]);
    assert.deepEqual(ipv6ToHalves('fe80::1%eth0'), [0xfe80000000000000n, 1n]);
  });
});

describe('AsnTable.load on fixture files', () => {
  const file = (name: string, text: string) => {
    const f = join(tmp, name);
    writeFileSync(f, text);
    return f;
  };
  it('quoted org names, shared orgs, overlaps, range edges', async () => {
    const v4 = file(
      'a4.csv',
      [
        '16777216,16777471,13335,"Cloudflare, Inc."',
        '16777472,16777727,64500,"LLC ""QUOTED"""',
        '16777728,16777983,13335,"Cloudflare, Inc."',
        '16778000,16778999,64501,Wide',
        '16778500,16778600,64502,Narrow',
        '4294967295,4294967295,64503,',
        '',
      ].join('\r\n'),
    );
    const v6 = file('a6.csv', `${(0x20010db8n << 96n).toString()},${((0x20010db8n << 96n) | ((1n << 96n) - 1n)).toString()},64496,Doc\n`);
    const t = await AsnTable.load(v4, v6);
    assert.deepEqual(t.lookup('1.0.0.0'), { asn: 13335, org: 'Cloudflare, Inc.' });
    assert.deepEqual(t.lookup('1.0.0.255'), { asn: 13335, org: 'Cloudflare, Inc.' });
    assert.deepEqual(t.lookup('1.0.1.7'), { asn: 64500, org: 'LLC "QUOTED"' });
    assert.equal(t.lookup('0.255.255.255'), undefined, 'before the first range');
    assert.equal(t.lookup('1.0.3.0'), undefined, 'in a gap (16777984..16777999)');
    assert.equal(t.lookup('1.0.3.16')?.asn, 64501);
    assert.equal(t.lookup('1.0.4.250')?.asn, 64501, 'the earlier range keeps what precedes the overlap (16778490)');
    assert.equal(t.lookup('1.0.5.20')?.asn, 64502, 'the later overlapping range wins its span (16778516)');
    assert.equal(t.lookup('1.0.6.0')?.asn, undefined, 'the earlier range is cut where the later starts');
    assert.deepEqual(t.lookup('255.255.255.255'), { asn: 64503 }, 'empty org');
    assert.deepEqual(t.lookup('2001:db8:ffff::1'), { asn: 64496, org: 'Doc' });
    assert.equal(t.lookup('2001:db9::1'), undefined);
    assert.deepEqual(t.stats, { v4Ranges: 6, v6Ranges: 1, orgs: 5, arrayBytes: 6 * 16 + 40, trimmed: 1 });
  });
  it('an unreadable, malformed or unsorted file is an error naming the file and line', async () => {
    const v6 = file('ok6.csv', '');
    const missing = join(tmp, 'missing.csv');
    await assert.rejects(AsnTable.load(missing, v6), { message: `ASN data file "${missing}" cannot be read: ENOENT` });
    const bad = file('bad.csv', '1,2,3,x\n5,4,3,x\n');
    await assert.rejects(AsnTable.load(bad, v6), { message: `ASN data file "${bad}": line 2: invalid range` });
    const unsorted = file('unsorted.csv', '10,20,3,x\n5,6,3,x\n');
    await assert.rejects(AsnTable.load(unsorted, v6), { message: `ASN data file "${unsorted}": line 2: ranges are not sorted by start` });
    const short = file('short.csv', '10,20,3\n');
    await assert.rejects(AsnTable.load(short, v6), { message: `ASN data file "${short}": line 1: expected start,end,asn,org` });
    const letters = file('letters.csv', '1x,20,3,a\n');
    await assert.rejects(AsnTable.load(letters, v6), { message: `ASN data file "${letters}": line 1: invalid address number` });
    const quote = file('quote.csv', '1,20,3,"open\n');
    await assert.rejects(AsnTable.load(quote, v6), { message: `ASN data file "${quote}": line 1: unterminated quoted org` });
  });
});

describe('GeoLookup with the shipped ASN table', () => {
  it('adds the AS number to the location answer', async () => {
    const geo = await GeoLookup.open({ location: defaultLocationDatabases(), asn: [], shippedAsn: true });
    assert.equal(geo.hasAsn, true);
    const g = geo.lookup('1.1.1.1');
    assert.deepEqual([g?.asn, g?.asOrg], [13335, 'Cloudflare, Inc.']);
    assert.deepEqual(geo.lookup('10.0.0.1'), undefined);
    const asnOnly = await GeoLookup.open({ location: [], asn: [], shippedAsn: true });
    assert.deepEqual(asnOnly.lookup('2001:4860:4860::8888'), { asn: 15169, asOrg: 'Google LLC' });
    assert.equal((await GeoLookup.open({ location: [], asn: [] })).hasAsn, false);
  });
});

/** A test-only identity control: `x-test-sub` / `x-test-jti` become ctx.identity. */
const headerIdentity = defineControl({
  name: 'test_identity',
  schema: z.strictObject({}),
  defaultConfig: {},
  create: () => ({
    request: [
      {
        control: 'test_identity',
        phase: 'identity',
        run(ctx) {
          const sub = ctx.headers['x-test-sub'];
          if (typeof sub === 'string') {
            const jti = ctx.headers['x-test-jti'];
            ctx.identity = { subject: sub, scopes: [], methods: ['jwt'], claims: {}, tokenId: typeof jti === 'string' ? jti : undefined };
          }
          return undefined;
        },
      },
    ],
  }),
});

describe('ASN binding through a real gateway', () => {
  let up: TestUpstream;
  before(async () => {
    up = await echoUpstream();
  });
  after(async () => {
    await up.close();
  });
  it('a token first used from AS13335 passes from another Cloudflare network and is refused from AS15169', async () => {
    const gw = await startTestGateway(
      {
        trusted_proxies: ['127.0.0.1/32'],
        apis: [{ name: 'a', upstream: { targets: [up.url] }, controls: { network: { binding: { enabled: true, by: 'asn' } } } }],
      },
      { controls: [...CONTROLS, headerIdentity] },
    );
    try {
      const call = (ip: string, jti = 'tok-1') =>
        httpRequestText(`${gw.url}/x`, { headers: { 'x-forwarded-for': ip, 'x-test-sub': 'alice', 'x-test-jti': jti } });
      assert.equal((await call('1.1.1.1')).status, 200);
      assert.equal((await call('1.0.0.1')).status, 200, 'another /24 of the same AS');
      assert.equal((await call('2606:4700:4700::1111')).status, 200, 'the same AS over IPv6');
      const r = await call('8.8.8.8');
      assert.equal(r.status, 401);
      assert.equal(JSON.parse(r.body).type, 'https://rampart.dev/problems/token-network-mismatch');
      assert.deepEqual(
        gw.events.map((e) => [e.control, e.reason, e.action, e.status, e.client_ip, e.details]),
        [['network', 'token-network-mismatch', 'deny', 401, '8.8.8.8', { bound: 'AS13335', seen: 'AS15169', by: 'asn' }]],
      );
      assert.equal((await call('8.8.8.8', 'tok-2')).status, 200, 'another token binds to its own AS');
      assert.equal((await call('10.1.2.3')).status, 200, 'an address in no AS follows binding.unknown (allow)');
    } finally {
      await gw.close(100);
    }
  });
  it('your own ASN database replaces the shipped data', async () => {
    // The DB-IP City file has no AS numbers: configured as the ASN database, every network is unknown.
    const [cityV4] = defaultLocationDatabases();
    const gw = await startTestGateway(
      {
        trusted_proxies: ['127.0.0.1/32'],
        apis: [
          {
            name: 'a',
            upstream: { targets: [up.url] },
            controls: { network: { binding: { enabled: true, by: 'asn', unknown: 'deny' }, geo: { asn_databases: [cityV4] } } },
          },
        ],
      },
      { controls: [...CONTROLS, headerIdentity] },
    );
    try {
      const r = await httpRequestText(`${gw.url}/x`, { headers: { 'x-forwarded-for': '1.1.1.1', 'x-test-sub': 'alice', 'x-test-jti': 't' } });
      assert.equal(r.status, 403);
      assert.equal(JSON.parse(r.body).type, 'https://rampart.dev/problems/network-unknown');
    } finally {
      await gw.close(100);
    }
  });
});
