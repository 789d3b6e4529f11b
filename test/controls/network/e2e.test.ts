/**
 * End to end through a real gateway in front of a real upstream: the client IP from the
 * trusted-proxy rule, list files edited while running, geofencing, impossible travel with the
 * real identity control and oidc-provider tokens, the RFC 9470 step-up challenge, revocation,
 * configuration errors and the zero-config flags.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { z } from 'zod';
import { sourceOf } from '../../../src/cli/serve.ts';
import { ConfigError } from '../../../src/config/load.ts';
import { CONTROLS } from '../../../src/controls/index.ts';
import { defineControl } from '../../../src/pipeline/control.ts';
import { echoUpstream, httpRequestText, spawnRampart, startTestGateway, type TestUpstream, waitForStatus } from '../../helpers/gateway.ts';
import { startOidcProvider, type TestOidcProvider } from '../../helpers/oidc.ts';

const NY = '128.122.0.1'; // New York University (DB-IP: New York, US)
const LONDON = '81.2.69.160'; // DB-IP: London, GB
const tmp = mkdtempSync(join(tmpdir(), 'rampart-net-e2e-'));
let up: TestUpstream;
before(async () => {
  up = await echoUpstream();
});
after(async () => {
  await up.close();
  rmSync(tmp, { recursive: true, force: true });
});

/** A test-only identity control: `x-test-sub` / `x-test-jti` become ctx.identity. */
const headerIdentity = defineControl({
  name: 'test_identity',
  schema: z.strictObject({}),
  defaultConfig: {},
  create: () => ({
    request: [
      {
        control: 'test_identity',
        phase: 'identity',
        run(ctx) {
          const sub = ctx.headers['x-test-sub'];
          if (typeof sub === 'string') {
            const jti = ctx.headers['x-test-jti'];
            ctx.identity = { subject: sub, scopes: [], methods: ['jwt'], claims: {}, tokenId: typeof jti === 'string' ? jti : undefined };
          }
          return undefined;
        },
      },
    ],
  }),
});

/**
 * Parses a `WWW-Authenticate` challenge (RFC 9110 §11.6.1: auth-scheme 1*SP #auth-param, each
 * `token BWS "=" BWS ( token / quoted-string )`). @throws {Error} on a syntax error.
 */
