/**
 * Route rules of the network control hold for every spelling of a path that a backend treats as
 * the same resource (pen-test finding: `/admin;x/x`, `/ADMIN/x`, `/admin./x` bypassed an
 * allow-listed `/admin` route).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { canonicalRoutePath } from '../../../src/controls/network/index.ts';
import { httpRequestText, startTestGateway, startUpstream, type TestGateway, type TestUpstream } from '../../helpers/gateway.ts';

const SPELLINGS = [
  '/admin;x/x',
  '/admin%3bx/x',
  '/admin%3Bx/x',
  '/ADMIN/x',
  '/admin%20/x',
  '/admin%09/x',
  '/admin./x',
  '/Admin..%20/x',
  '/public/..;/admin/x',
  '/admin\\x',
];

describe('canonicalRoutePath', () => {
  it('maps every spelling of /admin/x to /admin/x', () => {
    for (const p of SPELLINGS) assert.equal(canonicalRoutePath(p), '/admin/x', p);
  });
  it('keeps other paths apart', () => {
    assert.equal(canonicalRoutePath('/administrator/x'), '/administrator/x');
    assert.equal(canonicalRoutePath('/adm%69n'), '/admin');
    assert.equal(canonicalRoutePath('//a//b/'), '/a/b');
    assert.equal(canonicalRoutePath('/a/./b/../c'), '/a/c');
    assert.equal(canonicalRoutePath('/%ff%3B/admin'), '/%ff/admin'); // not UTF-8: ASCII escapes only
    assert.equal(canonicalRoutePath('/'), '/');
    assert.equal(canonicalRoutePath('/Admin/'), '/admin');
  });
});

describe('network route rules through a real gateway', () => {
  let up: TestUpstream;
  let gw: TestGateway;
  let reached: string[];
  before(async () => {
    reached = [];
    up = await startUpstream((req, res) => {
      reached.push(req.url ?? '');
      res.end('ok');
    });
    gw = await startTestGateway({
      apis: [{ name: 'api', upstream: { targets: [up.url] }, controls: { network: { routes: [{ path_prefix: '/admin', allow: ['10.20.0.0/16'] }] } } }],
    });
  });
  after(async () => {
    await gw.close(0);
    await up.close();
  });

  it('refuses every spelling of /admin from 127.0.0.1 with 403 ip-not-allowed and never reaches the upstream', async () => {
    const got: [string, number, string][] = [];
    for (const p of ['/admin/x', ...SPELLINGS.filter((s) => !s.includes('\\'))]) {
      const r = await httpRequestText(`${gw.url}${p}`);
      got.push([p, r.status, (JSON.parse(r.body) as { type: string }).type]);
    }
    // The gateway itself refuses `;` path parameters (400 path-not-normalized) before any control;
    // the route matching above holds for them on its own (canonicalRoutePath, used by the stage).
    const expected = ['/admin/x', ...SPELLINGS.filter((s) => !s.includes('\\'))].map((p): [string, number, string] =>
      /;|%3b/i.test(p) ? [p, 400, 'https://rampart.dev/problems/path-not-normalized'] : [p, 403, 'https://rampart.dev/problems/ip-not-allowed'],
    );
    assert.deepEqual(got, expected);
    assert.deepEqual(reached, []);
    const r = await httpRequestText(`${gw.url}/administrator`);
    assert.equal(r.status, 200);
    assert.deepEqual(reached, ['/administrator']);
  });
});
