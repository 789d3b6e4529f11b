/**
 * `rampart keys` and `rampart tokens` command modules, run through commander as the CLI runs
 * them; revocation goes through the real Redis at 127.0.0.1:6379.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseDuration } from '../../../src/cli/keys.ts';
import { isRampartApiKey } from '../../../src/controls/identity/keys/format.ts';
import { ApiKeyStore } from '../../../src/controls/identity/keys/store.ts';
import { revokedJtiKey } from '../../../src/controls/identity/index.ts';
import { createStore } from '../../../src/state/index.ts';

const PEPPER = 'cli-test-pepper-0123456789abcdef-0123456789';

const ENTRY = fileURLToPath(new URL('../../../src/cli/main.ts', import.meta.url));

/** Runs `rampart <args>` (identity commands) as a child process; resolves stdout, stderr, exit code. */
function cli(args: string[]): Promise<{ out: string; err: string; code: number }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [ENTRY, ...args], { env: { ...process.env, NODE_NO_WARNINGS: '1' } }, (error, out, err) => {
      if (error && typeof error.code !== 'number') return reject(error);
      resolve({ out, err, code: error ? Number(error.code) : 0 });
    });
  });
}

describe('rampart keys', () => {
  it('parses durations', () => {
    assert.equal(parseDuration('90d'), 90 * 86_400_000);
    assert.equal(parseDuration('24h'), 86_400_000);
    assert.equal(parseDuration('500ms'), 500);
    assert.throws(() => parseDuration('soon'), { message: 'invalid duration "soon" (expected e.g. 90d, 24h, 30m, 45s)' });
  });

  it('create prints the key once; list, rotate and revoke work against the configured database', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rampart-cli-'));
    writeFileSync(join(dir, 'pepper'), PEPPER);
    writeFileSync(
      join(dir, 'rampart.yaml'),
      `apis:
  - name: orders
    upstream: { targets: ["http://127.0.0.1:1"] }
    controls:
      identity:
        providers:
          api_key: { database: keys.db, pepper_file: pepper }
`,
    );
    const config = join(dir, 'rampart.yaml');
    const created = await cli(['keys', 'create', '--config', config, '--api', 'orders', '--scopes', 'read,write', '--expires', '90d', '--json']);
    assert.equal(created.code, 0, created.err);
    const j = JSON.parse(created.out) as { key: string; id: string; api: string; scopes: string[]; expires_at: string };
    assert.equal(isRampartApiKey(j.key), true);
    assert.deepEqual([j.api, j.scopes], ['orders', ['read', 'write']]);
    const store = new ApiKeyStore(join(dir, 'keys.db'), Buffer.from(PEPPER));
    assert.equal(store.lookup(j.key).ok, true);

    const text = await cli(['keys', 'create', '--config', config, '--api', 'orders']);
    const key2 = text.out.split('\n')[0] as string;
    assert.equal(isRampartApiKey(key2), true);
    assert.match(text.out, /This key is shown once: store it now\. Rampart keeps only an HMAC of it\./);

    const list = await cli(['keys', 'list', '--config', config, '--json']);
    const rows = JSON.parse(list.out) as { id: string; status: string }[];
    assert.equal(rows.length, 2);
    assert.equal(list.out.includes(j.key), false);
    assert.equal(list.out.includes(key2), false);

    const rotated = await cli(['keys', 'rotate', j.id, '--config', config, '--grace', '0s', '--json']);
    const r = JSON.parse(rotated.out) as { key: string; id: string; scopes: string[] };
    assert.deepEqual(r.scopes, ['read', 'write']);
    assert.equal(store.lookup(j.key).ok, false);
    assert.equal(store.lookup(r.key).ok, true);

    const revoked = await cli(['keys', 'revoke', r.id, '--config', config]);
    assert.equal(revoked.out, `revoked ${r.id} (gateways stop accepting it within their api_key.cache_ttl_ms)\n`);
    assert.deepEqual(store.lookup(r.key), { ok: false, reason: 'revoked', record: store.get(r.id) });
    const again = await cli(['keys', 'revoke', r.id, '--config', config]);
    assert.equal(again.code, 1);
    assert.equal(again.err, `rampart keys: no active key with id ${r.id}\n`);
    store.close();
  });

  it('refuses to run without a pepper', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rampart-cli-'));
    const r = await cli(['keys', 'create', '--api', 'orders', '--db', join(dir, 'k.db'), '--pepper-env', 'RAMPART_TEST_UNSET_PEPPER']);
    assert.equal(r.code, 1);
    assert.match(r.err, /^rampart keys: API key pepper missing: set environment variable RAMPART_TEST_UNSET_PEPPER/);
  });
});

describe('rampart tokens revoke', () => {
  it('adds the jti to the deny list in the shared store (real Redis)', async () => {
    const prefix = `rampart-test-${process.pid}-${Date.now()}:`;
    const url = `redis://127.0.0.1:6379?prefix=${prefix}`;
    const jti = `jti-${Math.random().toString(36).slice(2)}`;
    const r = await cli(['tokens', 'revoke', jti, '--store', url, '--ttl', '1h']);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, `revoked jti ${jti} for 1h\n`);
    const store = createStore(url, { failMode: 'fail_closed', timeoutMs: 5000 });
    try {
      assert.equal(await store.get(revokedJtiKey(jti)), '1');
      await store.del(revokedJtiKey(jti));
    } finally {
      await store.close();
    }
  });

  it('explains that the memory store cannot be revoked from the command line', async () => {
    const r = await cli(['tokens', 'revoke', 'abc', '--store', 'memory']);
    assert.equal(r.code, 1);
    assert.match(r.err, /lives inside each gateway process; configure a shared store/);
  });
});
