import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { detectCmdiWords } from '../../../src/controls/inspection/cmdi.ts';
import { detectLfi } from '../../../src/controls/inspection/lfi.ts';
import { detectSsrf } from '../../../src/controls/inspection/ssrf.ts';

// The cheap prefilters (LFI candidate pattern, SSRF host check, first-word command look-up) must
// never hide a hit: the detectors still find every family inside otherwise ordinary URLs and prose.
describe('speed prefilters keep detection', () => {
  it('LFI: sensitive files, traversal, hex dots, dumps and wrappers inside https URLs', () => {
    const paths = [
      '/../../etc/passwd',
      '/a/..\\..\\win.ini',
      '/x/..;/admin',
      '/download?f=/etc/shadow',
      '/0x2e0x2e0x2f',
      '/backup.sql.gz',
      '/x?f=php://filter/resource=index',
      '/x?f=compress.zlib://data',
      '/x?f=jar:file:/tmp/a',
      '/.env',
      '/.git/config',
      '/wp-config.php',
      '/web.config',
      '/boot.ini',
      '/.ssh/id_rsa',
      '/home/.bashrc',
      '/c:\\windows\\system32\\drivers',
      '/app/web-inf/web.xml',
      '/x?p=/sys/class',
    ];
    for (const p of paths) assert.ok(detectLfi(`https://shop.example.com${p}`), p);
    for (const ok of ['https://shop.example.com/products/12?ref=home', 'https://api.example.org/v1/orders/7#top', 'http://cdn.example.net:8080/img/a-b.png'])
      assert.equal(detectLfi(ok), undefined, ok);
  });

  it('SSRF: internal hosts in every spelling, userinfo and ports; public hosts pass', () => {
    const hosts = [
      'localhost',
      'a.localhost.',
      'ip6-loopback',
      'metadata.google.internal',
      'instance-data',
      '127.0.0.1',
      '127.1',
      '2130706433',
      '0x7f000001',
      '0177.0.0.1',
      '[::ffff:127.0.0.1]',
      '[::ffff:7f00:1]',
      'user:pw@10.0.0.1:8080',
      'evil.com@169.254.169.254',
      'ab.cd@192.168.0.1',
    ];
    for (const h of hosts) assert.ok(detectSsrf(`https://${h}/x`), h);
    assert.ok(detectSsrf('https://shop.example.com/r?u=http://127.0.0.1/'));
    for (const ok of ['https://shop.example.com/products/1', 'https://deadbeef.example/x', 'https://10.example.com/', 'https://face.b00c.com/'])
      assert.equal(detectSsrf(ok), undefined, ok);
    assert.equal(detectSsrf('file://127.0.0.1/x'), undefined); // file: is LFI's business
  });

  it('cmdi: command lines at the start of prose still match; prose first words pass', () => {
    for (const v of ['whoami', 'ifconfig -a', 'nohup wget x', 'python3.10 -c x', 'cmd.exe /c dir', 'ls -la']) assert.ok(detectCmdiWords(v), v);
    for (const v of ['the order was fast', 'great product, would buy again', 'delivery team']) assert.equal(detectCmdiWords(v), undefined, v);
  });
});
