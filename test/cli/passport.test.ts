import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CLI, ROOT } from '../helpers/gateway.ts';

const run = (...args: string[]) => spawnSync(process.execPath, [CLI, 'passport', ...args], { cwd: ROOT, encoding: 'utf8' });

test('passport rotate creates the key file, puts a new key first and keeps older ones published', () => {
  const file = join(mkdtempSync(join(tmpdir(), 'rampart-passport-')), 'keys.json');
  const first = run('rotate', '--file', file, '--keep', '1');
  assert.equal(first.status, 0, first.stderr);
  const kid1 = /new signing key (\S+)/.exec(first.stdout)?.[1];
  const second = run('rotate', '--file', file, '--keep', '1', '--alg', 'EdDSA');
  assert.equal(second.status, 0, second.stderr);
  const kid2 = /new signing key (\S+)/.exec(second.stdout)?.[1];
  const keys = (JSON.parse(readFileSync(file, 'utf8')) as { keys: { kid: string; d?: string; crv: string }[] }).keys;
  assert.equal(keys[0]?.kid, kid2);
  assert.equal(keys[0]?.crv, 'Ed25519');
  assert.equal(keys[1]?.kid, kid1);
  assert.equal(keys.length, 2, '--keep 1: the generated key and one rotated-in key are dropped beyond that');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const jwks = run('jwks', '--file', file);
  assert.equal(jwks.status, 0, jwks.stderr);
  const pub = JSON.parse(jwks.stdout) as { keys: { kid: string; d?: string }[] };
  assert.deepEqual(
    pub.keys.map((k) => k.kid),
    [kid2, kid1],
  );
  assert.equal(
    pub.keys.some((k) => k.d !== undefined),
    false,
    'no private members in the JWKS',
  );
  assert.equal(run('rotate', '--file', file, '--alg', 'HS256').status, 2);
});
