import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DETECTORS, Engine } from '../../../src/controls/inspection/engine.ts';
import { normalize } from '../../../src/controls/inspection/normalize.ts';
import { detectSqli } from '../../../src/controls/inspection/sqli.ts';
import { settle } from '../../helpers/settle.ts';

/** The sqli hit on the normalised value at paranoia level `pl`, as `rule@level`, or `pass`. */
const at = (v: string, pl = 2): string => {
  const h = detectSqli(normalize(v), undefined, pl);
  return h === undefined ? 'pass' : `${h.rule}@${h.paranoia}`;
};

/** Rules the engine records for `v` as a value and as a name at paranoia level `pl`. */
const engineHits = (v: string, pl: number): string[] => {
  const eng = new Engine({ paranoia: pl, threshold: 5, enabled: new Set(DETECTORS), stopAtThreshold: false, maxHits: 10 });
  const out: string[] = [];
  for (const isName of [false, true]) {
    const scan = eng.scan();
    scan.inspect(v, isName, () => 'x');
    for (const h of scan.hits) out.push(`${h.detector}:${h.rule}@${h.paranoia}`);
  }
  return out;
};

describe('sqli whole-value fragments (paranoia level 2)', () => {
  // [attack, rule] — each next to a benign near-miss below
  const attacks: [string, string][] = [
    ['>>', 'fragment:operator@2'],
    ['!=', 'fragment:operator@2'],
    ['IS NULL', 'fragment:operator:is-null@2'],
    ['1=1', 'fragment:tautology@2'],
    ['b,1=1', 'fragment:tautology@2'],
    ['42<=>42', 'fragment:tautology@2'],
    ['11!=1', 'fragment:tautology@2'],
    ["'admin', '1'", 'fragment:literal-list@2'],
    ["VALUES ('192.168.0.1', 'test')", 'fragment:literal-list@2'],
    ['ORder by', 'fragment:clause:order by@2'],
    ['HAVING 1=', 'having@1'],
    ['FROM ack_variable WHERE name="cron_last";', 'fragment:from-where@2'],
    [' in ( Aa,- Ab-, and Ac)', 'fragment:in-list@2'],
    ['/Hmong_language AND ', 'fragment:slash-logic@2'],
    ['pay=/xxxx_R AND ', 'fragment:slash-logic@2'],
    ['div role="', 'fragment:operator-assignment@2'],
    ['div id="', 'fragment:operator-assignment@2'],
    ['--alter', 'fragment:separator-verb@2'],
    ['; UpdateUserTypeTracking', 'fragment:separator-verb@2'],
    ['"` * 123', 'fragment:quote-number@2'],
    ['`>65', 'fragment:quote-number@2'],
    ["'', '', '', 13", 'fragment:literal-list@2'],
    ["^'", 'fragment:quote-number@2'],
    ['"\'', 'fragment:bare-quote@2'],
    ['`bla`', 'fragment:back-quoted-name@2'],
    ['1234 AS "foobar" FROM t', 'fragment:alias-from@2'],
    [") AS 'Durchschnitt' FROM", 'fragment:alias-from@2'],
    ["' alter/", 'fragment:punctuation-verb@2'],
    ['div(23,-2)', 'fragment:div-call@2'],
    ['\\x23', 'fragment:escaped-quote@2'],
    ["3' ' 1", 'fragment:auth-bypass@2'],
    ["admin '", 'fragment:auth-bypass@2'],
    ['DR/**/OP/*bypass*/sampletable', 'fragment:split-keyword@2'],
    [',varname"', 'fragment:comma-quote@2'],
    ['\\0xf00dsdfdsa', 'fragment:escaped-hex@2'],
    ['2499999||this.product', 'fragment:number-logic@2'],
    [">foo##'.", 'fragment:operator-word-quote@2'],
    ["a'or?--", "':logic-comment@2"],
    ['admin@juice-sh.op`;', '`:statement-end@2'],
    ['\\`or`1', '`:backslash-breakout@2'],
    ['\\"1 or 1-', '":backslash-breakout@2'],
    ["admin@juice-sh.op\\' or glob (id,id);", "':backslash-breakout@2"],
    ['1%C2%B4%20OR%20%C2%B41%C2%B4%3d%C2%B4x%C2%B4%23', "acute-accent:':^s[)]*&[(]*[1sfvnEU(]@2"],
    ['>SET @OLD_SQL_NOTES', 'set-variable@2'],
  ];
  for (const [v, want] of attacks) it(`${JSON.stringify(v)} → ${want}`, () => assert.equal(at(v), want));

  const benign = [
    '11=1', // a false comparison is no tautology
    '1=11',
    '11!=11',
    '1 is not 1',
    "'1' not regexp '1'",
    '123<456',
    'ABANCA CORPORACION BANCARIA, S.A',
    '["account","sharing"]',
    'having fun',
    'having pain!',
    '/Business and',
    'pay=/xxxx_R or',
    ';insertion_424242',
    'It was fixed; updated the docs',
    '`foo`;`bar`;`def`',
    "'bla'",
    '"desc"',
    'blablabla. As evidence from the following blablabla',
    ', aside from',
    'Die "Union von Europa"',
    '`!1',
    '"2019-05-01"',
    '"-1"',
    "''or",
    "bob's or alice's",
    'my--slugified-url',
    'I Love you <3',
    'Find your solution here -> link',
    '1.e.g. this',
  ];
  // none of these is a fragment (some hold other, older evidence: `"desc"`, `having pain!`)
  const fresh = /^(?:fragment:|acute-accent:|.:(?:logic-comment|statement-end))/;
  for (const v of benign) it(`no fragment in ${JSON.stringify(v)}`, () => assert.doesNotMatch(at(v), fresh));

  it('counts from level 2 only', () => {
    for (const v of ['>>', '1=1', "'admin', '1'", '`bla`', 'div role="']) assert.equal(at(v, 1), 'pass', v);
    for (const v of ['xor', 'varchar', 'UTL_HTTP', 'IS NULL', '1=1', '>>', '1.e.tables', '--alter']) assert.deepEqual(engineHits(v, 1), [], v);
  });

  it('whole-value SQL type, package and operator names, as values and as names', () => {
    for (const v of ['xor', 'RegExp', 'nvarchar', 'UTL_HTTP', 'schema_name']) {
      const hits = engineHits(v, 2);
      assert.equal(hits.length, 2, v);
      assert.ok(
        hits.every((h) => h.startsWith('sqli:sql-name:')),
        `${v}: ${hits}`,
      );
    }
    assert.deepEqual(engineHits('1.e.tables', 2), ['sqli:scientific-notation@2']);
    // `=` alone does not open the full tokeniser in the engine: the fragment rules still see `having 1=`, `1=1`
    assert.deepEqual(engineHits('HAVING 1=', 2), ['sqli:fragment:having@2', 'sqli:fragment:having@2']);
    assert.deepEqual(engineHits('11=1', 2), []);
    for (const v of ['varchar field', 'xor gate', 'utl', 'schema', '1.2.3']) assert.deepEqual(engineHits(v, 2), [], v);
  });

  // A quadratic rule would take minutes on these 100 KB inputs; the test timeout catches that
  // (no wall-clock assertion: speed belongs in bench/inspection/speed.ts).
  it('stays linear on long inputs', { timeout: 10_000 }, async () => {
    for (const v of [
      '1 as '.repeat(20000),
      `${' '.repeat(100000)}as from`,
      `'${'.'.repeat(100000)}`,
      `in (${','.repeat(100000)}`,
      `\\0x${'0'.repeat(100000)}`,
    ]) {
      at(v);
      await settle();
    }
  });
});
