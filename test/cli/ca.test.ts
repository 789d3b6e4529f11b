/**
 * `rampart ca` as a real child process: init, issue server/client, revoke (CRL), then the files
 * used by `rampart serve --tls-cert --tls-key --mtls require --client-ca` with real handshakes.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { loadCrl, readPemCertificates } from '../../src/pki/cert.ts';
import { CLI, ROOT, echoUpstream, spawnRampart } from '../helpers/gateway.ts';
import { httpsText } from '../controls/transport/pki.ts';

const dir = mkdtempSync(join(tmpdir(), 'rampart-ca-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function rampart(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd: ROOT }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('rampart ca', () => {
  test('init writes ca.crt and a 0600 ca.key, and refuses to overwrite without --force', async () => {
    const r = await rampart(['ca', 'init', '--dir', dir, '--cn', 'Walkthrough CA']);
    assert.equal(r.code, 0, r.stderr);
    const ca = new X509Certificate(readFileSync(join(dir, 'ca.crt')));
    assert.equal(ca.subject, 'CN=Walkthrough CA');
    assert.equal(ca.ca, true);
    assert.equal(statSync(join(dir, 'ca.key')).mode & 0o777, 0o600);
    const again = await rampart(['ca', 'init', '--dir', dir]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /ca\.key exists \(use --force to replace it\)/);
  });

  test('issue server and client certificates (SPIFFE ID, x5t#S256 printed)', async () => {
    const s = await rampart(['ca', 'issue', 'server', '--dir', dir, '--dns', 'localhost', '--dns', '127.0.0.1', '--json']);
    assert.equal(s.code, 0, s.stderr);
    const server = JSON.parse(s.stdout);
    assert.equal(server.cert, join(dir, 'localhost.crt'));
    assert.deepEqual(server.dns, ['localhost']);
    const x = new X509Certificate(readFileSync(server.cert));
    assert.equal(x.subjectAltName, 'DNS:localhost, IP Address:127.0.0.1');
    assert.equal(x.checkIssued(new X509Certificate(readFileSync(join(dir, 'ca.crt')))), true);

    const c = await rampart(['ca', 'issue', 'client', '--dir', dir, '--spiffe', 'spiffe://example.org/ns/prod/sa/web', '--cn', 'web', '--json']);
    assert.equal(c.code, 0, c.stderr);
    const client = JSON.parse(c.stdout);
    assert.equal(client.spiffe_id, 'spiffe://example.org/ns/prod/sa/web');
    assert.equal(client.subject, 'CN=web');
    assert.equal(client.key, join(dir, 'web.key'));
    assert.equal(statSync(client.key).mode & 0o777, 0o600);
    const der = readPemCertificates(readFileSync(client.cert, 'utf8'))[0] as Buffer;
    assert.equal(client['x5t#S256'], createHash('sha256').update(der).digest('base64url'));

    const bad = await rampart(['ca', 'issue', 'client', '--dir', dir, '--spiffe', 'https://not-spiffe', '--cn', 'bad']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /invalid SPIFFE ID "https:\/\/not-spiffe"/);
    const noCa = await rampart(['ca', 'issue', 'client', '--dir', join(dir, 'missing'), '--cn', 'x']);
    assert.equal(noCa.code, 1);
    assert.match(noCa.stderr, /no CA in/);
  });

  test('serve --tls-cert --tls-key --mtls require --client-ca: the issued client certificate passes, none is refused', async () => {
    const up = await echoUpstream();
    const p = spawnRampart([
      'serve',
      '--upstream',
      up.url,
      '--listen',
      '127.0.0.1:0',
      '--admin',
      '127.0.0.1:0',
      '--tls-cert',
      join(dir, 'localhost.crt'),
      '--tls-key',
      join(dir, 'localhost.key'),
      '--mtls',
      'require',
      '--client-ca',
      join(dir, 'ca.crt'),
    ]);
    try {
      const url = (await p.waitForLog('rampart listening')).url as string;
      assert.match(url, /^https:\/\//);
      const tls = { ca: readFileSync(join(dir, 'ca.crt'), 'utf8'), servername: 'localhost' };
      const ok = await httpsText(`${url}/hello`, { ...tls, cert: readFileSync(join(dir, 'web.crt'), 'utf8'), key: readFileSync(join(dir, 'web.key'), 'utf8') });
      assert.equal(ok.status, 200);
      assert.equal(JSON.parse(ok.body).url, '/hello');
      const none = await httpsText(`${url}/hello`, tls);
      assert.equal(none.status, 403);
      assert.equal(JSON.parse(none.body).type, 'https://rampart.dev/problems/client-certificate-required');
    } finally {
      await p.stop();
      await up.close();
    }
  });

  test('serve refuses --mtls without --client-ca', async () => {
    const r = await rampart(['serve', '--upstream', 'http://127.0.0.1:1', '--tls-cert', 'a.crt', '--tls-key', 'a.key', '--mtls', 'require']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--mtls needs --client-ca FILE/);
  });

  test('revoke writes a CRL signed by the CA listing the serial', async () => {
    const r = await rampart(['ca', 'revoke', '--dir', dir, join(dir, 'web.crt')]);
    assert.equal(r.code, 0, r.stderr);
    const crl = await loadCrl(readFileSync(join(dir, 'crl.pem'), 'utf8'), [new X509Certificate(readFileSync(join(dir, 'ca.crt')))]);
    const serial = new X509Certificate(readFileSync(join(dir, 'web.crt'))).serialNumber.replace(/^0+/, '');
    assert.deepEqual([...crl.revoked], [serial]);
    const r2 = await rampart(['ca', 'revoke', '--dir', dir, '0A:BC']);
    assert.equal(r2.code, 0, r2.stderr);
    const crl2 = await loadCrl(readFileSync(join(dir, 'crl.pem'), 'utf8'), [new X509Certificate(readFileSync(join(dir, 'ca.crt')))]);
    assert.deepEqual([...crl2.revoked].sort(), [serial, 'ABC'].sort());
  });
});