function parseChallenge(v: string): { scheme: string; params: Record<string, string> } {
  const m = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) +(.*)$/.exec(v);
  if (!m) throw new Error(`not a challenge: ${v}`);
  const params: Record<string, string> = {};
  const re = /\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([!#$%&'*+.^_`|~0-9A-Za-z-]+))\s*(,|$)/y;
  const rest = m[2] as string;
  while (re.lastIndex < rest.length) {
    const p = re.exec(rest);
    if (!p) throw new Error(`bad auth-param at ${re.lastIndex} in ${v}`);
    const name = (p[1] as string).toLowerCase();
    if (name in params) throw new Error(`repeated parameter ${name}`);
    params[name] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : (p[3] as string);
  }
  return { scheme: m[1] as string, params };
}

/** Checks a step-up challenge against RFC 9470 §3 (and RFC 6750 §3 for the shared parameters). */
function assertRfc9470(header: string | null | undefined, expect: { acr_values?: string; max_age?: string } = {}): void {
  assert.ok(header, 'WWW-Authenticate present');
  const c = parseChallenge(header);
  assert.equal(c.scheme, 'Bearer');
  assert.equal(c.params.error, 'insufficient_user_authentication');
  // RFC 6750 §3: error_description is %x20-21 / %x23-5B / %x5D-7E.
  assert.match(c.params.error_description ?? '', /^[\x20\x21\x23-\x5b\x5d-\x7e]+$/);
  assert.equal(c.params.acr_values, expect.acr_values);
  assert.equal(c.params.max_age, expect.max_age);
  if (c.params.max_age !== undefined) assert.match(c.params.max_age, /^\d+$/);
  for (const k of Object.keys(c.params))
    assert.ok(['realm', 'error', 'error_description', 'acr_values', 'max_age', 'scope', 'error_uri'].includes(k), `unexpected parameter ${k}`);
}

describe('client IP: X-Forwarded-For from an untrusted peer is ignored', () => {
  it('the lists apply to the real peer; a trusted proxy makes the forwarded address count', async () => {
    const api = (network: unknown) => ({ apis: [{ name: 'a', upstream: { targets: [up.url] }, controls: { network } }] });
    const untrusted = await startTestGateway(api({ allow: ['203.0.113.0/24'] }));
    try {
      const r = await httpRequestText(`${untrusted.url}/x`, { headers: { 'x-forwarded-for': '203.0.113.5' } });
      assert.equal(r.status, 403);
      assert.equal(r.headers['content-type'], 'application/problem+json');
      assert.equal(JSON.parse(r.body).type, 'https://rampart.dev/problems/ip-not-allowed');
      assert.deepEqual(
        untrusted.events.map((e) => [e.control, e.reason, e.action, e.status, e.client_ip]),
        [['network', 'ip-not-allowed', 'deny', 403, '127.0.0.1']],
      );
    } finally {
      await untrusted.close(100);
    }
    const denied = await startTestGateway(api({ deny: ['127.0.0.1/32'] }));
    try {
      const r = await httpRequestText(`${denied.url}/x`, { headers: { 'x-forwarded-for': '8.8.8.8', forwarded: 'for=8.8.8.8' } });
      assert.equal(r.status, 403);
      assert.equal(JSON.parse(r.body).type, 'https://rampart.dev/problems/ip-denied');
    } finally {
      await denied.close(100);
    }
    const trusted = await startTestGateway({ trusted_proxies: ['127.0.0.1/32'], ...api({ allow: ['203.0.113.0/24'] }) });
    try {
      assert.equal((await httpRequestText(`${trusted.url}/x`, { headers: { 'x-forwarded-for': '203.0.113.5' } })).status, 200);
      assert.equal((await httpRequestText(`${trusted.url}/x`, { headers: { 'x-forwarded-for': '198.51.100.5' } })).status, 403);
    } finally {
      await trusted.close(100);
    }
  });
});

describe('list files', () => {
  it('a deny-list file edited while the gateway runs takes effect without a reload', async () => {
    const file = join(tmp, 'deny.txt');
    writeFileSync(file, '# nobody yet\n192.0.2.0/24\n');
    const gw = await startTestGateway(
      { apis: [{ name: 'a', upstream: { targets: [up.url] }, controls: { network: { deny_files: ['deny.txt'] } } }] },
      { configDir: tmp },
    );
    try {
      assert.equal((await fetch(`${gw.url}/x`)).status, 200);
      writeFileSync(file, '# block the test client\n127.0.0.0/8\n');
      let status = 200;
      for (let i = 0; i < 250 && status === 200; i++) {
        await new Promise((r) => setTimeout(r, 20));
        const r = await fetch(`${gw.url}/x`);
        await r.arrayBuffer();
        status = r.status;
      }
      assert.equal(status, 403);
      writeFileSync(file, '');
      for (let i = 0; i < 250 && status === 403; i++) {
        await new Promise((r) => setTimeout(r, 20));
        const r = await fetch(`${gw.url}/x`);
        await r.arrayBuffer();
        status = r.status;
      }
      assert.equal(status, 200, 'an emptied list lets the client in again');
    } finally {
      await gw.close(100);
    }
  });
  it('an unreadable list file or geo database refuses the configuration, naming the file', async () => {
    const missing = join(tmp, 'missing.txt');
    await assert.rejects(
      startTestGateway({ apis: [{ name: 'a', upstream: { targets: [up.url] }, controls: { network: { allow_files: ['missing.txt'] } } }] }, { configDir: tmp }),
      (e: Error) =>
        e instanceof ConfigError && e.message.includes(`IP list file "${missing}" cannot be read: ENOENT`) && e.message.includes('apis[0].controls.network'),
    );
    const db = join(tmp, 'nope.mmdb');
    await assert.rejects(
      startTestGateway(
        { apis: [{ name: 'a', upstream: { targets: [up.url] }, controls: { network: { deny_countries: ['GB'], geo: { databases: ['nope.mmdb'] } } } }] },
        { configDir: tmp },
      ),
      (e: Error) => e instanceof ConfigError && e.message.includes(`geo database "${db}" cannot be read`),
    );
  });
});

describe('geofencing', () => {
  it('denies a country for the API and another one for a route only', async () => {
    const gw = await startTestGateway({
      trusted_proxies: ['127.0.0.1/32'],
      apis: [
        {
          name: 'a',
          upstream: { targets: [up.url] },
          controls: { network: { deny_countries: ['GB'], routes: [{ path_prefix: '/admin', allow_countries: ['JP'] }] } },
        },
      ],
    });
    try {
      const xff = (ip: string) => ({ headers: { 'x-forwarded-for': ip } });
      const r = await httpRequestText(`${gw.url}/x`, xff(LONDON));
      assert.equal(r.status, 403);
      assert.deepEqual(JSON.parse(r.body), {
        type: 'https://rampart.dev/problems/country-denied',
        title: 'Forbidden',
        status: 403,
        detail: 'Requests from this location are not allowed.',
        instance: JSON.parse(r.body).instance,
      });
      assert.equal(gw.events.at(-1)?.details?.country, 'GB');
      assert.equal((await httpRequestText(`${gw.url}/x`, xff(NY))).status, 200);
      assert.equal((await httpRequestText(`${gw.url}/admin`, xff(NY))).status, 403);
      assert.equal((await httpRequestText(`${gw.url}/admin`, xff('210.140.92.1'))).status, 200);
      assert.equal((await httpRequestText(`${gw.url}/admin`, xff('10.0.0.1'))).status, 403, 'unknown location on an allow-countries route');
      assert.equal((await httpRequestText(`${gw.url}/x`, xff('10.0.0.1'))).status, 200, 'unknown location with only a deny list');
    } finally {
      await gw.close(100);
    }
  });
});

describe('impossible travel (test identity control)', () => {
  it('New York then London 30 s later: event, then challenge (RFC 9470)', async () => {
    const gw = await startTestGateway(
      {
        trusted_proxies: ['127.0.0.1/32'],
        apis: [
          {
            name: 'watch',
            match: { path_prefix: '/watch' },
            upstream: { targets: [up.url] },
            controls: { network: { travel: { enabled: true, action: 'event' } } },
          },
          {
            name: 'guard',
            match: { path_prefix: '/guard' },
            upstream: { targets: [up.url] },
            controls: { network: { travel: { enabled: true }, step_up: { acr_values: ['urn:rampart:mfa'], max_age: 300 } } },
          },
        ],
      },
      { controls: [...CONTROLS, headerIdentity] },
    );
    try {
      const as = (ip: string, sub: string) => ({ headers: { 'x-forwarded-for': ip, 'x-test-sub': sub } });
      assert.equal((await httpRequestText(`${gw.url}/watch/1`, as(NY, 'alice'))).status, 200);
      assert.equal((await httpRequestText(`${gw.url}/watch/1`, as(LONDON, 'alice'))).status, 200);
      const alert = gw.events.filter((e) => e.reason === 'impossible-travel');
      assert.equal(alert.length, 1);
      assert.deepEqual(
        [alert[0]?.action, alert[0]?.identity, alert[0]?.client_ip, alert[0]?.details?.from_country, alert[0]?.details?.to_country],
        ['alert', 'alice', LONDON, 'US', 'GB'],
      );

      gw.events.length = 0;
      assert.equal((await httpRequestText(`${gw.url}/guard/1`, as(NY, 'bob'))).status, 200);
      const r = await httpRequestText(`${gw.url}/guard/1`, as(LONDON, 'bob'));
      assert.equal(r.status, 401);
      assert.equal(r.headers['content-type'], 'application/problem+json');
      assert.equal(JSON.parse(r.body).type, 'https://rampart.dev/problems/impossible-travel');
      assertRfc9470(r.headers['www-authenticate'], { acr_values: 'urn:rampart:mfa', max_age: '300' });
      assert.deepEqual(
        gw.events.map((e) => [e.control, e.reason, e.action, e.status]),
        [['network', 'impossible-travel', 'challenge', 401]],
      );
      assert.equal((await httpRequestText(`${gw.url}/guard/1`, as(LONDON, 'carol'))).status, 200, 'another identity is unaffected');
    } finally {
      await gw.close(100);
    }
  });
});

describe('impossible travel with the real identity control and oidc-provider tokens', () => {
  let op: TestOidcProvider;
  before(async () => {
    op = await startOidcProvider();
  });
  after(async () => {
    await op.close();
  });
  const identity = () => ({ providers: { jwt: { issuer: op.issuer, audiences: [op.audience] } } });

  it('challenge: the same token from London 30 s after New York is challenged until a new token is obtained', async () => {
    const gw = await startTestGateway({
      trusted_proxies: ['127.0.0.1/32'],
      apis: [
        { name: 'orders', upstream: { targets: [up.url] }, controls: { identity: identity(), network: { travel: { enabled: true, action: 'challenge' } } } },
      ],
    });
    try {
      const token = await op.token({ scope: 'read' });
      const call = (ip: string, t = token) => httpRequestText(`${gw.url}/orders/1`, { headers: { authorization: `Bearer ${t}`, 'x-forwarded-for': ip } });
      assert.equal((await call(NY)).status, 200);
      const r = await call(LONDON);
      assert.equal(r.status, 401);
      assertRfc9470(r.headers['www-authenticate']);
      assert.equal(parseChallenge(r.headers['www-authenticate'] as string).params.realm, 'orders');
      const ev = gw.events.filter((e) => e.control === 'network');
      assert.deepEqual(
        [ev.length, ev[0]?.reason, ev[0]?.action, ev[0]?.identity, ev[0]?.details?.reason],
        [1, 'impossible-travel', 'challenge', op.clientId, 'speed'],
      );
      assert.equal((await call(NY)).status, 401, 'the challenged token stays challenged');
      const fresh = await op.token({ scope: 'read' });
      assert.equal((await call(LONDON, fresh)).status, 200);
    } finally {
      await gw.close(100);
    }
  });

  it('revoke: the token is refused by the identity control from then on, from anywhere', async () => {
    const gw = await startTestGateway({
      trusted_proxies: ['127.0.0.1/32'],
      apis: [
        {
          name: 'orders',
          upstream: { targets: [up.url] },
          controls: { identity: identity(), network: { travel: { enabled: true, action: 'revoke', key: 'token' } } },
        },
      ],
    });
    try {
      const token = await op.token({ scope: 'read' });
      const call = (ip: string) => httpRequestText(`${gw.url}/orders/1`, { headers: { authorization: `Bearer ${token}`, 'x-forwarded-for': ip } });
      assert.equal((await call(NY)).status, 200);
      const r = await call(LONDON);
      assert.equal(r.status, 401);
      assert.deepEqual(parseChallenge(r.headers['www-authenticate'] as string).params, {
        realm: 'orders',
        error: 'invalid_token',
        error_description: 'The access token has been revoked',
      });
      const back = await call(NY);
      assert.equal(back.status, 401);
      assert.equal(JSON.parse(back.body).type, 'https://rampart.dev/problems/token-revoked');
      assert.deepEqual(
        gw.events.map((e) => [e.control, e.reason, e.details?.revoked]),
        [
          ['network', 'impossible-travel', true],
          ['identity', 'token-revoked', undefined],
        ],
      );
    } finally {
      await gw.close(100);
    }
  });

  it('binding: a token first used from one /24 is refused from another', async () => {
    const gw = await startTestGateway({
      trusted_proxies: ['127.0.0.1/32'],
      apis: [{ name: 'orders', upstream: { targets: [up.url] }, controls: { identity: identity(), network: { binding: { enabled: true } } } }],
    });
    try {
      const token = await op.token({ scope: 'read' });
      const call = (ip: string) => httpRequestText(`${gw.url}/orders/1`, { headers: { authorization: `Bearer ${token}`, 'x-forwarded-for': ip } });
      assert.equal((await call('203.0.113.5')).status, 200);
      assert.equal((await call('203.0.113.77')).status, 200);
      const r = await call('198.51.100.7');
      assert.equal(r.status, 401);
      assert.equal(JSON.parse(r.body).type, 'https://rampart.dev/problems/token-network-mismatch');
      assert.deepEqual(gw.events.at(-1)?.details, { bound: '203.0.113.0/24', seen: '198.51.100.0/24', by: 'prefix' });
    } finally {
      await gw.close(100);
    }
  });
});

describe('zero-config flags', () => {
  it('--allow-ip, --deny-ip, --geo-allow, --geo-deny map to the network control', () => {
    const src = sourceOf({
      upstream: up.url,
      trustedProxy: [],
      controls: true,
      allowIp: ['10.0.0.0/8', '2001:db8::/32'],
      denyIp: ['10.6.6.6'],
      geoAllow: ['us', 'CA'],
      geoDeny: ['GB'],
    });
    const apis = (src.config as { apis: { controls: Record<string, unknown> }[] }).apis;
    assert.deepEqual(apis[0]?.controls.network, {
      allow: ['10.0.0.0/8', '2001:db8::/32'],
      deny: ['10.6.6.6'],
      allow_countries: ['US', 'CA'],
      deny_countries: ['GB'],
    });
    const none = sourceOf({ upstream: up.url, trustedProxy: [], controls: true });
    assert.equal((none.config as { apis: { controls: Record<string, unknown> }[] }).apis[0]?.controls.network, undefined);
  });
  it('rampart serve --upstream URL --deny-ip 127.0.0.1/32 refuses the local client', async () => {
    const p = spawnRampart([
      'serve',
      '--upstream',
      up.url,
      '--listen',
      '127.0.0.1:0',
      '--admin',
      '127.0.0.1:0',
      '--deny-ip',
      '127.0.0.1/32',
      '--geo-deny',
      'GB',
    ]);
    try {
      const url = (await p.waitForLog('rampart listening')).url as string;
      await waitForStatus(`${url}/x`, 403);
      const r = await httpRequestText(`${url}/x`);
      assert.equal(JSON.parse(r.body).type, 'https://rampart.dev/problems/ip-denied');
    } finally {
      await p.stop();
    }
  });
  it('an invalid flag value is refused before the gateway starts', async () => {
    const p = spawnRampart(['serve', '--upstream', up.url, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--geo-allow', 'USA']);
    const code = await new Promise<number | null>((r) => p.child.once('exit', (c) => r(c)));
    assert.notEqual(code, 0);
    assert.match(p.stderr(), /geo-allow|country|USA/i);
  });
});
