/**
 * Zero-config: `rampart serve --upstream URL --openapi FILE` (the real CLI as a child process)
 * enforces the document with response filtering, with no configuration file.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../../../bench/run.ts';
import { type DemoUpstream, startDemoUpstream } from '../../../examples/demo-upstream.ts';
import { type RampartProcess, spawnRampart, waitForStatus } from '../../helpers/gateway.ts';
import { sourceOf } from '../../../src/cli/serve.ts';

describe('zero-config --openapi', () => {
  let upstream: DemoUpstream;
  let proc: RampartProcess;
  let url = '';
  before(async () => {
    upstream = await startDemoUpstream();
    const [port, admin] = [await freePort(), await freePort()];
    url = `http://127.0.0.1:${port}`;
    proc = spawnRampart([
      'serve',
      '--upstream',
      upstream.url,
      '--openapi',
      'examples/openapi.yaml',
      '--listen',
      `127.0.0.1:${port}`,
      '--admin',
      `127.0.0.1:${admin}`,
    ]);
    await waitForStatus(`${url}/health`);
  });
  after(async () => {
    await proc?.stop();
    await upstream?.close();
  });

  it('maps the flag to the contract control (and authz only with --issuer)', () => {
    const s = sourceOf({ upstream: 'http://127.0.0.1:1', openapi: 'examples/openapi.yaml', trustedProxy: [], controls: true }) as {
      config: { apis: { controls: Record<string, unknown> }[] };
    };
    const c = s.config.apis[0]?.controls as Record<string, { openapi: string }>;
    assert.deepEqual(Object.keys(c), ['contract']);
    assert.equal(c.contract?.openapi, `${process.cwd()}/examples/openapi.yaml`);
  });

  it('blocks undocumented endpoints and strips undeclared response properties', async () => {
    const dbg = await fetch(`${url}/debug/config`);
    assert.equal(dbg.status, 404);
    assert.equal(((await dbg.json()) as { type: string }).type, 'https://rampart.dev/problems/operation-undocumented');
    const u = await fetch(`${url}/users/1002`);
    assert.equal(u.status, 200);
    assert.deepEqual(Object.keys((await u.json()) as object).sort(), ['address', 'email', 'id', 'name', 'phone']);
    const mass = await fetch(`${url}/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'E', email: 'e@example.com', role: 'admin' }),
    });
    assert.equal(mass.status, 400);
    await mass.arrayBuffer();
  });
});
