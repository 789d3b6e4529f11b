/**
 * DPoP end to end: oidc-provider issues DPoP-bound access tokens (RFC 9449 §5, `cnf.jkt`), the
 * gateway (identity + sender) checks each request's proof, a real upstream answers.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { decodeJwt } from 'jose';
import { echoUpstream, startTestGateway, type TestGateway, type TestUpstream } from '../../helpers/gateway.ts';
import { startOidcProvider, type TestOidcProvider } from '../../helpers/oidc.ts';
import { dpopKey, type DpopKey, proof } from './util.ts';

const ALGS = 'ES256 ES384 EdDSA Ed25519 PS256 RS256';

/** A client-credentials token request with a DPoP proof (RFC 9449 §5). */
async function dpopToken(op: TestOidcProvider, key: DpopKey): Promise<{ token: string; type: string }> {
  const res = await fetch(op.tokenEndpoint, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${op.clientId}:${op.clientSecret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
      dpop: await proof(key, { htm: 'POST', htu: op.tokenEndpoint, token: null }),
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: op.audience, scope: 'read' }),
  });
  const j = (await res.json()) as { access_token: string; token_type: string };
  assert.equal(res.status, 200, JSON.stringify(j));
  return { token: j.access_token, type: j.token_type };
}

describe('DPoP through the gateway with oidc-provider tokens', () => {
  let op: TestOidcProvider;
  let up: TestUpstream;
  let gw: TestGateway;
  let key: DpopKey;
  let token: string;

  before(async () => {
    op = await startOidcProvider();
    up = await echoUpstream();
    const identity = { providers: { jwt: { issuer: op.issuer, audiences: [op.audience] } } };
    gw = await startTestGateway({
      apis: [
        {
          name: 'nonce',
          match: { path_prefix: '/nonce' },
          upstream: { targets: [up.url] },
          controls: { identity, sender: { dpop: { nonce: { required: true } } } },
        },
        { name: 'strict', match: { path_prefix: '/strict' }, upstream: { targets: [up.url] }, controls: { identity, sender: { require: true } } },
        { name: 'orders', upstream: { targets: [up.url] }, controls: { identity } },
      ],
    });
    key = await dpopKey();
    const t = await dpopToken(op, key);
    assert.equal(t.type, 'DPoP');
    token = t.token;
    assert.deepEqual(decodeJwt(token).cnf, { jkt: key.jkt });
  });
  after(async () => {
    await gw.close();
    await up.close();
    await op.close();
  });

  const call = async (path: string, o: { method?: string; proof?: string; scheme?: string; tok?: string } = {}) => {
    const headers: Record<string, string> = { authorization: `${o.scheme ?? 'DPoP'} ${o.tok ?? token}` };
    if (o.proof !== undefined) headers.dpop = o.proof;
    const r = await fetch(`${gw.url}${path}`, { method: o.method ?? 'GET', headers });
    return { status: r.status, headers: r.headers, body: (await r.json()) as Record<string, unknown> };
  };
  const lastEvent = () => gw.events.at(-1);

  test('a valid proof → 200; the upstream sees neither the token nor the proof', async () => {
    const r = await call('/orders/1?x=1', { proof: await proof(key, { token, htu: `${gw.url}/orders/1` }) });
    assert.equal(r.status, 200);
    const h = r.body.headers as Record<string, string>;
    assert.equal(h.authorization, undefined);
    assert.equal(h.dpop, undefined);
    assert.equal(h['x-rampart-subject'], op.clientId);
    // Regression: the forwarded methods were written before the sender control verified the proof.
    assert.equal(h['x-rampart-auth-method'], 'jwt dpop');
  });

  test('a replayed proof → 401 invalid_dpop_proof, one event', async () => {
    const p = await proof(key, { token, htu: `${gw.url}/orders` });
    assert.equal((await call('/orders', { proof: p })).status, 200);
    const before = gw.events.length;
    const r = await call('/orders', { proof: p });
    assert.equal(r.status, 401);
    assert.equal(r.body.type, 'https://rampart.dev/problems/dpop-proof-replayed');
    assert.equal(
      r.headers.get('www-authenticate'),
      `DPoP realm="orders", error="invalid_dpop_proof", error_description="This DPoP proof was already used.", algs="${ALGS}"`,
    );
    assert.equal(gw.events.length, before + 1);
    assert.equal(lastEvent()?.reason, 'dpop-proof-replayed');
    assert.equal(lastEvent()?.control, 'sender');
    assert.equal(lastEvent()?.status, 401);
  });

  test('a wrong htu or htm, or an ath mismatch → 401', async () => {
    const wrongHtu = await call('/orders', { proof: await proof(key, { token, htu: `${gw.url}/admin` }) });
    assert.equal(wrongHtu.status, 401);
    assert.equal(wrongHtu.body.type, 'https://rampart.dev/problems/dpop-htu-mismatch');
    const wrongHtm = await call('/orders', { method: 'DELETE', proof: await proof(key, { token, htu: `${gw.url}/orders`, htm: 'GET' }) });
    assert.equal(wrongHtm.status, 401);
    assert.equal(wrongHtm.body.type, 'https://rampart.dev/problems/dpop-htm-mismatch');
    const other = await dpopToken(op, key);
    const ath = await call('/orders', { proof: await proof(key, { token: other.token, htu: `${gw.url}/orders` }) });
    assert.equal(ath.status, 401);
    assert.equal(ath.body.type, 'https://rampart.dev/problems/dpop-ath-mismatch');
  });

  test('a stolen DPoP token: replayed as Bearer or with the thief’s own key → 401', async () => {
    const asBearer = await call('/orders', { scheme: 'Bearer' });
    assert.equal(asBearer.status, 401);
    assert.equal(asBearer.body.type, 'https://rampart.dev/problems/dpop-proof-required');
    const thief = await dpopKey();
    const own = await call('/orders', { proof: await proof(thief, { token, htu: `${gw.url}/orders` }) });
    assert.equal(own.status, 401);
    assert.equal(own.body.type, 'https://rampart.dev/problems/dpop-key-mismatch');
  });

  test('an invalid token with the DPoP scheme gets a DPoP challenge from identity', async () => {
    const r = await call('/orders', { tok: 'not.a.token', proof: await proof(key, { token: 'not.a.token', htu: `${gw.url}/orders` }) });
    assert.equal(r.status, 401);
    const c = r.headers.get('www-authenticate') ?? '';
    assert.match(c, /^DPoP realm="orders", error="invalid_token"/);
  });

  test('server nonce: 401 use_dpop_nonce with DPoP-Nonce, the retry with it → 200', async () => {
    const htu = `${gw.url}/nonce/items`;
    const first = await call('/nonce/items', { proof: await proof(key, { token, htu }) });
    assert.equal(first.status, 401);
    assert.equal(first.body.type, 'https://rampart.dev/problems/dpop-nonce-required');
    const nonce = first.headers.get('dpop-nonce') as string;
    assert.match(nonce, /^[A-Za-z0-9_-]{22}$/);
    assert.match(first.headers.get('www-authenticate') ?? '', /^DPoP realm="nonce", error="use_dpop_nonce"/);
    const retry = await call('/nonce/items', { proof: await proof(key, { token, htu, nonce }) });
    assert.equal(retry.status, 200);
  });

  test('require: a bearer-only token → 401 sender-constraint-required; a DPoP one → 200', async () => {
    const plain = await op.token({ scope: 'read' });
    const r = await call('/strict/x', { scheme: 'Bearer', tok: plain });
    assert.equal(r.status, 401);
    assert.equal(r.body.type, 'https://rampart.dev/problems/sender-constraint-required');
    const ok = await call('/strict/x', { proof: await proof(key, { token, htu: `${gw.url}/strict/x` }) });
    assert.equal(ok.status, 200);
  });
});
