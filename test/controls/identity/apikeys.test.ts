/**
 * API keys: format (shared with the DLP detector), the SQLite store (HMAC with pepper only,
 * list / revoke / rotate, last-used time) and the request path.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isRampartApiKey as dlpIsKey } from '../../../src/controls/dlp/apikey.ts';
import { API_KEY_LENGTH, generateApiKey, isRampartApiKey } from '../../../src/controls/identity/keys/format.ts';
import { ApiKeyStore, loadPepper } from '../../../src/controls/identity/keys/store.ts';
import { challengeOf, engine, makeEnv, runWith } from './util.ts';

const PEPPER = Buffer.from('pepper-for-tests-0123456789abcdef-0123456789');

describe('identity: API key format', () => {
  it('generates 57-character keys the DLP detector recognises; a one-character typo fails the checksum', () => {
    const key = generateApiKey('rk_test_');
    assert.equal(key.length, API_KEY_LENGTH);
    assert.equal(API_KEY_LENGTH, 57);
    assert.match(key, /^rk_test_[0-9A-Za-z]{49}$/);
    assert.equal(isRampartApiKey(key), true);
    assert.equal(dlpIsKey(key), true);
    const i = 20;
    const typo = key.slice(0, i) + (key[i] === 'a' ? 'b' : 'a') + key.slice(i + 1);
    assert.equal(isRampartApiKey(typo), false);
    assert.equal(isRampartApiKey(`rk_prod_${key.slice(8)}`), false);
    assert.equal(isRampartApiKey(key.slice(0, -1)), false);
  });
});

describe('identity: API key store (SQLite, HMAC-SHA-256 with pepper)', () => {
  it('stores only the HMAC, never the key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rampart-keys-'));
    const file = join(dir, 'keys.db');
    const store = new ApiKeyStore(file, PEPPER);
    const { key, record } = store.create({ api: 'orders', scopes: ['read'] }, 1_000);
    store.close();
    const bytes = readFileSync(file);
    const wal = (() => {
      try {
        return readFileSync(`${file}-wal`);
      } catch {
        return Buffer.alloc(0);
      }
    })();
    for (const b of [bytes, wal]) {
      assert.equal(b.includes(key), false);
      assert.equal(b.includes(key.slice(8, 51)), false);
    }
    const reopened = new ApiKeyStore(file, PEPPER);
    const found = reopened.lookup(key, 2_000);
    assert.deepEqual(found, { ok: true, record });
    assert.deepEqual(reopened.hash(key), createHmac('sha256', PEPPER).update(key).digest());
    // Another pepper finds nothing.
    const other = new ApiKeyStore(file, Buffer.from('a-completely-different-pepper-0123456789'));
    assert.deepEqual(other.lookup(key, 2_000), { ok: false, reason: 'unknown' });
    reopened.close();
    other.close();
  });

  it('lists, revokes, rotates with a grace period, expires, and records last use', () => {
    const store = new ApiKeyStore(':memory:', PEPPER);
    const a = store.create({ api: 'orders', scopes: ['read', 'write'], subject: 'acme', ttlMs: 90 * 86_400_000 }, 1_000);
    const b = store.create({ api: 'billing' }, 2_000);
    assert.deepEqual(
      store.list().map((r) => r.id),
      [b.record.id, a.record.id],
    );
    assert.deepEqual(
      store.list('orders').map((r) => r.id),
      [a.record.id],
    );
    assert.equal(a.record.expiresAt, 1_000 + 90 * 86_400_000);
    assert.equal(a.record.hint, a.key.slice(-4));
    assert.equal(b.record.subject, b.record.id);

    const next = store.rotate(a.record.id, { graceMs: 60_000 }, 10_000);
    assert.deepEqual([next.record.api, next.record.subject, next.record.scopes], ['orders', 'acme', ['read', 'write']]);
    assert.equal(store.get(a.record.id)?.replacedBy, next.record.id);
    assert.equal(store.lookup(a.key, 69_999).ok, true);
    assert.deepEqual(store.lookup(a.key, 70_000), { ok: false, reason: 'expired', record: store.get(a.record.id) });
    assert.equal(store.lookup(next.key, 70_000).ok, true);

    assert.equal(store.revoke(b.record.id, 20_000), true);
    assert.equal(store.revoke(b.record.id, 20_001), false);
    assert.equal(store.lookup(b.key, 20_000).ok, false);
    assert.throws(() => store.rotate(b.record.id), { message: `API key ${b.record.id} is revoked` });
    assert.throws(() => store.rotate('key_nope'), { message: 'unknown API key id key_nope' });

    store.recordUse([[next.record.id, 30_000]]);
    store.recordUse([[next.record.id, 25_000]]); // never moves backwards
    assert.equal(store.get(next.record.id)?.lastUsedAt, 30_000);
    store.close();
  });

  it('refuses a missing or short pepper', () => {
    assert.throws(() => loadPepper({ env: 'RAMPART_TEST_NO_SUCH_PEPPER' }), /API key pepper missing: set environment variable RAMPART_TEST_NO_SUCH_PEPPER/);
    process.env.RAMPART_TEST_SHORT_PEPPER = 'short';
    assert.throws(() => loadPepper({ env: 'RAMPART_TEST_SHORT_PEPPER' }), /too short: at least 32 bytes/);
    delete process.env.RAMPART_TEST_SHORT_PEPPER;
  });
});

describe('identity: API keys on the request path', () => {
  async function setup(extra: Record<string, unknown> = {}) {
    const dir = mkdtempSync(join(tmpdir(), 'rampart-keys-'));
    process.env.RAMPART_TEST_PEPPER = PEPPER.toString();
    const store = new ApiKeyStore(join(dir, 'keys.db'), PEPPER);
    const env = makeEnv('orders', dir);
    const id = await engine(
      { providers: { api_key: { database: 'keys.db', pepper_env: 'RAMPART_TEST_PEPPER', cache_ttl_ms: 1, ...extra } }, require: { scopes: ['read'] } },
      env,
    );
    return { store, env, id };
  }

  it('accepts a valid key, sets the identity, strips the key header and records last use', async () => {
    const { store, id } = await setup();
    const { key, record } = store.create({ api: 'orders', scopes: ['read'], subject: 'acme-corp' });
    const { ctx, rejection } = await runWith(id, { 'x-api-key': key, 'x-rampart-subject': 'spoofed' });
    assert.equal(rejection, undefined);
    assert.deepEqual(ctx.identity, {
      subject: 'acme-corp',
      clientId: record.id,
      scopes: ['read'],
      methods: ['api_key'],
      tokenId: record.id,
      expiresAt: undefined,
      claims: { key_id: record.id, api: 'orders', scope: 'read' },
    });
    assert.equal(ctx.upstreamHeaders.get('x-api-key'), null);
    assert.equal(ctx.upstreamHeaders.get('x-rampart-subject'), 'acme-corp');
    id.close(); // flushes last-used
    assert.equal(typeof store.get(record.id)?.lastUsedAt, 'number');
    store.close();
  });

  it('rejects typos before any lookup, unknown, revoked, expired and other-API keys', async () => {
    const { store, id } = await setup();
    try {
      const good = store.create({ api: 'orders', scopes: ['read'] });
      const typo = good.key.slice(0, 30) + (good.key[30] === 'x' ? 'y' : 'x') + good.key.slice(31);
      const cases: [string, string][] = [
        [typo, 'api-key-malformed'],
        ['sk_live_whatever', 'api-key-malformed'],
        [generateApiKey(), 'api-key-invalid'],
        [store.create({ api: 'billing', scopes: ['read'] }).key, 'api-key-invalid'],
      ];
      const revoked = store.create({ api: 'orders', scopes: ['read'] });
      store.revoke(revoked.record.id);
      cases.push([revoked.key, 'api-key-revoked']);
      const expired = store.create({ api: 'orders', scopes: ['read'], ttlMs: 0 });
      cases.push([expired.key, 'api-key-expired']);
      for (const [k, code] of cases) {
        const { rejection } = await runWith(id, { 'x-api-key': k });
        assert.equal(rejection?.problem.code, code, k);
        assert.equal(rejection?.problem.status, 401);
        assert.equal(JSON.stringify([rejection?.details, rejection?.problem.toBody()]).includes(k), false);
      }
      const scopeless = store.create({ api: 'orders', scopes: ['write'] });
      assert.equal((await runWith(id, { 'x-api-key': scopeless.key })).rejection?.problem.code, 'insufficient-scope');
      const missing = (await runWith(id, {})).rejection;
      assert.equal(missing?.problem.code, 'credentials-missing');
      assert.equal(challengeOf(missing), 'ApiKey realm="orders", header="x-api-key"');
    } finally {
      id.close();
      store.close();
    }
  });

  it('accepts a key in a query parameter only when configured, with a warning at load', async () => {
    const { store, id, env } = await setup({ query: 'api_key' });
    try {
      assert.equal(env.warnings.length, 1);
      assert.match(env.warnings[0] as string, /query parameter "api_key"/);
      const { key } = store.create({ api: 'orders', scopes: ['read'] });
      const r = await runWith(id, {}, `/orders?a=1&api_key=${key}&b=2`);
      assert.equal(r.rejection, undefined);
      // Regression: the key was forwarded upstream in the query string; it is now removed.
      assert.equal(r.ctx.upstreamQuery, 'a=1&b=2');
    } finally {
      id.close();
      store.close();
    }
  });
});
