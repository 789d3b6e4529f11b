import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, test } from 'node:test';
import { z } from 'zod';
import { defineControl } from '../../src/pipeline/control.ts';
import { echoUpstream, httpRequestText, spawnRampart, startTestGateway, startUpstream, type TestUpstream, waitForStatus } from '../helpers/gateway.ts';

const tmp = mkdtempSync(join(tmpdir(), 'rampart-lifecycle-'));

describe('trusted proxies', () => {
  test('X-Forwarded-For is believed only from a trusted peer; the client IP is the right-most untrusted address', async () => {
    const up = await echoUpstream();
    const gw = await startTestGateway({ trusted_proxies: ['127.0.0.1/32', '10.0.0.0/8'], apis: [{ name: 'a', upstream: { targets: [up.url] } }] });
    try {
      const r = await httpRequestText(`${gw.url}/x`, { headers: { 'x-forwarded-for': '6.6.6.6, 203.0.113.9, 10.1.2.3', 'x-forwarded-proto': 'https' } });
      const j = JSON.parse(r.body) as { headers: Record<string, string> };
      assert.equal(j.headers['x-forwarded-for'], '6.6.6.6, 203.0.113.9, 10.1.2.3, 127.0.0.1');
      assert.equal(j.headers['x-forwarded-proto'], 'https');
      // The derived client IP shows on events: trigger one with a dot-segment path.
      await httpRequestText(`${gw.url}/a/%2e%2e/b`, { headers: { 'x-forwarded-for': '6.6.6.6, 203.0.113.9, 10.1.2.3' } });
      const ev = gw.events.find((e) => e.reason === 'path-not-normalized');
      assert.equal(ev?.client_ip, '203.0.113.9');
    } finally {
      await gw.close(100);
      await up.close();
    }
  });

  test('X-Forwarded-For entries with ports are understood (ip:port, [v6]:port)', async () => {
    const up = await echoUpstream();
    const gw = await startTestGateway({ trusted_proxies: ['127.0.0.1/32'], apis: [{ name: 'a', upstream: { targets: [up.url] } }] });
    try {
      await httpRequestText(`${gw.url}/a/%2e%2e/b`, { headers: { 'x-forwarded-for': '198.51.100.7:5555' } });
      await httpRequestText(`${gw.url}/a/%2e%2e/c`, { headers: { 'x-forwarded-for': '[2001:db8::1]:80' } });
      const ips = gw.events.filter((e) => e.reason === 'path-not-normalized').map((e) => e.client_ip);
      assert.deepEqual(ips, ['198.51.100.7', '2001:db8::1']);
    } finally {
      await gw.close(100);
      await up.close();
    }
  });
});

describe('reload', () => {
  let up: TestUpstream;
  let up2: TestUpstream;
  before(async () => {
    up = await startUpstream((_q, res) => res.end('one'));
    up2 = await startUpstream((_q, res) => res.end('two'));
  });
  after(async () => {
    await up.close();
    await up2.close();
  });

  test('a valid reload swaps the configuration; a broken one is refused and the old one keeps serving', async () => {
    const gw = await startTestGateway({ apis: [{ name: 'a', upstream: { targets: [up.url] } }] });
    try {
      assert.equal(await (await fetch(`${gw.url}/`)).text(), 'one');
      await assert.rejects(gw.reload({ apis: [{ name: 'a', upstream: { targets: ['not a url'] } }] }), /targets/);
      assert.equal(await (await fetch(`${gw.url}/`)).text(), 'one');
      const ev = gw.events.find((e) => e.reason === 'config-invalid');
      assert.equal(ev?.action, 'error');
      await gw.reload({
        listen: '127.0.0.1:0',
        admin: { listen: '127.0.0.1:0' },
        access_log: false,
        events: { sinks: [] },
        apis: [{ name: 'a', upstream: { targets: [up2.url] } }],
      });
      assert.equal(await (await fetch(`${gw.url}/`)).text(), 'two');
    } finally {
      await gw.close(100);
    }
  });

  test('the CLI reloads on file change and on SIGHUP, and refuses a broken file with file, line and reason', async () => {
    const file = join(tmp, 'reload.yaml');
    const cfg = (target: string) =>
      `listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\naccess_log: false\napis:\n  - name: a\n    upstream:\n      targets: [${target}]\n`;
    writeFileSync(file, cfg(up.url));
    const p = spawnRampart(['serve', '--config', file]);
    try {
      const started = await p.waitForLog('rampart listening');
      const url = started.url as string;
      assert.equal(await (await fetch(`${url}/`)).text(), 'one');
      writeFileSync(file, `${cfg(up.url)}  - name: [broken\n`);
      await p.waitForLog('configuration refused; the running configuration keeps serving');
      assert.equal(await (await fetch(`${url}/`)).text(), 'one');
      assert.match(p.stdout(), /reload\.yaml:\d+:\d+/);
      writeFileSync(file, cfg(up2.url));
      await p.waitForLog('configuration reloaded');
      assert.equal(await (await fetch(`${url}/`)).text(), 'two');
      // Editors and `sed -i` save by replacing the file (a new inode): reload must keep working.
      writeFileSync(`${file}.tmp`, cfg(up.url));
      renameSync(`${file}.tmp`, file);
      await p.waitForLog('configuration reloaded', 20_000, 2);
      assert.equal(await (await fetch(`${url}/`)).text(), 'one');
      writeFileSync(`${file}.tmp`, cfg(up2.url));
      renameSync(`${file}.tmp`, file);
      await p.waitForLog('configuration reloaded', 20_000, 3);
      assert.equal(await (await fetch(`${url}/`)).text(), 'two');
      p.child.kill('SIGHUP');
      await p.waitForLog('configuration reloaded', 20_000, 4);
      assert.equal(await (await fetch(`${url}/`)).text(), 'two');
    } finally {
      await p.stop();
    }
  });
});

