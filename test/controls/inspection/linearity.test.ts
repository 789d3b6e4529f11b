/**
 * Linear time of every detector and of the whole engine on long repetitive inputs (pen-test round 3:
 * one 150 KB body of `<x=` froze the gateway for 13 s because the XSS tokeniser rescanned the rest
 * of the input once per `<`).
 *
 * Each case is a short pattern repeated to 400 KB. A linear detector takes milliseconds on it; a
 * quadratic one takes minutes, so the 10 s test timeout tells them apart with a wide margin on any
 * machine, and no wall-clock assertion is needed. The work runs in slices with a turn of the event
 * loop in between: node:test cannot interrupt synchronous code, and a synchronous test that overruns
 * its timeout is reported as passing; yielding lets the timeout fire.
 *
 * Patterns: the pen-test findings, the ones bench/inspection/linearity.ts found (it measures the
 * time ratio between n and 4n over random patterns), and generated combinations of markup, shell
 * and SQL punctuation with a few words.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { detectCmdi } from '../../../src/controls/inspection/cmdi.ts';
import { DETECTORS, Engine } from '../../../src/controls/inspection/engine.ts';
import { detectLfi } from '../../../src/controls/inspection/lfi.ts';
import { detectLdap, detectNosql, detectSsti } from '../../../src/controls/inspection/misc.ts';
import { normalize } from '../../../src/controls/inspection/normalize.ts';
import { detectSqli } from '../../../src/controls/inspection/sqli.ts';
import { detectSsrf } from '../../../src/controls/inspection/ssrf.ts';
import { detectXss } from '../../../src/controls/inspection/xss.ts';
import { settle } from '../../helpers/settle.ts';
import { inspectionStage, runInspection } from '../../helpers/inspection.ts';

const SIZE = 400_000;

/** A case: prefix, a unit repeated to {@link SIZE} characters, suffix. */
type Shape = readonly [string, string, string];

/** Regressions: each of these was quadratic (the detector in the comment). */
const REGRESSIONS: Shape[] = [
  // xss: an unquoted attribute value ran past `<` to the end of the input, once per `<`
  ['', '<x=', ''],
  ['', '<x=:', ''],
  ['', '<a =', ''],
  ['', 'etc.|=<', ''],
  ['', 'cat=S;<S', ''],
  ['', "`=<etc'on", ''],
  // xss: `url\(\s*['"]?\s*` backtracked over a run of spaces
  ['<a style="url(', ' ', 'x"'],
  // xss: `\s*\.\s*` replaced globally tried every start inside a run of spaces
  ['(', ' ', 'x .'],
  // xss: `\blocation\s*(?:\.\s*href)?\s*=`: two `\s*` competed for one run of spaces
  ['(location', ' ', 'x'],
];

const SYMBOLS = [...`<>='"\`;|&$(){}[]/\\.:@#%-_ `];
const WORDS = ['on', 'etc', 'cat', 'script', 'select', 'http:'];

/**
 * Generated cases: every symbol alone and after `<` (a tag opener); every word alone, after `<`,
 * before `=` and `(`, and as an attribute after a space; a few assignment shapes. (All symbols before
 * `=` as well would double the run time without finding more: bench/inspection/linearity.ts searches
 * those and longer combinations.)
 */
function generated(): Shape[] {
  const units = new Set<string>();
  for (const a of SYMBOLS) {
    units.add(a);
    units.add(`<${a}`);
  }
  for (const w of WORDS) for (const u of [w, `<${w}`, `${w}=`, `${w}(`, ` ${w}=`]) units.add(u);
  for (const u of ["'=", '"=', ':=', '=<', '<=>', '${{', '&#x', '%25']) units.add(u);
  return [...units].map((u) => ['', u, ''] as const);
}

const CASES = [...REGRESSIONS, ...generated()];

const build = ([pre, unit, suf]: Shape): string => pre + unit.repeat(Math.ceil(SIZE / unit.length)) + suf;

const engine = (pl: number): Engine => new Engine({ paranoia: pl, threshold: 1e9, enabled: new Set(DETECTORS), stopAtThreshold: false, maxHits: 1e9 });
const e1 = engine(1);
const e2 = engine(2);

/** Detectors see normalised values (the engine normalises before calling them); the engine sees raw ones. */
const SUBJECTS: [string, boolean, (s: string) => unknown][] = [
  ['detectSqli', true, (s) => detectSqli(s)],
  ['detectXss', true, (s) => detectXss(s)],
  ['detectCmdi', true, (s) => detectCmdi(s)],
  ['detectLfi', true, (s) => detectLfi(s)],
  ['detectSsrf', true, (s) => detectSsrf(s)],
  ['detectSsti', true, (s) => detectSsti(s, 4)],
  ['detectLdap', true, (s) => detectLdap(s)],
  ['detectNosql', true, (s) => detectNosql(s, false)],
  ['Engine.inspect PL1', false, (s) => e1.scan().inspect(s, false, () => 'body:/c')],
  ['Engine.inspect PL2', false, (s) => e2.scan().inspect(s, false, () => 'body:/c')],
];

/** One turn of the event loop, so that an expired test timeout fires. */
const turn = settle;

describe('linear time on 400 KB of a repeated pattern', () => {
  const inputs = CASES.map(build);
  const normalised = inputs.map(normalize);
  for (const [name, norm, f] of SUBJECTS) {
    it(`${name}: ${CASES.length} patterns`, { timeout: 10_000 }, async () => {
      for (let i = 0; i < inputs.length; i++) {
        f((norm ? normalised[i] : inputs[i]) as string);
        await turn();
      }
    });
  }
});

/** The whole stage (parsers, normalisation, engine) on 400 KB bodies built from the pen-test pattern. */
describe('linear time through the inspection stage', () => {
  const B = 'XyZb0undary';
  const x = '<x='.repeat(SIZE / 3);
  const bodies: [string, string][] = [
    ['application/json', `{"c":"${x}"}`],
    // an array at its element limit (10 000) of strings of `<x=`
    ['application/json', `[${`"${'<x='.repeat(13)}",`.repeat(9_999)}"z"]`],
    ['application/xml', `<r>${'<a>&lt;x=</a>'.repeat(SIZE / 14)}</r>`],
    ['application/xml', `<r>${'<a>t'.repeat(30)}${'<b>&lt;x=</b>u'.repeat(SIZE / 30)}${'</a>'.repeat(30)}</r>`],
    ['application/x-www-form-urlencoded', `c=${'%3cx%3d'.repeat(SIZE / 7)}`],
    [`multipart/form-data; boundary=${B}`, `--${B}\r\nContent-Disposition: form-data; name="f"\r\n\r\n${x}\r\n--${B}--\r\n`],
    ['text/plain', x],
  ];
  it(`${bodies.length} bodies (JSON, XML siblings and joined text, form, multipart)`, { timeout: 10_000 }, async () => {
    const stage = await inspectionStage({ mode: 'monitor', body: { inspect_unknown: true } });
    for (const [type, text] of bodies) {
      const { v } = await runInspection(stage, { method: 'POST', body: text, headers: { 'content-type': type }, maxBodyBytes: 4 * 1024 * 1024 });
      // monitor mode: no verdict; a parser limit would answer instead and hide the scan
      assert.equal(v, undefined, type);
      await turn();
    }
  });
});
