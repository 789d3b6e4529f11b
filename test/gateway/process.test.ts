import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { CLI, ROOT, spawnRampart, startUpstream, waitForStatus } from '../helpers/gateway.ts';

// 200 MiB: large against V8's lazy collection of external (Buffer) memory, which lets a streaming
// process grow by tens of MiB before it collects; a buffering gateway would grow by the body size.
const CHUNKS = Number(process.env.UPLOAD_MIB ?? 200);
const tmp = mkdtempSync(join(tmpdir(), 'rampart-process-'));

/** Peak resident set size of a process in KiB (VmHWM). */
function peakRssKiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1]);
}

describe('rampart serve (real process)', () => {
  test('a 200 MB upload streams through with bounded gateway memory (backpressure reaches the client)', async () => {
    // The upstream does not read for the first second: a streaming gateway stops reading from the
    // client once socket buffers are full, so the client cannot push the body ahead.
    let readingStarted = 0;
    const up = await startUpstream((req, res) => {
      req.pause();
      const h = createHash('sha256');
      let n = 0;
      setTimeout(() => {
        readingStarted = Date.now();
        req.on('data', (c: Buffer) => {
          n += c.length;
          h.update(c);
        });
        req.resume();
      }, 1000);
      req.on('end', () => res.end(JSON.stringify({ bytes: n, sha256: h.digest('hex') })));
    });
    const file = join(tmp, 'upload.yaml');
    writeFileSync(
      file,
      `listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\naccess_log: false\nevents:\n  sinks: []\napis:\n  - name: up\n    upstream:\n      targets: [${up.url}]\n    controls:\n      limits:\n        body_bytes: 314572800\n`,
    );
    const p = spawnRampart(['serve', '--config', file]);
    try {
      const url = new URL((await p.waitForLog('rampart listening')).url as string);
      const pid = p.child.pid as number;
      await fetch(`${url.origin}/warm`, { method: 'POST', body: 'x' });
      const before = peakRssKiB(pid);
      const chunk = Buffer.alloc(1024 * 1024, 7);
      const expected = createHash('sha256');
      let writtenBeforeUpstreamRead = -1;
      let written = 0;
      const result = await new Promise<string>((resolve, reject) => {
        const req = request(
          { host: '127.0.0.1', port: url.port, method: 'POST', path: '/upload', headers: { 'content-type': 'application/octet-stream' } },
          (res) => {
            let b = '';
            res.on('data', (c) => (b += c));
            res.on('end', () => resolve(b));
          },
        );
        req.on('error', reject);
        let i = 0;
        const write = () => {
          while (i < CHUNKS) {
            i++;
            expected.update(chunk);
            const more = req.write(chunk, () => {
              written += chunk.length;
              if (readingStarted === 0) writtenBeforeUpstreamRead = written;
            });
            if (!more) return void req.once('drain', write);
          }
          req.end();
        };
        write();
      });
      const j = JSON.parse(result) as { bytes: number; sha256: string };
      assert.equal(j.bytes, CHUNKS * 1024 * 1024);
      assert.equal(j.sha256, expected.digest('hex'));
      const mib = writtenBeforeUpstreamRead / 1024 / 1024;
      assert.ok(mib < 16, `the client pushed ${mib.toFixed(1)} MiB while the upstream was not reading`);
      const grownMiB = (peakRssKiB(pid) - before) / 1024;
      assert.ok(grownMiB < CHUNKS * 0.6, `gateway peak RSS grew by ${grownMiB.toFixed(1)} MiB for a ${CHUNKS} MiB body`);
    } finally {
      await p.stop();
      await up.close();
    }
  });

  test('SIGTERM drains: in-flight requests finish, then the process exits 0', async () => {
    const up = await startUpstream((_q, res) => setTimeout(() => res.end('done'), 600));
    const p = spawnRampart(['serve', '--upstream', up.url, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0']);
    try {
      const url = (await p.waitForLog('rampart listening')).url as string;
      const inflight = fetch(`${url}/slow`).then((r) => r.text());
      await new Promise((r) => setTimeout(r, 150));
      const code = p.stop('SIGTERM');
      assert.equal(await inflight, 'done');
      assert.equal(await code, 0);
    } finally {
      await up.close();
    }
  });

  test('--workers 2: a worker killed under load is replaced and the gateway keeps serving', async () => {
    const up = await startUpstream((_q, res) => res.end('ok'));
    const port = 20000 + Math.floor(Math.random() * 20000);
    const admin = port + 1;
    const p = spawnRampart(['serve', '--upstream', up.url, '--listen', `127.0.0.1:${port}`, '--admin', `127.0.0.1:${admin}`, '--workers', '2']);
    try {
      await waitForStatus(`http://127.0.0.1:${admin}/readyz`);
      const workers = () =>
        spawnSync('pgrep', ['-P', String(p.child.pid)], { encoding: 'utf8' })
          .stdout.trim()
          .split('\n')
          .filter(Boolean)
          .map(Number);
      const first = workers();
      assert.equal(first.length, 2);
      let ok = 0;
      let failed = 0;
      let stop = false;
      const load = (async () => {
        while (!stop) {
          try {
            // A request on a connection of the killed worker can hang until the socket times out.
            const r = await fetch(`http://127.0.0.1:${port}/x`, { signal: AbortSignal.timeout(2000) });
            await r.text();
            if (r.status === 200) ok++;
          } catch {
            failed++;
          }
        }
      })();
      await new Promise((r) => setTimeout(r, 300));
      process.kill(first[0] as number, 'SIGKILL');
      const until = Date.now() + 15000;
      let now = workers();
      while ((now.length < 2 || now.includes(first[0] as number)) && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 100));
        now = workers();
      }
      await waitForStatus(`http://127.0.0.1:${admin}/readyz`);
      const okBefore = ok;
      // Wait for successes after the replacement (bounded; a loaded machine is slow, not wrong).
      const deadline = Date.now() + 15000;
      while (ok <= okBefore + 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      stop = true;
      await load;
      assert.equal(now.length, 2, 'two workers again');
      assert.equal(now.includes(first[0] as number), false, 'the killed worker was replaced');
      assert.ok(ok > okBefore, 'requests succeed after the replacement');
      assert.ok(failed <= 5, `only requests on the killed worker's connections failed (${failed})`);
      const m = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
      assert.match(m, /rampart_requests_total\{api="default",status="200",verdict="allow"\}/);
    } finally {
      await p.stop();
      await up.close();
    }
  });
});

describe('rampart config', () => {
  test('check prints every error with file, line, path and reason, and exits 1', () => {
    const file = join(tmp, 'bad.yaml');
    writeFileSync(
      file,
      'listen: 127.0.0.1:8080\nworkers: 0\napis:\n  - name: a\n    upstream:\n      targets: [ftp://x]\n    controls:\n      limits:\n        body_bytez: 5\n  - name: a\n    upstream:\n      targets: [http://127.0.0.1:1]\n',
    );
    const r = spawnSync(process.execPath, [CLI, 'config', 'check', file], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`${file.replace(/[.]/g, '\\.')}:2:\\d+: workers: `));
    assert.match(r.stderr, /:6:\d+: apis\[0\]\.upstream\.targets\[0\]: /);
    assert.match(r.stderr, /:9:\d+: apis\[0\]\.controls\.limits: unknown key\(s\): body_bytez/);
  });

  test('check compiles controls too: a duplicate API name is an error', () => {
    const file = join(tmp, 'dup.yaml');
    writeFileSync(
      file,
      'apis:\n  - name: a\n    upstream:\n      targets: [http://127.0.0.1:1]\n  - name: a\n    upstream:\n      targets: [http://127.0.0.1:2]\n',
    );
    const r = spawnSync(process.execPath, [CLI, 'config', 'check', file], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /dup\.yaml:5:\d+: apis\[1\]\.name: duplicate API name "a"/);
  });

  test('${ENV} substitution, and a missing variable is an error naming it', () => {
    const file = join(tmp, 'env.yaml');
    writeFileSync(file, 'apis:\n  - name: a\n    upstream:\n      targets: ["${RAMPART_TEST_UPSTREAM}"]\n');
    const ok = spawnSync(process.execPath, [CLI, 'config', 'check', file], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, RAMPART_TEST_UPSTREAM: 'http://127.0.0.1:9' },
    });
    assert.equal(ok.status, 0, ok.stderr);
    const bad = spawnSync(process.execPath, [CLI, 'config', 'check', file], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, RAMPART_TEST_UPSTREAM: '' },
    });
    assert.equal(bad.status, 1);
    const env = { ...process.env };
    delete env.RAMPART_TEST_UPSTREAM;
    const missing = spawnSync(process.execPath, [CLI, 'config', 'check', file], { cwd: ROOT, encoding: 'utf8', env });
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /env\.yaml:4:\d+: apis\[0\]\.upstream\.targets\[0\]: environment variable RAMPART_TEST_UPSTREAM is not set/);
  });

  test('check applies gateway-wide settings too: a missing top-level list file is an error', () => {
    const file = join(tmp, 'badnet.yaml');
    writeFileSync(file, 'network:\n  deny_files: [/nonexistent/rampart-list.txt]\napis:\n  - name: a\n    upstream:\n      targets: [http://127.0.0.1:1]\n');
    const r = spawnSync(process.execPath, [CLI, 'config', 'check', file], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /top-level network: IP list file "\/nonexistent\/rampart-list\.txt" cannot be read/);
  });

  test('schema prints a JSON Schema of the configuration', () => {
    const r = spawnSync(process.execPath, [CLI, 'config', 'schema'], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(r.status, 0);
    const s = JSON.parse(r.stdout) as { $schema: string; properties: Record<string, unknown>; required: string[] };
    assert.equal(s.$schema, 'https://json-schema.org/draft/2020-12/schema');
    assert.ok('apis' in s.properties && 'listen' in s.properties && 'trusted_proxies' in s.properties);
    assert.deepEqual(s.required, ['apis']);
  });

  test('serve refuses an invalid file at start with exit code 1', () => {
    const file = join(tmp, 'bad2.yaml');
    writeFileSync(file, 'apis: []\n');
    const r = spawnSync(process.execPath, [CLI, 'serve', '--config', file], { cwd: ROOT, encoding: 'utf8', timeout: 20000 });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /bad2\.yaml:1:\d+: apis: /);
  });
});
