/**
 * The top-level, gateway-wide `network` block: a floor of IP and country rules for every API,
 * merged in by prepareNetwork (unit) and exercised through a real gateway (two APIs, an API's own
 * rules on top, reload with a changed top-level list, `network: false` cannot opt out).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigError, validateConfig } from '../../../src/config/load.ts';
import { prepareNetwork } from '../../../src/controls/network/wiring.ts';
import { echoUpstream, httpRequestText, startTestGateway, type TestUpstream } from '../../helpers/gateway.ts';

const tmp = mkdtempSync(join(tmpdir(), 'rampart-net-gw-'));
let up: TestUpstream;
before(async () => {
  up = await echoUpstream();
});
after(async () => {
  await up.close();
  rmSync(tmp, { recursive: true, force: true });
});

const LONDON = '81.2.69.160'; // DB-IP: London, GB
const NY = '128.122.0.1'; // DB-IP: New York, US

describe('prepareNetwork', () => {
  it('sets the top-level block as every API’s gateway rules, keeping the API’s own', () => {
    const config = validateConfig({
      network: { deny: ['192.0.2.0/24'] },
      apis: [
        { name: 'a', match: { path_prefix: '/a' }, upstream: { targets: ['http://127.0.0.1:1'] }, controls: { network: { allow: ['10.0.0.0/8'] } } },
        { name: 'b', match: { path_prefix: '/b' }, upstream: { targets: ['http://127.0.0.1:1'] }, controls: { network: false } },
        { name: 'c', match: { path_prefix: '/c' }, upstream: { targets: ['http://127.0.0.1:1'] } },
      ],
    });
    const p = prepareNetwork(config);
    const net = (i: number) => (p.apis[i]?.controls as Record<string, { allow?: string[]; gateway?: { deny: string[] } }> | undefined)?.network;
    assert.deepEqual(net(0)?.allow, ['10.0.0.0/8']);
    assert.deepEqual(net(0)?.gateway?.deny, ['192.0.2.0/24']);
    assert.deepEqual(Object.keys(net(1) ?? {}), ['gateway'], '`network: false` cannot opt out of the gateway rules');
    assert.deepEqual(net(2)?.gateway?.deny, ['192.0.2.0/24']);
    assert.equal((config.apis[1]?.controls as Record<string, unknown> | undefined)?.network, false, 'the input is not changed');
  });
  it('without a top-level block, or with an empty one, the configuration is returned as is', () => {
    const base = { apis: [{ name: 'a', upstream: { targets: ['http://127.0.0.1:1'] } }] };
    const c1 = validateConfig(base);
    assert.equal(prepareNetwork(c1), c1);
    const c2 = validateConfig({ ...base, network: {} });
    assert.equal(prepareNetwork(c2), c2);
  });
  it('the top-level block is validated like the control’s lists', () => {
    assert.throws(
      () => validateConfig({ network: { deny: ['10.0.0.0/33'] }, apis: [{ name: 'a', upstream: { targets: ['http://127.0.0.1:1'] } }] }),
      (e: Error) => e instanceof ConfigError && e.message.includes('network.deny'),
    );
    assert.throws(
      () => validateConfig({ network: { routes: [] }, apis: [{ name: 'a', upstream: { targets: ['http://127.0.0.1:1'] } }] }),
      (e: Error) => e instanceof ConfigError && e.message.includes('routes'),
    );
  });
});

describe('gateway-wide network rules through a real gateway', () => {
  const apis = (a: unknown, b: unknown) => [
    { name: 'a', match: { path_prefix: '/a' }, upstream: { targets: [up.url] }, ...(a === undefined ? {} : { controls: { network: a } }) },
    { name: 'b', match: { path_prefix: '/b' }, upstream: { targets: [up.url] }, ...(b === undefined ? {} : { controls: { network: b } }) },
  ];
  const xff = (ip: string) => ({ headers: { 'x-forwarded-for': ip } });
  const type = (body: string) => JSON.parse(body).type as string;

  it('a gateway-wide deny applies to two APIs; an API rule still works; deny anywhere wins; allows narrow', async () => {
    const gw = await startTestGateway({
      trusted_proxies: ['127.0.0.1/32'],
      network: { deny: ['198.51.100.0/24'], allow: ['198.51.100.0/24', '203.0.113.0/24', '192.0.2.0/24'] },
      apis: apis({ deny: ['203.0.113.66'], allow: ['203.0.113.0/24', '198.51.100.0/24'] }, false),
    });
    try {
      for (const api of ['a', 'b']) {
        const r = await httpRequestText(`${gw.url}/${api}/x`, xff('198.51.100.7'));
        assert.equal(r.status, 403, `gateway deny on ${api}`);
        assert.equal(type(r.body), 'https://rampart.dev/problems/ip-denied');
      }
      assert.deepEqual(
        gw.events.map((e) => [e.api, e.reason, e.details]),
        [
          ['a', 'ip-denied', { list: 'deny', gateway: true }],
          ['b', 'ip-denied', { list: 'deny', gateway: true }],
        ],
        'a gateway-wide deny wins over the API allow list that names the address',
      );
      gw.events.length = 0;
      assert.equal((await httpRequestText(`${gw.url}/a/x`, xff('203.0.113.5'))).status, 200);
      const own = await httpRequestText(`${gw.url}/a/x`, xff('203.0.113.66'));
      assert.equal(own.status, 403, 'the API’s own deny');
      assert.deepEqual(gw.events.at(-1)?.details, { list: 'deny' });
      const narrowed = await httpRequestText(`${gw.url}/a/x`, xff('192.0.2.9'));
      assert.equal(narrowed.status, 403, 'on the gateway allow list but not on the API’s');
      assert.equal(type(narrowed.body), 'https://rampart.dev/problems/ip-not-allowed');
      assert.equal((await httpRequestText(`${gw.url}/b/x`, xff('192.0.2.9'))).status, 200, 'API b (network: false) has only the gateway rules');
      const outside = await httpRequestText(`${gw.url}/b/x`, xff('8.8.8.8'));
      assert.equal(outside.status, 403, 'not on the gateway allow list');
      assert.deepEqual(gw.events.at(-1)?.details, { list: 'allow', gateway: true });
    } finally {
      await gw.close(100);
    }
  });

  it('applies to requests that match no API: a denied client gets 403, not a 404 that maps the routes', async () => {
    const gw = await startTestGateway({
      trusted_proxies: ['127.0.0.1/32'],
      network: { deny: ['198.51.100.0/24'] },
      apis: apis(undefined, undefined),
    });
    try {
      const denied = await httpRequestText(`${gw.url}/nowhere`, xff('198.51.100.7'));
      assert.equal(denied.status, 403);
      assert.equal(type(denied.body), 'https://rampart.dev/problems/ip-denied');
      assert.deepEqual(
        gw.events.map((e) => [e.api, e.reason, e.details]),
        [[undefined, 'ip-denied', { list: 'deny', gateway: true }]],
      );
      const other = await httpRequestText(`${gw.url}/nowhere`, xff('203.0.113.5'));
      assert.equal(other.status, 404, 'anyone else still gets the 404');
      assert.equal(type(other.body), 'https://rampart.dev/problems/no-route');
    } finally {
      await gw.close(100);
    }
  });

  it('gateway-wide country rules use the shipped database', async () => {
    const gw = await startTestGateway({
      trusted_proxies: ['127.0.0.1/32'],
      network: { deny_countries: ['gb'] },
      apis: apis(undefined, { deny_countries: ['US'] }),
    });
    try {
      const r = await httpRequestText(`${gw.url}/a/x`, xff(LONDON));
      assert.equal(r.status, 403);
      assert.equal(type(r.body), 'https://rampart.dev/problems/country-denied');
      assert.deepEqual(gw.events.at(-1)?.details, { country: 'GB', gateway: true });
      assert.equal((await httpRequestText(`${gw.url}/a/x`, xff(NY))).status, 200);
      assert.equal((await httpRequestText(`${gw.url}/b/x`, xff(LONDON))).status, 403);
      assert.equal((await httpRequestText(`${gw.url}/b/x`, xff(NY))).status, 403, 'the API’s own country rule');
    } finally {
      await gw.close(100);
    }
  });

  it('reload picks up a changed top-level list (inline and file)', async () => {
    writeFileSync(join(tmp, 'deny-1.txt'), '192.0.2.0/24\n');
    writeFileSync(join(tmp, 'deny-2.txt'), '# moved\n203.0.113.0/24\n');
    const config = (deny: string[], file: string) => ({ trusted_proxies: ['127.0.0.1/32'], network: { deny, deny_files: [file] }, apis: apis(undefined, {}) });
    const gw = await startTestGateway(config(['198.51.100.0/24'], 'deny-1.txt'), { configDir: tmp });
    const status = async (api: string, ip: string) => (await httpRequestText(`${gw.url}/${api}/x`, xff(ip))).status;
    try {
      for (const api of ['a', 'b']) {
        assert.equal(await status(api, '198.51.100.1'), 403);
        assert.equal(await status(api, '192.0.2.1'), 403);
        assert.equal(await status(api, '203.0.113.1'), 200);
        assert.equal(await status(api, '10.9.9.9'), 200);
      }
      await gw.reload(config(['10.0.0.0/8'], 'deny-2.txt'));
      for (const api of ['a', 'b']) {
        assert.equal(await status(api, '198.51.100.1'), 200);
        assert.equal(await status(api, '192.0.2.1'), 200);
        assert.equal(await status(api, '203.0.113.1'), 403);
        assert.equal(await status(api, '10.9.9.9'), 403);
      }
      await gw.reload({ trusted_proxies: ['127.0.0.1/32'], apis: apis(undefined, {}) });
      assert.equal(await status('a', '10.9.9.9'), 200, 'removing the block removes the rules');
    } finally {
      await gw.close(100);
    }
  });

  it('an unreadable top-level list file refuses the configuration, naming the file', async () => {
    const missing = join(tmp, 'nope.txt');
    await assert.rejects(
      startTestGateway({ network: { allow_files: ['nope.txt'] }, apis: apis(undefined, undefined) }, { configDir: tmp }),
      (e: Error) => e instanceof ConfigError && e.message.includes(`top-level network: IP list file "${missing}" cannot be read: ENOENT`),
    );
  });
});
