/** IP list parsing, prefixes and file reloads (net.BlockList; RFC 4632 / RFC 4291 notation). */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { networkPrefix, parseCidr, parseListText, readList, WatchedList } from '../../../src/controls/network/lists.ts';

const tmp = mkdtempSync(join(tmpdir(), 'rampart-net-lists-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('parseCidr', () => {
  it('parses addresses and blocks of both families', () => {
    assert.deepEqual(parseCidr('10.0.0.0/8'), { address: '10.0.0.0', prefix: 8, family: 'ipv4' });
    assert.deepEqual(parseCidr('192.0.2.7'), { address: '192.0.2.7', prefix: 32, family: 'ipv4' });
    assert.deepEqual(parseCidr('2001:db8::/32'), { address: '2001:db8::', prefix: 32, family: 'ipv6' });
    assert.deepEqual(parseCidr('::1'), { address: '::1', prefix: 128, family: 'ipv6' });
    assert.deepEqual(parseCidr('::ffff:192.0.2.1/32'), { address: '192.0.2.1', prefix: 32, family: 'ipv4' });
  });
  it('refuses what is not an address or has a bad prefix', () => {
    for (const bad of ['10.0.0.0/33', '2001:db8::/129', 'example.com', '10.0.0.0/', '10.0.0.0/8/1', '1.2.3', '10.0.0.0/-1']) {
      assert.throws(() => parseCidr(bad), new RegExp(`invalid IP address or CIDR block "${bad.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}"`));
    }
  });
});

describe('list files', () => {
  it('skips comments and blank lines; names the bad line', () => {
    assert.equal(parseListText('# office\n10.0.0.0/8\n\n  192.0.2.1  # vpn\r\n2001:db8::/48\n').length, 3);
    assert.throws(() => parseListText('10.0.0.0/8\nnot-an-ip\n'), /^Error: line 2: invalid IP address or CIDR block "not-an-ip"$/);
  });
  it('an unreadable file is an error naming the file', async () => {
    const f = join(tmp, 'missing.txt');
    await assert.rejects(readList(f), { message: `IP list file "${f}" cannot be read: ENOENT` });
    const bad = join(tmp, 'bad.txt');
    writeFileSync(bad, '10.0.0.0/8\n300.1.1.1\n');
    await assert.rejects(readList(bad), { message: `IP list file "${bad}": line 2: invalid IP address or CIDR block "300.1.1.1"` });
  });
  it('a file edited (in place, or replaced by rename) is re-read; a broken edit keeps the old list', async () => {
    const f = join(tmp, 'deny.txt');
    writeFileSync(f, '192.0.2.0/24\n');
    const reloads: number[] = [];
    const errors: string[] = [];
    const wl = await WatchedList.create(
      ['198.51.100.1'],
      ['deny.txt'],
      tmp,
      { onReload: (_f, n) => reloads.push(n), onError: (_f, e) => errors.push(e.message) },
      20,
    );
    try {
      assert.equal(wl.has('192.0.2.9'), true);
      assert.equal(wl.has('198.51.100.1'), true);
      assert.equal(wl.has('203.0.113.1'), false);
      writeFileSync(f, '203.0.113.0/24\n');
      await until(() => wl.has('203.0.113.1'));
      assert.equal(wl.has('192.0.2.9'), false);
      assert.equal(wl.has('198.51.100.1'), true, 'inline entries stay');
      writeFileSync(join(tmp, 'deny.txt.new'), '2001:db8::/32\n');
      renameSync(join(tmp, 'deny.txt.new'), f);
      await until(() => wl.has('2001:db8::5'));
      assert.equal(wl.has('203.0.113.1'), false);
      writeFileSync(f, 'garbage\n');
      await until(() => errors.length > 0);
      assert.match(errors[0] as string, /line 1: invalid IP address or CIDR block "garbage"/);
      assert.equal(wl.has('2001:db8::5'), true, 'the previous list stays in force');
    } finally {
      wl.close();
    }
  });
});

describe('networkPrefix', () => {
  it('masks IPv4 and IPv6 addresses', () => {
    assert.equal(networkPrefix('203.0.113.77', 24, 48), '203.0.113.0/24');
    assert.equal(networkPrefix('203.0.113.77', 16, 48), '203.0.0.0/16');
    assert.equal(networkPrefix('203.0.113.77', 32, 48), '203.0.113.77/32');
    assert.equal(networkPrefix('203.0.113.77', 0, 48), '0.0.0.0/0');
    assert.equal(networkPrefix('2001:db8:abcd:12::1', 24, 48), '2001:db8:abcd:0:0:0:0:0/48');
    assert.equal(networkPrefix('2001:db8:abcd:12ff::1', 24, 56), '2001:db8:abcd:1200:0:0:0:0/56');
    assert.equal(networkPrefix('::ffff:1.2.3.4', 24, 96), '0:0:0:0:0:ffff:0:0/96');
    assert.equal(networkPrefix('nope', 24, 48), undefined);
  });
});
