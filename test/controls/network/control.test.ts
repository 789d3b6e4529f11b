/**
 * The network control's stages run directly on request contexts (MemoryStore, injected clock):
 * lists, geofence, route rules, impossible travel actions, step-up satisfaction, binding.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createNetwork, networkSchema, revokedJtiStoreKey, stepUpChallenge } from '../../../src/controls/network/index.ts';
import type { EventInput } from '../../../src/events/event.ts';
import { type Identity, RequestContext } from '../../../src/pipeline/context.ts';
import type { Rejection } from '../../../src/pipeline/verdict.ts';
import { MemoryStore } from '../../../src/state/memory.ts';

const tmp = mkdtempSync(join(tmpdir(), 'rampart-net-ctl-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const NY = '128.122.0.1';
const LONDON = '81.2.69.160';
const HOUR = 3_600_000;

let n = 0;
function ctxOf(
  ip: string,
  o: { path?: string; method?: string; identity?: Partial<Identity>; events?: EventInput[]; authorization?: string } = {},
): RequestContext {
  const headers: Record<string, string> = { host: 'api.test' };
  if (o.authorization) headers.authorization = o.authorization;
  const req = { headers, rawHeaders: Object.entries(headers).flat() } as unknown as IncomingMessage;
  const ctx = new RequestContext(
    {
      id: `r${++n}`,
      req,
      method: o.method ?? 'GET',
      target: o.path ?? '/x',
      clientIp: ip,
      peerIp: ip,
      scheme: 'http',
      host: 'api.test',
      apiName: 'api',
      body: { read: async () => Buffer.alloc(0), buffered: undefined },
      emit: (e) => o.events?.push(e),
      signal: new AbortController().signal,
    },
    1024,
  );
  if (o.identity) ctx.identity = { subject: 'alice', scopes: [], methods: ['jwt'], claims: {}, issuer: 'https://idp.test', ...o.identity };
  return ctx;
}

async function build(config: unknown, clock?: () => number, store = new MemoryStore()) {
  const events: EventInput[] = [];
  const inst = await createNetwork(
    networkSchema.parse(config),
    { apiName: 'api', configDir: tmp, store, emit: (e) => events.push(e), log: { info() {}, warn() {}, error() {} } },
    clock,
  );
  const stages = inst.request ?? [];
  return {
    inst,
    store,
    events,
    async run(ctx: RequestContext): Promise<Rejection | undefined> {
      for (const s of stages) {
        const v = await s.run(ctx);
        if (v) return v;
      }
      return undefined;
    },
  };
}

describe('lists and geofence', () => {
  it('deny wins over allow; allow-only lets nothing else in; IPv6 works', async () => {
    const b = await build({ allow: ['192.0.2.0/24', '2001:db8::/32'], deny: ['192.0.2.66'] });
    try {
      assert.equal(await b.run(ctxOf('192.0.2.1')), undefined);
      assert.equal(await b.run(ctxOf('2001:db8::7')), undefined);
      const d = await b.run(ctxOf('192.0.2.66'));
      assert.deepEqual([d?.action, d?.problem.status, d?.problem.code, d?.details], ['deny', 403, 'ip-denied', { list: 'deny' }]);
      assert.equal((await b.run(ctxOf('198.51.100.1')))?.problem.code, 'ip-not-allowed');
      assert.equal((await b.run(ctxOf('2001:db9::1')))?.problem.code, 'ip-not-allowed');
    } finally {
      await b.inst.close?.();
    }
  });
  it('country allow list: known outside → country-denied, unknown → country-unknown (default deny)', async () => {
    const b = await build({ allow_countries: ['us'] });
    assert.equal(await b.run(ctxOf(NY)), undefined);
    const r = await b.run(ctxOf(LONDON));
    assert.deepEqual([r?.problem.status, r?.problem.code, r?.details], [403, 'country-denied', { country: 'GB' }]);
    assert.equal((await b.run(ctxOf('10.0.0.1')))?.problem.code, 'country-unknown');
    const open = await build({ allow_countries: ['US'], unknown_country: 'allow' });
    assert.equal(await open.run(ctxOf('10.0.0.1')), undefined);
  });
  it('country deny list: unknown addresses are allowed by default', async () => {
    const b = await build({ deny_countries: ['GB'] });
    assert.equal((await b.run(ctxOf(LONDON)))?.problem.code, 'country-denied');
    assert.equal(await b.run(ctxOf(NY)), undefined);
    assert.equal(await b.run(ctxOf('10.0.0.1')), undefined);
  });
  it('route rules add to the API rules, matched on the decoded path and the method', async () => {
    const b = await build({
      deny: ['203.0.113.9'],
      routes: [
        { path_prefix: '/admin', allow: ['10.0.0.0/8'] },
        { path_prefix: '/orders/', methods: ['post'], deny_countries: ['GB'] },
      ],
    });
    try {
      assert.equal(await b.run(ctxOf('198.51.100.1', { path: '/public' })), undefined);
      assert.equal((await b.run(ctxOf('198.51.100.1', { path: '/admin/users' })))?.details?.route, '/admin');
      assert.equal((await b.run(ctxOf('198.51.100.1', { path: '/%61dmin' })))?.problem.code, 'ip-not-allowed');
      assert.equal((await b.run(ctxOf('198.51.100.1', { path: '//admin' })))?.problem.code, 'ip-not-allowed');
      for (const path of ['/admin;x/x', '/admin%3bx/x', '/ADMIN/x', '/admin%20/x', '/admin%09/x', '/admin./x', '/public/..;/admin'])
        assert.equal((await b.run(ctxOf('198.51.100.1', { path })))?.details?.route, '/admin', path);
      assert.equal(await b.run(ctxOf('198.51.100.1', { path: '/administrator' })), undefined);
      assert.equal(await b.run(ctxOf('10.1.1.1', { path: '/admin' })), undefined);
      assert.equal((await b.run(ctxOf('203.0.113.9', { path: '/public' })))?.problem.code, 'ip-denied');
      assert.equal(await b.run(ctxOf(LONDON, { path: '/orders/1' })), undefined);
      assert.equal((await b.run(ctxOf(LONDON, { path: '/orders/1', method: 'POST' })))?.problem.code, 'country-denied');
    } finally {
      await b.inst.close?.();
    }
  });
  it('configuration errors name the file or the setting', async () => {
    await assert.rejects(build({ deny_files: ['nope.txt'] }), { message: `IP list file "${join(tmp, 'nope.txt')}" cannot be read: ENOENT` });
    writeFileSync(join(tmp, 'bad.txt'), '10.0.0.0/8\n10.0.0.0/99\n');
    await assert.rejects(build({ allow_files: ['bad.txt'] }), {
      message: `IP list file "${join(tmp, 'bad.txt')}": line 2: invalid IP address or CIDR block "10.0.0.0/99"`,
    });
    await assert.rejects(build({ geo: { databases: ['missing.mmdb'] }, deny_countries: ['GB'] }), (e: Error) =>
      e.message.startsWith(`geo database "${join(tmp, 'missing.mmdb')}" cannot be read`),
    );
    await assert.rejects(build({ binding: { enabled: true, by: 'asn' }, geo: { asn_databases: ['missing-asn.mmdb'] } }), (e: Error) =>
      e.message.startsWith(`geo database "${join(tmp, 'missing-asn.mmdb')}" cannot be read`),
    );
    assert.equal(networkSchema.safeParse({ allow: ['10.0.0.0/33'] }).success, false);
    assert.equal(networkSchema.safeParse({ allow_countries: ['USA'] }).success, false);
  });
});

describe('impossible travel', () => {
  it('event: New York then London 30 s later alerts and lets the request through', async () => {
    let now = 1_000_000;
    const b = await build({ travel: { enabled: true, action: 'event' } }, () => now);
    const events: EventInput[] = [];
    assert.equal(await b.run(ctxOf(NY, { identity: {}, events })), undefined);
    now += 30_000;
    assert.equal(await b.run(ctxOf(LONDON, { identity: {}, events })), undefined);
    assert.deepEqual(events, [
      {
        control: 'network',
        reason: 'impossible-travel',
        action: 'alert',
        severity: 'high',
        details: { reason: 'speed', from_country: 'US', to_country: 'GB', distance_km: 5570, speed_kmh: 668448, elapsed_s: 30, action: 'event' },
      },
    ]);
    now += 60_000;
    assert.equal(await b.run(ctxOf(LONDON, { identity: {}, events })), undefined);
    assert.equal(events.length, 1, 'the new location is the reference after an alert');
  });
  it('a flight: London 8 h after New York passes; unauthenticated requests are not tracked', async () => {
    let now = 0;
    const b = await build({ travel: { enabled: true } }, () => now);
    assert.equal(await b.run(ctxOf(NY, { identity: {} })), undefined);
    now += 8 * HOUR;
    assert.equal(await b.run(ctxOf(LONDON, { identity: {} })), undefined);
    assert.equal(await b.run(ctxOf(NY)), undefined);
  });
  it('challenge: RFC 9470 step-up; repeated until a token authenticated after the challenge', async () => {
    let now = 1_700_000_000_000;
    const b = await build({ travel: { enabled: true }, step_up: { acr_values: ['urn:mfa'], max_age: 0 } }, () => now);
    const iat = now / 1000;
    assert.equal(await b.run(ctxOf(NY, { identity: { claims: { iat } } })), undefined);
    now += 30_000;
    const r = await b.run(ctxOf(LONDON, { identity: { claims: { iat } } }));
    assert.equal(r?.action, 'challenge');
    assert.equal(r?.problem.status, 401);
    assert.equal(r?.problem.code, 'impossible-travel');
    assert.equal(
      r?.problem.headers['www-authenticate'],
      'Bearer realm="api", error="insufficient_user_authentication", error_description="Authenticate again: this account was used from an unexpected location.", acr_values="urn:mfa", max_age="0"',
    );
    // The old token stays challenged, from anywhere.
    now += 1000;
    assert.equal((await b.run(ctxOf(NY, { identity: { claims: { iat } } })))?.action, 'challenge');
    // A fresh token without the required acr does not satisfy the step-up; with it, it does.
    assert.equal((await b.run(ctxOf(LONDON, { identity: { claims: { iat: now / 1000, auth_time: now / 1000, acr: 'urn:pwd' } } })))?.action, 'challenge');
    assert.equal(await b.run(ctxOf(LONDON, { identity: { claims: { iat: now / 1000, auth_time: now / 1000, acr: 'urn:mfa' } } })), undefined);
    now += 1000;
    assert.equal(await b.run(ctxOf(LONDON, { identity: { claims: { iat } } })), undefined, 'London is now the reference');
  });
  it('revoke: the jti goes on the identity revocation list until the token expires', async () => {
    let now = 1_700_000_000_000;
    const store = new MemoryStore({ now: () => now });
    const b = await build({ travel: { enabled: true, action: 'revoke', key: 'token' } }, () => now, store);
    const identity = { tokenId: 'jti-123', expiresAt: now / 1000 + 300 };
    assert.equal(await b.run(ctxOf(NY, { identity })), undefined);
    now += 30_000;
    const r = await b.run(ctxOf(LONDON, { identity }));
    assert.deepEqual([r?.action, r?.problem.status, r?.problem.code], ['deny', 401, 'impossible-travel']);
    assert.equal(r?.problem.headers['www-authenticate'], 'Bearer realm="api", error="invalid_token", error_description="The access token has been revoked"');
    assert.equal(r?.details?.revoked, true);
    assert.equal(revokedJtiStoreKey('jti-123'), 'identity:revoked-jti:jti-123');
    assert.equal(await store.get('identity:revoked-jti:jti-123'), '1');
    now += 270_000 + 60_000 + 1; // past exp + 60 s margin
    assert.equal(await store.get('identity:revoked-jti:jti-123'), null);
  });
});

describe('network binding', () => {
  it('a token is bound to the /24 where it was first seen', async () => {
    const b = await build({ binding: { enabled: true } });
    const identity = { tokenId: 'jti-9' };
    assert.equal(await b.run(ctxOf('203.0.113.5', { identity })), undefined);
    assert.equal(await b.run(ctxOf('203.0.113.200', { identity })), undefined);
    const r = await b.run(ctxOf('198.51.100.7', { identity }));
    assert.deepEqual(
      [r?.action, r?.problem.status, r?.problem.code, r?.details],
      ['deny', 401, 'token-network-mismatch', { bound: '203.0.113.0/24', seen: '198.51.100.0/24', by: 'prefix' }],
    );
    assert.equal(await b.run(ctxOf('198.51.100.7', { identity: { tokenId: 'jti-10' } })), undefined, 'another token binds to its own network');
  });
  it('without a jti, the credential hash is the key; challenge and event actions', async () => {
    const c = await build({ binding: { enabled: true, action: 'challenge', ipv4_prefix: 16 } });
    const authorization = 'Bearer opaque-token-1';
    assert.equal(await c.run(ctxOf('203.0.113.5', { identity: {}, authorization })), undefined);
    assert.equal(await c.run(ctxOf('203.0.7.5', { identity: {}, authorization })), undefined);
    const r = await c.run(ctxOf('198.51.100.7', { identity: {}, authorization }));
    assert.equal(r?.action, 'challenge');
    assert.match(String(r?.problem.headers['www-authenticate']), /^Bearer realm="api", error="insufficient_user_authentication", error_description="[^"]+"$/);
    const events: EventInput[] = [];
    const e = await build({ binding: { enabled: true, action: 'event' } });
    assert.equal(await e.run(ctxOf('203.0.113.5', { identity: { tokenId: 't' } })), undefined);
    assert.equal(await e.run(ctxOf('198.51.100.7', { identity: { tokenId: 't' }, events })), undefined);
    assert.deepEqual(
      events.map((x) => [x.reason, x.action]),
      [['token-network-mismatch', 'alert']],
    );
  });
});

describe('stepUpChallenge', () => {
  it('quotes and escapes parameter values (RFC 9110 §11.2 quoted-string)', () => {
    assert.equal(stepUpChallenge('a"b', 'x\\y'), 'Bearer realm="a\\"b", error="insufficient_user_authentication", error_description="x\\\\y"');
  });
});
