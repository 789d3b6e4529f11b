import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../bench/run.ts';

const DEMO = fileURLToPath(new URL('../../examples/demo.ts', import.meta.url));

describe('npm start: the demo (upstream + OpenID provider + gateway from examples/rampart.yaml)', () => {
  let child: ReturnType<typeof spawn>;
  let gw = '';
  let idp = '';
  let out = '';
  before(async () => {
    const [up, idpPort, gwPort, adminPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    gw = `http://127.0.0.1:${gwPort}`;
    idp = `http://127.0.0.1:${idpPort}`;
    child = spawn(process.execPath, [DEMO], {
      env: {
        ...process.env,
        DEMO_PORT: String(up),
        DEMO_IDP_PORT: String(idpPort),
        RAMPART_LISTEN: `127.0.0.1:${gwPort}`,
        RAMPART_ADMIN: `127.0.0.1:${adminPort}`,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (c) => (out += c));
    child.stderr?.on('data', (c) => (out += c));
    const until = Date.now() + 30_000;
    while (!out.includes('Ctrl-C stops')) {
      if (Date.now() > until || child.exitCode !== null) throw new Error(`demo did not start: ${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  after(async () => {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  });

  async function token(client: string, secret: string, scope: string): Promise<string> {
    const r = await fetch(`${idp}/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${client}:${secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: 'https://accounts.demo.rampart', scope }),
    });
    return ((await r.json()) as { access_token: string }).access_token;
  }

  test('the printed instructions name the gateway, the issuer and the token command', () => {
    assert.match(out, new RegExp(`gateway\\s+${gw}`));
    assert.match(out, new RegExp(`issuer\\s+${idp}`));
    assert.match(out, /grant_type=client_credentials/);
  });

  test('health is open; the API needs a token from the demo provider', async () => {
    assert.equal((await fetch(`${gw}/health`)).status, 200);
    const anon = await fetch(`${gw}/users/1002`);
    assert.equal(anon.status, 401);
    assert.match(anon.headers.get('www-authenticate') ?? '', /^Bearer /);
    const t = await token('alice-app', 'alice-secret-0123456789abcdef', 'accounts:read');
    const ok = await fetch(`${gw}/users/1002`, { headers: { authorization: `Bearer ${t}` } });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('x-powered-by'), null);
    assert.equal(((await ok.json()) as { id: number }).id, 1002);
  });

  test('DLP: SSNs and cards redacted, secrets blocked, bulk extraction refused', async () => {
    const t = await token('alice-app', 'alice-secret-0123456789abcdef', 'accounts:read');
    const auth = { authorization: `Bearer ${t}` };
    const tax = await fetch(`${gw}/users/1002/tax-profile`, { headers: auth });
    assert.equal(tax.status, 200);
    const body = (await tax.json()) as { ssn: string; card_number: string };
    assert.match(body.ssn, /^\*\*\*-\*\*-\d{4}$/);
    assert.match(body.card_number, /^\*\*\*\* \*\*\*\* \*\*\*\* \d{4}$/);
    const bulk = await fetch(`${gw}/users?limit=50`, { headers: auth });
    assert.equal(bulk.status, 403);
    assert.equal(((await bulk.json()) as { type: string }).type, 'https://rampart.dev/problems/bulk-extraction');
    assert.equal((await fetch(`${gw}/users?limit=20`, { headers: auth })).status, 200);
  });

  test('contract and authorization: BOLA, BFLA, over-exposure, undocumented endpoints, mass assignment', async () => {
    const t = await token('alice-app', 'alice-secret-0123456789abcdef', 'accounts:read accounts:write');
    const auth = { authorization: `Bearer ${t}` };
    const type = async (r: Response) => ((await r.json()) as { type: string }).type.replace('https://rampart.dev/problems/', '');
    const other = await fetch(`${gw}/users/1003`, { headers: auth });
    assert.deepEqual([other.status, await type(other)], [403, 'object-denied']);
    const acct = await fetch(`${gw}/accounts/5001`, { headers: auth });
    assert.deepEqual([acct.status, await type(acct)], [403, 'response-object-denied']);
    const own = (await (await fetch(`${gw}/users/1002`, { headers: auth })).json()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(own).sort(), ['address', 'email', 'id', 'name', 'phone']);
    const dbg = await fetch(`${gw}/debug/config`, { headers: auth });
    assert.deepEqual([dbg.status, await type(dbg)], [404, 'operation-undocumented']);
    const del = await fetch(`${gw}/users/1010`, { method: 'DELETE', headers: auth });
    assert.deepEqual([del.status, await type(del)], [403, 'insufficient-scope']);
    const json = { ...auth, 'content-type': 'application/json' };
    const mass = await fetch(`${gw}/users`, { method: 'POST', headers: json, body: JSON.stringify({ name: 'Eve', email: 'eve@example.com', role: 'admin' }) });
    assert.deepEqual([mass.status, await type(mass)], [400, 'mass-assignment']);
    const sqli = await fetch(`${gw}/users`, { method: 'POST', headers: json, body: JSON.stringify({ name: "x' OR '1'='1", email: 'eve@example.com' }) });
    assert.deepEqual([sqli.status, await type(sqli)], [403, 'injection-detected']);
    const steal = await fetch(`${gw}/transfers`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ from_account: 5001, to_account: 5004, amount: 10, currency: 'USD' }),
    });
    assert.deepEqual([steal.status, await type(steal)], [403, 'object-denied']);
    const mine = await fetch(`${gw}/transfers`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ from_account: 5004, to_account: 5001, amount: 10, currency: 'USD' }),
    });
    assert.equal(mine.status, 201);
  });

  test('a burst of 300 requests from one client within a second sees 429s', async () => {
    const t = await token('admin-app', 'admin-secret-0123456789abcdef', 'accounts:read admin');
    const statuses = await Promise.all(
      Array.from({ length: 300 }, () =>
        fetch(`${gw}/accounts/5004`, { headers: { authorization: `Bearer ${t}` } }).then(async (r) => {
          await r.arrayBuffer();
          return r.status;
        }),
      ),
    );
    const limited = statuses.filter((s) => s === 429).length;
    assert.ok(limited > 0, `429s in the burst: ${limited}`);
  });
});