describe('stage failures', () => {
  test('an exception inside a stage becomes a 500 problem and an event; the process keeps serving', async () => {
    const up = await echoUpstream();
    // A custom control (the embedding API of startGateway) whose stage throws on /boom.
    const boom = defineControl({
      name: 'boom',
      schema: z.strictObject({}),
      defaultConfig: {},
      create: () => ({
        request: [
          {
            control: 'boom',
            phase: 'inspection',
            run(ctx) {
              if (ctx.path === '/boom') throw new TypeError('kaput');
              if (ctx.path === '/async-boom') return Promise.reject(new Error('async kaput'));
              return undefined;
            },
          },
        ],
      }),
    });
    const gw = await startTestGateway({ apis: [{ name: 'a', upstream: { targets: [up.url] } }] }, { controls: [boom] });
    try {
      for (const path of ['/boom', '/async-boom']) {
        const r = await fetch(`${gw.url}${path}`);
        assert.equal(r.status, 500);
        assert.equal(r.headers.get('content-type'), 'application/problem+json');
        assert.equal(((await r.json()) as { type: string }).type, 'https://rampart.dev/problems/internal-error');
      }
      assert.equal(gw.events.filter((e) => e.reason === 'internal-error' && e.control === 'boom').length, 2);
      assert.equal((await fetch(`${gw.url}/fine`)).status, 200);
    } finally {
      await gw.close(100);
      await up.close();
    }
  });
});

describe('events never carry secrets', () => {
  test('Authorization, cookies and secret query values appear in no sink output', async () => {
    const up = await startUpstream((_q, res) => res.end('ok'));
    const file = join(tmp, 'sinks.yaml');
    const eventsFile = join(tmp, 'events.jsonl');
    const db = join(tmp, 'events.db');
    writeFileSync(
      file,
      `listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\nevents:\n  sinks:\n    - type: stdout\n    - type: file\n      path: ${eventsFile}\n    - type: sqlite\n      path: ${db}\n  redact_headers: [x-custom-key]\napis:\n  - name: a\n    match:\n      path_prefix: /api\n    upstream:\n      targets: [${up.url}]\n`,
    );
    const p = spawnRampart(['serve', '--config', file]);
    const SECRET = 'sk_live_SUPERSECRET123';
    try {
      const url = (await p.waitForLog('rampart listening')).url as string;
      const headers = { authorization: `Bearer ${SECRET}`, cookie: `session=${SECRET}`, 'x-custom-key': SECRET, 'proxy-authorization': `Basic ${SECRET}` };
      await httpRequestText(`${url}/api/ok?access_token=${SECRET}&q=1`, { headers });
      await httpRequestText(`${url}/unrouted?api_key=${SECRET}`, { headers });
      await httpRequestText(`${url}/api/%2e%2e/x?password=${SECRET}`, { headers });
      await new Promise((r) => setTimeout(r, 600));
    } finally {
      await p.stop();
    }
    const stdout = p.stdout();
    assert.match(stdout, /"reason":"no-route"/, 'events reached stdout');
    assert.match(stdout, /"type":"access"/, 'access log reached stdout');
    assert.equal(stdout.includes(SECRET), false, 'stdout leaks nothing');
    const fileText = readFileSync(eventsFile, 'utf8');
    assert.match(fileText, /no-route/);
    assert.equal(fileText.includes(SECRET), false, 'the file sink leaks nothing');
    const rows = new DatabaseSync(db).prepare('SELECT * FROM security_events').all();
    assert.ok(rows.length >= 2);
    assert.equal(JSON.stringify(rows).includes(SECRET), false, 'the SQLite sink leaks nothing');
    assert.match(JSON.stringify(rows), /access_token=\[REDACTED\]|api_key=\[REDACTED\]/);
    await up.close();
  });
});

describe('admin listener', () => {
  test('/healthz, /readyz and /metrics', async () => {
    const up = await echoUpstream();
    const gw = await startTestGateway({ apis: [{ name: 'm', upstream: { targets: [up.url] } }] });
    try {
      await fetch(`${gw.url}/x`);
      await fetch(`${gw.url}/unknown-but-routed`);
      assert.equal((await fetch(`${gw.adminUrl}/healthz`)).status, 200);
      const ready = await fetch(`${gw.adminUrl}/readyz`);
      assert.deepEqual(await ready.json(), { ready: true, reasons: [] });
      const m = await (await fetch(`${gw.adminUrl}/metrics`)).text();
      assert.match(m, /rampart_requests_total\{api="m",status="200",verdict="allow"\} \d+/);
      assert.match(m, /rampart_request_duration_seconds_bucket/);
      assert.match(m, /rampart_upstream_duration_seconds_bucket/);
      // Exported before the first reload, so alerts on reload errors see the series.
      assert.match(m, /rampart_config_reloads_total\{result="error"\} \d+/);
      await waitForStatus(`${gw.adminUrl}/healthz`);
    } finally {
      await gw.close(100);
      await up.close();
    }
  });
});
