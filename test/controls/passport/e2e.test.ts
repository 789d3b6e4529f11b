/**
 * Passports end to end: a real upstream verifies the gateway's passport with packages/passport
 * against the JWKS on the admin listener; a passport header sent by a client never reaches it;
 * with `--workers 2` the primary serves the same JWKS as the workers sign with.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { generateKeyPair, SignJWT } from 'jose';
import { type Passport, withPassport } from '../../../packages/passport/src/index.ts';
import { spawnRampart, startTestGateway, startUpstream, type TestGateway, type TestUpstream, waitForStatus } from '../../helpers/gateway.ts';
import { startOidcProvider, type TestOidcProvider } from '../../helpers/oidc.ts';

/** A passport forged by a client (its own key, claiming to be an admin). */
async function forged(): Promise<string> {
  const { privateKey } = await generateKeyPair('ES256');
  return new SignJWT({ iss: 'rampart', aud: 'orders', rid: 'x', sub: 'admin', scope: 'admin' })
    .setProtectedHeader({ alg: 'ES256', kid: 'attacker', typ: 'rampart-passport+jwt' })
    .setIssuedAt()
    .setExpirationTime('30s')
    .sign(privateKey);
}

/**
 * An upstream that accepts only requests with a valid passport and echoes it. The JWKS URL is
 * read at the first request (the gateway, and so its admin URL, starts after the upstream).
 */
function passportUpstream(jwksUrl: () => string, audience: string): Promise<TestUpstream> {
  let handler: ReturnType<typeof withPassport> | undefined;
  return startUpstream((req, res) => {
    handler ??= withPassport({ jwksUrl: jwksUrl(), audience, jwksCooldownMs: 0 }, (r, w) => {
      const p: Passport = r.passport;
      w.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({ sub: p.subject ?? null, scopes: p.scopes, methods: p.methods, rid: p.requestId }),
      );
    });
    handler(req, res);
  });
}

describe('passport through an in-process gateway', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-passport-e2e-'));
  let op: TestOidcProvider;
  let gw: TestGateway;
  let orders: TestUpstream;
  let open: TestUpstream;
  let adminUrl = '';

  before(async () => {
    op = await startOidcProvider();
    orders = await passportUpstream(() => `${adminUrl}/.well-known/jwks.json`, 'orders');
    open = await passportUpstream(() => `${adminUrl}/.well-known/jwks.json`, 'open');
    gw = await startTestGateway({
      apis: [
        {
          name: 'open',
          match: { path_prefix: '/open' },
          upstream: { targets: [open.url] },
          controls: { passport: { key_file: join(dir, 'keys.json'), key_reload_ms: 0 } },
        },
        {
          name: 'orders',
          upstream: { targets: [orders.url] },
          controls: {
            identity: { providers: { jwt: { issuer: op.issuer, audiences: [op.audience] } } },
            passport: { key_file: join(dir, 'keys.json'), key_reload_ms: 0 },
          },
        },
      ],
    });
    adminUrl = gw.adminUrl;
  });
  after(async () => {
    await gw.close();
    await orders.close();
    await open.close();
    await op.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the upstream verifies the passport: subject, scopes, methods, request id', async () => {
    const token = await op.token({ scope: 'read write' });
    const r = await fetch(`${gw.url}/orders/1`, { headers: { authorization: `Bearer ${token}`, 'x-request-id': 'req-passport-1' } });
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { sub: op.clientId, scopes: ['read', 'write'], methods: ['jwt'], rid: 'req-passport-1' });
  });

  test('a passport header sent by the client is replaced by the gateway’s', async () => {
    const token = await op.token({ scope: 'read' });
    const spoof = await forged();
    const r = await fetch(`${gw.url}/orders/1`, { headers: { authorization: `Bearer ${token}`, 'rampart-passport': spoof } });
    assert.equal(r.status, 200);
    assert.equal(((await r.json()) as { sub: string }).sub, op.clientId);
    // Sent straight to the upstream (bypassing the gateway), the forged passport is refused.
    const direct = await fetch(`${orders.url}/orders/1`, { headers: { 'rampart-passport': spoof } });
    assert.equal(direct.status, 401);
    assert.equal(((await direct.json()) as { type: string }).type, 'https://rampart.dev/problems/passport-key-unknown');
    const none = await fetch(`${orders.url}/orders/1`);
    assert.equal(none.status, 401);
    await none.arrayBuffer();
  });

  test('an anonymous API gets an anonymous passport with its own audience', async () => {
    const r = await fetch(`${gw.url}/open/x`, { headers: { 'rampart-passport': await forged() } });
    assert.equal(r.status, 200);
    const b = (await r.json()) as { sub: string | null; methods: string[] };
    assert.equal(b.sub, null);
    assert.deepEqual(b.methods, []);
  });

  test('the admin JWKS holds the public key only', async () => {
    const jwks = (await (await fetch(`${adminUrl}/.well-known/jwks.json`)).json()) as { keys: Record<string, unknown>[] };
    const file = JSON.parse(readFileSync(join(dir, 'keys.json'), 'utf8')) as { keys: { kid: string }[] };
    const mine = jwks.keys.find((k) => k.kid === file.keys[0]?.kid);
    assert.ok(mine);
    assert.equal(mine.d, undefined);
  });
});

describe('passport with --workers 2', () => {
  test('the primary serves the JWKS the workers sign with (one shared generated key)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rampart-passport-cluster-'));
    const port = 20000 + Math.floor(Math.random() * 20000);
    const admin = port + 1;
    const up = await passportUpstream(() => `http://127.0.0.1:${admin}/.well-known/jwks.json`, 'svc');
    const file = join(dir, 'rampart.yaml');
    writeFileSync(
      file,
      `listen: 127.0.0.1:${port}\nadmin:\n  listen: 127.0.0.1:${admin}\naccess_log: false\nevents:\n  sinks: []\napis:\n  - name: svc\n    upstream:\n      targets: [${up.url}]\n    controls:\n      passport: {}\n`,
    );
    const p = spawnRampart(['serve', '--config', file, '--workers', '2']);
    try {
      await waitForStatus(`http://127.0.0.1:${admin}/readyz`);
      const keyFile = JSON.parse(readFileSync(join(dir, '.rampart/passport-keys.json'), 'utf8')) as { keys: { kid: string }[] };
      assert.equal(keyFile.keys.length, 1);
      const jwks = (await (await fetch(`http://127.0.0.1:${admin}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] };
      assert.deepEqual(
        jwks.keys.map((k) => k.kid),
        [keyFile.keys[0]?.kid],
      );
      // Fresh connections spread over both workers; every passport verifies against the primary's JWKS.
      const statuses = await Promise.all(
        Array.from({ length: 20 }, async () => {
          const r = await fetch(`http://127.0.0.1:${port}/x`, { headers: { connection: 'close' } });
          await r.arrayBuffer();
          return r.status;
        }),
      );
      assert.deepEqual(statuses, Array(20).fill(200));
    } finally {
      await p.stop();
      await up.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
