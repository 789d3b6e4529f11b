/**
 * Stage-level tests of the passport control: minted claims verified with packages/passport,
 * the spoofed header replaced, key files (generated race-free across processes, PEM, JWK,
 * rotation).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import { createPassport, passportJwksOf, passportSchema, type PassportConfigInput } from '../../../src/controls/passport/index.ts';
import { loadPassportKeys, rotatePassportKeys } from '../../../src/controls/passport/keys.ts';
import { verifyPassport } from '../../../packages/passport/src/index.ts';
import { clientCertificate, identityWith, makeCtx, makeEnv, tlsWith } from '../sender/util.ts';

const dirs: string[] = [];
async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'rampart-passport-'));
  dirs.push(d);
  return d;
}
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function engine(cfg: PassportConfigInput = {}, dir?: string) {
  const env = { ...makeEnv(), configDir: dir ?? (await tmp()) };
  const routes = new Map<string, unknown>();
  env.addAdminRoute = (p, r) => routes.set(p, r);
  const e = await createPassport(passportSchema.parse({ key_reload_ms: 0, ...cfg }), env);
  return Object.assign(e, { routes, env });
}

describe('minting', () => {
  test('claims of an identified DPoP + mTLS request; verified with packages/passport', async () => {
    const e = await engine();
    const cert = await clientCertificate('client-a');
    const identity = identityWith({ jkt: 'jkt-value' });
    identity.methods.push('dpop');
    identity.issuer = 'https://idp.example';
    const ctx = makeCtx({ identity, tls: tlsWith(cert.cert), headers: { 'rampart-passport': 'spoofed.by.client' } });
    assert.equal(e.run(ctx), undefined);
    const token = ctx.upstreamHeaders.get('rampart-passport') as string;
    assert.notEqual(token, 'spoofed.by.client');
    const p = await verifyPassport(token, { jwks: { keys: e.keys.keys.map((k) => k.publicJwk) }, audience: 'orders' });
    assert.equal(p.subject, 'alice');
    assert.equal(p.clientId, 'app');
    assert.deepEqual(p.scopes, ['read']);
    assert.deepEqual(p.methods, ['jwt', 'dpop']);
    assert.equal(p.requestId, ctx.id);
    assert.equal(p.identityProvider, 'https://idp.example');
    assert.deepEqual(p.cnf, { 'x5t#S256': cert.cert.x5tS256, jkt: 'jkt-value' });
    assert.equal(p.expiresAt - p.issuedAt, 30);
    const header = JSON.parse(Buffer.from(token.split('.')[0] as string, 'base64url').toString()) as Record<string, unknown>;
    assert.deepEqual(header, { alg: 'ES256', kid: e.keys.keys[0]?.kid, typ: 'rampart-passport+jwt' });
    e.close();
  });

  test('an unverified cnf.jkt is not asserted; anonymous requests get an anonymous passport', async () => {
    const e = await engine({ audience: 'orders-service', ttl_seconds: 10, algorithm: 'EdDSA', header: 'X-Internal-Passport' });
    const ctx = makeCtx({ identity: identityWith({ jkt: 'not-verified' }) });
    e.run(ctx);
    const jwks = { keys: e.keys.keys.map((k) => k.publicJwk) };
    const p = await verifyPassport(ctx.upstreamHeaders.get('x-internal-passport') as string, { jwks, audience: 'orders-service' });
    assert.equal(p.cnf, undefined);
    assert.equal(p.expiresAt - p.issuedAt, 10);
    assert.equal(e.keys.keys[0]?.alg, 'EdDSA');
    const anon = makeCtx({});
    e.run(anon);
    const q = await verifyPassport(anon.upstreamHeaders.get('x-internal-passport') as string, { jwks, audience: 'orders-service' });
    assert.equal(q.subject, undefined);
    assert.deepEqual(q.methods, []);
    e.close();
  });

  test('require_identity refuses anonymous requests and still removes a spoofed header', async () => {
    const e = await engine({ require_identity: true });
    const ctx = makeCtx({ headers: { 'rampart-passport': 'spoofed' } });
    const r = e.run(ctx);
    assert.equal(r?.problem.status, 401);
    assert.equal(r?.problem.code, 'passport-identity-missing');
    assert.equal(ctx.upstreamHeaders.get('rampart-passport'), null);
    e.close();
  });

  test('the JWKS admin route serves the public keys only', async () => {
    const e = await engine();
    const route = e.routes.get('/.well-known/jwks.json') as (req: unknown, res: unknown) => void;
    let status = 0;
    let headers: Record<string, unknown> = {};
    let body = '';
    route(
      {},
      {
        writeHead: (s: number, h: Record<string, unknown>) => {
          status = s;
          headers = h;
        },
        end: (b: string) => (body = b),
      },
    );
    assert.equal(status, 200);
    assert.equal(headers['content-type'], 'application/jwk-set+json');
    const jwks = JSON.parse(body) as { keys: Record<string, unknown>[] };
    const mine = jwks.keys.find((k) => k.kid === e.keys.keys[0]?.kid);
    assert.ok(mine);
    assert.equal(mine.d, undefined);
    assert.deepEqual(Object.keys(mine).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
    e.close();
    route({}, { writeHead: () => {}, end: (b: string) => (body = b) });
    assert.equal(
      (JSON.parse(body) as { keys: Record<string, unknown>[] }).keys.some((k) => k.kid === e.keys.keys[0]?.kid),
      false,
    );
  });
});

describe('key files', () => {
  test('generated under .rampart/ with mode 0600 by default', async () => {
    const dir = await tmp();
    const e = await engine({}, dir);
    const st = await stat(join(dir, '.rampart/passport-keys.json'));
    assert.equal(st.mode & 0o777, 0o600);
    const again = await engine({}, dir);
    assert.equal(again.keys.keys[0]?.kid, e.keys.keys[0]?.kid);
    e.close();
    again.close();
  });

  test('concurrent worker processes creating the same key file agree on one key', async () => {
    const dir = await tmp();
    const file = join(dir, 'keys', 'passport.json');
    const keysModule = fileURLToPath(new URL('../../../src/controls/passport/keys.ts', import.meta.url));
    const script = `const m = await import(${JSON.stringify(keysModule)}); const s = await m.loadPassportKeys(${JSON.stringify(file)}, 'ES256', true); process.stdout.write(s.keys[0].kid);`;
    const kids = await Promise.all(
      Array.from(
        { length: 6 },
        () =>
          new Promise<string>((resolve, reject) => {
            const c = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
            let out = '';
            c.stdout.on('data', (d: Buffer) => (out += d.toString()));
            c.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`exit ${code}`))));
          }),
      ),
    );
    assert.equal(new Set(kids).size, 1);
    assert.equal((await loadPassportKeys(file, 'ES256', false)).keys[0]?.kid, kids[0]);
    assert.equal((JSON.parse(await readFile(file, 'utf8')) as { keys: unknown[] }).keys.length, 1);
  });

  test('a PEM key or a single JWK is accepted; kid is the RFC 7638 thumbprint', async () => {
    const dir = await tmp();
    const { privateKey } = generateKeyPairSync('ed25519');
    await writeFile(join(dir, 'key.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
    const pem = await engine({ key_file: 'key.pem', generate: false }, dir);
    assert.equal(pem.keys.keys[0]?.alg, 'EdDSA');
    assert.match(pem.keys.keys[0]?.kid as string, /^[A-Za-z0-9_-]{43}$/);
    const jwk = privateKey.export({ format: 'jwk' });
    await writeFile(join(dir, 'key.jwk'), JSON.stringify({ ...jwk, kid: 'mine' }));
    const j = await engine({ key_file: 'key.jwk', generate: false }, dir);
    assert.equal(j.keys.keys[0]?.kid, 'mine');
    pem.close();
    j.close();
  });

  test('unusable key files refuse the configuration with the setting named', async () => {
    const dir = await tmp();
    await assert.rejects(engine({ key_file: 'missing.json', generate: false }, dir), /^Error: key_file: passport key file .*missing\.json: ENOENT/);
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    await writeFile(join(dir, 'rsa.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
    await assert.rejects(engine({ key_file: 'rsa.pem' }, dir), /key_file: .*must be EC P-256 \(ES256\) or Ed25519 \(EdDSA\)/);
    const pub = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
    await writeFile(join(dir, 'pub.json'), JSON.stringify({ keys: [pub] }));
    await assert.rejects(engine({ key_file: 'pub.json' }, dir), /must be a private JWK/);
  });

  test('rotation: the new key signs, the old one stays published; the primary sees the same JWKS', async () => {
    const dir = await tmp();
    const e = await engine({}, dir);
    const oldKid = e.keys.keys[0]?.kid as string;
    const before = makeCtx({ identity: identityWith() });
    e.run(before);
    const file = join(dir, '.rampart/passport-keys.json');
    const newKid = await rotatePassportKeys(file);
    // Make sure the mtime differs even on coarse file systems.
    const { utimes } = await import('node:fs/promises');
    await utimes(file, new Date(), new Date(Date.now() + 2000));
    await e.reloadKeys();
    assert.deepEqual(
      e.keys.keys.map((k) => k.kid),
      [newKid, oldKid],
    );
    const afterCtx = makeCtx({ identity: identityWith() });
    e.run(afterCtx);
    const jwks = await passportJwksOf([{ controls: { passport: {} } }], dir);
    assert.deepEqual(
      jwks.keys.map((k) => k.kid),
      [newKid, oldKid],
    );
    const header = (t: string) => JSON.parse(Buffer.from(t.split('.')[0] as string, 'base64url').toString()).kid;
    assert.equal(header(afterCtx.upstreamHeaders.get('rampart-passport') as string), newKid);
    for (const c of [before, afterCtx]) {
      const p = await verifyPassport(c.upstreamHeaders.get('rampart-passport') as string, { jwks, audience: 'orders' });
      assert.equal(p.subject, 'alice');
    }
    e.close();
  });
});
