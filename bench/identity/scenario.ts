/**
 * `identity` benchmark: the cost of JWT access-token verification on the request path, in the
 * same run against the same demo upstream: Rampart with no controls (open route) vs Rampart in
 * zero-config token mode (`--issuer URL --audience AUD`, otherwise `--no-controls`), every request
 * carrying the same valid ES256 access token. With the verification cache (SHA-256 of the token →
 * verified claims, until `exp`) only the first request pays for the signature; the others pay for
 * a hash, a cache lookup, the jti deny-list lookup in the state store and the identity headers.
 * Target: the protected route keeps at least 90 % of the open route's requests per second.
 *
 * The issuer is a minimal OpenID discovery + JWKS server in this process (it is only asked once,
 * at start-up); tokens are minted here with jose.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import type { BenchContext, RampartService, Scenario } from '../run.ts';
import { printTable } from '../table.ts';
import type { Row } from '../table.ts';

const AUDIENCE = 'https://api.bench.rampart.test';

/** A discovery + JWKS server on 127.0.0.1:0 and a token signer. */
async function startIssuer(): Promise<{ issuer: string; token: (scope: string) => Promise<string>; close: () => Promise<void> }> {
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: 'bench-1', alg: 'ES256', use: 'sig' };
  let issuer = '';
  const server: Server = createServer((req, res) => {
    if (req.url === '/.well-known/openid-configuration') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks` }));
    } else if (req.url === '/jwks') {
      res.writeHead(200, { 'content-type': 'application/jwk-set+json' }).end(JSON.stringify({ keys: [jwk] }));
    } else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    issuer,
    token: (scope) =>
      new SignJWT({ scope, client_id: 'bench-client', jti: `bench-${Date.now()}` })
        .setProtectedHeader({ alg: 'ES256', kid: 'bench-1', typ: 'at+jwt' })
        .setIssuer(issuer)
        .setAudience(AUDIENCE)
        .setSubject('bench-client')
        .setIssuedAt()
        .setExpirationTime('1h')
        .sign(privateKey),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

async function run(ctx: BenchContext): Promise<unknown> {
  const upstream = await ctx.startUpstream();
  const idp = await startIssuer();
  const started: Array<{ name: string; svc: RampartService; headers?: Record<string, string> }> = [];
  try {
    const token = await idp.token('read');
    started.push({ name: 'open route', svc: await ctx.startRampart({ upstream: upstream.url, args: ['--no-controls'] }) });
    started.push({
      name: 'JWT route',
      svc: await ctx.startRampart({ upstream: upstream.url, args: ['--no-controls', '--issuer', idp.issuer, '--audience', AUDIENCE] }),
      headers: { authorization: `Bearer ${token}` },
    });
    // Sanity: the JWT route really verifies (401 without a token, 200 with it).
    const jwt = started[1] as (typeof started)[number];
    const denied = await fetch(`${jwt.svc.url}/health`);
    await denied.arrayBuffer();
    if (denied.status !== 401) throw new Error(`JWT route without a token answered ${denied.status}, expected 401`);
    const ok = await fetch(`${jwt.svc.url}/health`, { headers: jwt.headers });
    await ok.arrayBuffer();
    if (ok.status !== 200) throw new Error(`JWT route with a valid token answered ${ok.status}`);

    const results = await ctx.compare(started.map(({ name, svc, headers }) => ({ name, load: { url: `${svc.url}/health`, headers } })));
    const base = results[0]?.result;
    const rows: Row[] = results.map(({ name, result }) => ({
      target: name,
      'req/s': Math.round(result.rps),
      'p50 ms': result.p50Ms,
      'p99 ms': result.p99Ms,
      'vs open': base ? `${((result.rps / base.rps) * 100).toFixed(1)} %` : '-',
      errors: result.errors,
      'non-2xx': result.non2xx,
    }));
    const { connections, durationSec, rounds } = ctx.config;
    printTable(rows, {
      title: `identity: GET /health, open vs JWT-protected (cached verification), ${connections} connections, ${durationSec} s x ${rounds} round(s)`,
    });
    const ratio = base && results[1] ? results[1].result.rps / base.rps : Number.NaN;
    console.log(`\nJWT route / open route: ${(ratio * 100).toFixed(1)} % of req/s (target >= 90 %)`);
    return { ...Object.fromEntries(results.map(({ name, result }) => [name, result])), jwtVsOpenRps: ratio };
  } finally {
    await Promise.all([...started.map((s) => s.svc.stop()), upstream.stop(), idp.close()]);
  }
}

export const identityScenario: Scenario = {
  name: 'identity',
  description: 'JWT verification cost: open route vs JWT-protected route with the verification cache (same run)',
  run,
};
