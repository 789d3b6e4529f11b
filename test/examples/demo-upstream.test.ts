/**
 * The demo upstream over real HTTP: its deliberate flaws exist, its data is deterministic, and
 * its test endpoints (slow, echo, upload, big, gzip) behave as the gateway tests expect.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import type { IncomingMessage } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { startDemoUpstream } from '../../examples/demo-upstream.ts';
import type { DemoUpstream } from '../../examples/demo-upstream.ts';

/** Luhn check, written independently of the generator. */
function luhn(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

function validSsn(ssn: string): boolean {
  const m = /^(\d{3})-(\d{2})-(\d{4})$/.exec(ssn);
  if (!m) return false;
  const [, area, group, serial] = m;
  return area !== '000' && area !== '666' && !area?.startsWith('9') && group !== '00' && serial !== '0000';
}

/** Raw GET without decompression: status, headers, body bytes. */
function rawGet(url: string): Promise<{ res: IncomingMessage; body: Buffer }> {
  return new Promise((resolve, reject) => {
    request(url, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ res, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
}

// biome-ignore lint/suspicious/noExplicitAny: parsed JSON test bodies are untyped.
async function getJson(url: string, init?: RequestInit): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(url, init);
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

describe('demo upstream', () => {
  let up: DemoUpstream;

  before(async () => {
    up = await startDemoUpstream({ port: 0 });
  });
  after(async () => {
    await up.close();
  });

  it('listens on 127.0.0.1 with a random port and answers /health', async () => {
    assert.match(up.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.ok(up.port > 0);
    const { status, body, headers } = await getJson(`${up.url}/health`);
    assert.equal(status, 200);
    assert.deepEqual(body, { status: 'ok' });
    assert.match(headers.get('content-type') ?? '', /^application\/json/);
    assert.equal(headers.get('x-powered-by'), 'demo-express/4.18');
    assert.equal(headers.get('server'), 'demo-accounts/1.0');
  });

  it('BOLA + over-exposure: GET /users/1002 serves internal fields to anyone', async () => {
    const { status, body } = await getJson(`${up.url}/users/1002`, {
      headers: { 'x-rampart-subject': '1003', authorization: 'Bearer someone-else' },
    });
    assert.equal(status, 200);
    assert.equal(body.id, 1002);
    for (const field of ['name', 'email', 'phone', 'address']) assert.ok(body[field], field);
    assert.match(body.password_hash, /^\$2b\$12\$[./A-Za-z0-9]{53}$/);
    assert.equal(typeof body.internal_notes, 'string');
    assert.ok(validSsn(body.ssn), body.ssn);
    assert.equal(typeof body.risk_score, 'number');
    assert.equal(body.role, 'customer');
  });

  it('GET /accounts/{id} and its transactions serve any account', async () => {
    const account = await getJson(`${up.url}/accounts/5001`);
    assert.equal(account.status, 200);
    assert.equal(account.body.id, 5001);
    assert.equal(typeof account.body.user_id, 'number');
    assert.match(account.body.iban, /^[A-Z]{2}\d{2}[A-Z0-9]+$/);
    const txs = await getJson(`${up.url}/accounts/5001/transactions?limit=2`);
    assert.equal(txs.status, 200);
    assert.equal(txs.body.items.length, 2);
    assert.ok(txs.body.total >= 3);
    assert.equal(txs.body.items[0].account_id, 5001);
  });

  it('every user has 1..3 accounts and each account several transactions', () => {
    assert.equal(up.data.users.size, 50);
    assert.deepEqual([...up.data.users.keys()].slice(0, 2), [1001, 1002]);
    assert.ok(up.data.users.has(1050));
    for (const user of up.data.users.values()) {
      const n = [...up.data.accounts.values()].filter((a) => a.user_id === user.id).length;
      assert.ok(n >= 1 && n <= 3, `user ${user.id} has ${n} accounts`);
    }
    for (const ledger of up.data.transactions.values()) assert.ok(ledger.length >= 3);
  });

  it('tax profile carries a valid-format SSN and a Luhn-valid card number', async () => {
    for (const id of [1001, 1002, 1017, 1050]) {
      const { status, body } = await getJson(`${up.url}/users/${id}/tax-profile`);
      assert.equal(status, 200);
      assert.equal(body.user_id, id);
      assert.ok(validSsn(body.ssn), `ssn ${body.ssn}`);
      assert.match(body.card_number, /^\d{4} \d{4} \d{4} \d{4}$/);
      assert.ok(luhn(body.card_number.replaceAll(' ', '')), `card ${body.card_number}`);
    }
    // Every generated profile, not only the sampled ones.
    for (const p of up.data.taxProfiles.values()) {
      assert.ok(validSsn(p.ssn), p.ssn);
      assert.ok(luhn(p.card_number.replaceAll(' ', '')), p.card_number);
    }
  });

  it('seeded data is the same across two starts', async () => {
    const other = await startDemoUpstream({});
    try {
      const a = await getJson(`${up.url}/users/1001`);
      const b = await getJson(`${other.url}/users/1001`);
      assert.equal(a.body.name, b.body.name);
      assert.deepEqual(a.body, b.body);
      const ta = await getJson(`${up.url}/users/1030/tax-profile`);
      const tb = await getJson(`${other.url}/users/1030/tax-profile`);
      assert.deepEqual(ta.body, tb.body);
      const da = await getJson(`${up.url}/debug/config`);
      const db = await getJson(`${other.url}/debug/config`);
      assert.deepEqual(da.body, db.body);
    } finally {
      await other.close();
    }
  });

  it('GET /users pages with ?limit= up to 10000 and ?offset=', async () => {
    const first = await getJson(`${up.url}/users`);
    assert.equal(first.status, 200);
    assert.equal(first.body.items.length, 20);
    assert.equal(first.body.limit, 20);
    const five = await getJson(`${up.url}/users?limit=5&offset=3`);
    assert.deepEqual(
      five.body.items.map((u: { id: number }) => u.id),
      [1004, 1005, 1006, 1007, 1008],
    );
    const all = await getJson(`${up.url}/users?limit=10000`);
    assert.equal(all.body.limit, 10000);
    assert.ok(all.body.items.length >= 50);
    assert.ok(all.body.items.every((u: { ssn?: unknown }) => 'ssn' in u));
    const clamped = await getJson(`${up.url}/users?limit=999999`);
    assert.equal(clamped.body.limit, 10000);
    assert.equal((await getJson(`${up.url}/users?limit=abc`)).status, 400);
    assert.equal((await getJson(`${up.url}/users?limit=0`)).status, 400);
  });

  it('GET /export/users dumps every user with full PII', async () => {
    const { status, body } = await getJson(`${up.url}/export/users`);
    assert.equal(status, 200);
    assert.ok(Array.isArray(body));
    assert.ok(body.length >= 50);
    assert.ok(body.every((u: { ssn: string | null; password_hash: string }) => u.password_hash && 'ssn' in u));
  });

  it('GET /debug/config leaks fake secrets', async () => {
    const { status, body } = await getJson(`${up.url}/debug/config`);
    assert.equal(status, 200);
    assert.match(body.aws.access_key_id, /^AKIA[A-Z2-7]{16}$/);
    assert.equal(body.aws.secret_access_key.length, 40);
    assert.match(body.database_url, /^postgres:\/\/[^:]+:[^@]+@[^/]+\/\w+$/);
  });

  it('POST /users accepts any property (mass assignment)', async () => {
    const created = await getJson(`${up.url}/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Mallory Mass', email: 'mallory@example.com', role: 'admin', risk_score: 0 }),
    });
    assert.equal(created.status, 201);
    assert.equal(created.body.role, 'admin');
    assert.equal(created.body.risk_score, 0);
    assert.equal(created.headers.get('location'), `/users/${created.body.id}`);
    const fetched = await getJson(`${up.url}/users/${created.body.id}`);
    assert.equal(fetched.body.role, 'admin');
    const admins = await getJson(`${up.url}/admin/users`);
    assert.ok(admins.body.items.some((u: { id: number; role: string }) => u.id === created.body.id && u.role === 'admin'));
  });

  it('rejects invalid JSON and non-object bodies with 400 JSON errors', async () => {
    const bad = await getJson(`${up.url}/users`, { method: 'POST', body: '{"name":' });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error, 'invalid_json');
    const arr = await getJson(`${up.url}/users`, { method: 'POST', body: '[1,2]' });
    assert.equal(arr.status, 400);
    const missing = await getJson(`${up.url}/users`, { method: 'POST', body: '{"name":"x"}' });
    assert.equal(missing.status, 400);
    const transfer = await getJson(`${up.url}/transfers`, { method: 'POST', body: 'not json' });
    assert.equal(transfer.status, 400);
  });

  it('answers unknown routes 404 and wrong methods 405, as JSON', async () => {
    const nf = await getJson(`${up.url}/nope`);
    assert.equal(nf.status, 404);
    assert.equal(nf.body.error, 'not_found');
    assert.equal((await getJson(`${up.url}/users/999999`)).status, 404);
    assert.equal((await getJson(`${up.url}/users/abc`)).status, 400);
    const wrong = await getJson(`${up.url}/health`, { method: 'DELETE' });
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get('allow'), 'GET');
  });

  it('POST /transfers moves money, without ownership checks and with negative amounts', async () => {
    const usd = [...up.data.accounts.values()].filter((a) => a.currency === 'USD' && a.balance > 100);
    const [from, to] = usd;
    assert.ok(from && to);
    const before = from.balance;
    const ok = await getJson(`${up.url}/transfers`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ from_account: from.id, to_account: to.id, amount: 10.5, currency: 'USD' }),
    });
    assert.equal(ok.status, 201);
    assert.equal(ok.body.status, 'completed');
    assert.equal(from.balance, Math.round((before - 10.5) * 100) / 100);
    const reverse = await getJson(`${up.url}/transfers`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ from_account: from.id, to_account: to.id, amount: -1000, currency: 'USD' }),
    });
    assert.equal(reverse.status, 201, 'negative amounts are accepted (deliberate flaw)');
    const ledger = await getJson(`${up.url}/accounts/${from.id}/transactions?limit=1`);
    assert.equal(ledger.body.items[0].transfer_id, reverse.body.id);
    const tooMuch = await getJson(`${up.url}/transfers`, {
      method: 'POST',
      body: JSON.stringify({ from_account: from.id, to_account: to.id, amount: 1e9, currency: 'USD' }),
    });
    assert.equal(tooMuch.status, 422);
  });

  it('admin operations check nothing: GET /admin/users, DELETE /users/{id}', async () => {
    const list = await getJson(`${up.url}/admin/users`);
    assert.equal(list.status, 200);
    assert.ok(list.body.total >= 50);
    const del = await fetch(`${up.url}/users/1049`, { method: 'DELETE' });
    assert.equal(del.status, 204);
    assert.equal((await getJson(`${up.url}/users/1049`)).status, 404);
  });

  it('GET /slow?ms=N waits N ms', async () => {
    const t0 = performance.now();
    const { status, body } = await getJson(`${up.url}/slow?ms=250`);
    const elapsed = performance.now() - t0;
    assert.equal(status, 200);
    assert.deepEqual(body, { slept_ms: 250 });
    assert.ok(elapsed >= 240, `elapsed ${elapsed}`);
  });

  it('POST /echo streams the body back before the request has ended', async () => {
    const url = new URL(`${up.url}/echo`);
    const echoed = await new Promise<string>((resolve, reject) => {
      const req = request(url, { method: 'POST', headers: { 'content-type': 'text/plain' } }, (res) => {
        assert.equal(res.statusCode, 200);
        assert.equal(res.headers['content-type'], 'text/plain');
        let got = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          got += chunk;
          // The first chunk came back while the request is still open: now finish it.
          if (got === 'first-chunk;') req.end('second-chunk');
        });
        res.on('end', () => resolve(got));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.flushHeaders();
      req.write('first-chunk;');
    });
    assert.equal(echoed, 'first-chunk;second-chunk');
  });

  it('GET /echo-headers returns the received request headers', async () => {
    const { status, body, headers } = await getJson(`${up.url}/echo-headers?x=1`, {
      headers: { 'x-rampart-subject': 'alice', 'x-forwarded-for': '203.0.113.7' },
    });
    assert.equal(status, 200);
    assert.equal(body['x-rampart-subject'], 'alice');
    assert.equal(body['x-forwarded-for'], '203.0.113.7');
    assert.equal(headers.get('x-received-url'), '/echo-headers?x=1');
  });

  it('POST /upload hashes a 5 MB body', async () => {
    const payload = randomBytes(5 * 1024 * 1024);
    const { status, body } = await getJson(`${up.url}/upload`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: payload,
    });
    assert.equal(status, 200);
    assert.equal(body.bytes, payload.length);
    assert.equal(body.sha256, createHash('sha256').update(payload).digest('hex'));
  });

  it('GET /big?bytes=N streams exactly N bytes', async () => {
    const n = 3 * 1024 * 1024 + 17;
    const { res, body } = await rawGet(`${up.url}/big?bytes=${n}`);
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-length'], String(n));
    assert.equal(body.length, n);
  });

  it('GET /gzip sends a gzip-encoded JSON body with an SSN', async () => {
    const { res, body } = await rawGet(`${up.url}/gzip`);
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-encoding'], 'gzip');
    assert.match(res.headers['content-type'] ?? '', /^application\/json/);
    assert.equal(body[0], 0x1f);
    assert.equal(body[1], 0x8b);
    const json = JSON.parse(gunzipSync(body).toString('utf8'));
    assert.ok(validSsn(json.ssn), json.ssn);
  });
});
