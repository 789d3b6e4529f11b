/**
 * Exploratory search for super-linear inputs (not a test): every detector and the whole engine at
 * paranoia levels 1 and 2 run on a short pattern repeated to `n` and to `4n` characters; a linear
 * scan takes ~4x as long, a quadratic one ~16x. Patterns: a fixed list (pentest findings) and random
 * combinations of markup/shell/SQL punctuation and a few words. Every pattern reported here becomes
 * a fixed case in test/controls/inspection/linearity.test.ts and gets fixed.
 *
 * Usage: node bench/inspection/linearity.ts [--seconds 60] [--seed 1] [--n 20000] [--only xss]
 *        node bench/inspection/linearity.ts --patterns '["<x=:", "on"]'
 */
import { detectCmdi } from '../../src/controls/inspection/cmdi.ts';
import { DETECTORS, Engine } from '../../src/controls/inspection/engine.ts';
import { detectLfi } from '../../src/controls/inspection/lfi.ts';
import { detectLdap, detectNosql, detectSsti } from '../../src/controls/inspection/misc.ts';
import { normalize } from '../../src/controls/inspection/normalize.ts';
import { detectSqli } from '../../src/controls/inspection/sqli.ts';
import { detectSsrf } from '../../src/controls/inspection/ssrf.ts';
import { detectXss } from '../../src/controls/inspection/xss.ts';

const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? dflt : (process.argv[i + 1] as string);
};
const seconds = Number(arg('seconds', '60'));
const N = Number(arg('n', '20000'));
const only = arg('only', '');
let seed = Number(arg('seed', '1'));
const rnd = (k: number): number => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed % k;
};

const engines = [1, 2].map((pl) => new Engine({ paranoia: pl, threshold: 1e9, enabled: new Set(DETECTORS), stopAtThreshold: false, maxHits: 1e9 }));
const all: [string, (s: string) => unknown][] = [
  ['sqli', (s) => detectSqli(s)],
  ['xss', (s) => detectXss(s)],
  ['cmdi', (s) => detectCmdi(s)],
  ['lfi', (s) => detectLfi(s)],
  ['ssrf', (s) => detectSsrf(s)],
  ['ssti', (s) => detectSsti(s, 4)],
  ['ldap', (s) => detectLdap(s)],
  ['nosql', (s) => detectNosql(s, false)],
  ['engine1', (s) => engines[0]?.scan().inspect(s, false, () => 'body:')],
  ['engine2', (s) => engines[1]?.scan().inspect(s, false, () => 'body:')],
];
const subjects = all.filter(([name]) => only === '' || only.split(',').includes(name));

const ALPHABET = [
  ...`<>='"\`;|&$(){}[]/\\.:@#%-_ `,
  'on',
  'etc',
  'cat',
  'script',
  'select',
  'http:',
  'x',
  'a',
  '1',
  '\n',
  '\t',
  '!',
  '*',
  '+',
  ',',
  '?',
  '~',
  'S',
];

function time(f: (s: string) => unknown, s: string): number {
  const t = process.hrtime.bigint();
  f(s);
  return Number(process.hrtime.bigint() - t) / 1e6;
}
/** A case: a short prefix, a unit repeated up to `n` characters, a short suffix (`['', p, '']`: `p` repeated). */
type Shape = [string, string, string];
const build = ([pre, unit, suf]: Shape, n: number): string => pre + unit.repeat(Math.ceil(n / unit.length)).slice(0, n) + suf;
const show = ([pre, unit, suf]: Shape): string => (pre === '' && suf === '' ? JSON.stringify(unit) : JSON.stringify([pre, unit, suf]));

/** ms at n and 4n (best of two, to discount JIT warm-up and GC), and their ratio. */
function probe(f: (s: string) => unknown, p: Shape, raw: boolean, n = N): [number, number, number] {
  const small = build(p, n);
  const big = build(p, 4 * n);
  const a = raw ? small : normalize(small);
  const b = raw ? big : normalize(big);
  const ta = Math.min(time(f, a), time(f, a));
  const tb = Math.min(time(f, b), time(f, b));
  return [ta, tb, tb / Math.max(ta, 0.5)];
}

const found: string[] = [];
function check(p: Shape): void {
  for (const [name, f] of subjects) {
    const raw = name.startsWith('engine');
    const [ta, tb, r] = probe(f, p, raw);
    if (tb > 10 && r > 8) {
      // confirm at twice the size before reporting
      const [tc, td, r2] = probe(f, p, raw, 2 * N);
      if (r2 > 8) {
        const line = `${name.padEnd(8)} ${show(p).padEnd(30)} ${ta.toFixed(1)} -> ${tb.toFixed(1)} ms (x${r.toFixed(1)}); ${tc.toFixed(1)} -> ${td.toFixed(1)} ms`;
        console.log(line);
        found.push(line);
      }
    }
  }
}
const word = (k: number): string => {
  let p = '';
  for (let i = 0; i < k; i++) p += ALPHABET[rnd(ALPHABET.length)];
  return p;
};

const fixed = arg('patterns', '');
if (fixed !== '') {
  for (const q of JSON.parse(fixed) as (string | Shape)[]) {
    const p: Shape = typeof q === 'string' ? ['', q, ''] : q;
    for (const [name, f] of subjects) {
      const [ta, tb, r] = probe(f, p, name.startsWith('engine'));
      console.log(`${name.padEnd(8)} ${show(p).padEnd(30)} ${ta.toFixed(2)} -> ${tb.toFixed(2)} ms (x${r.toFixed(1)})`);
    }
  }
} else {
  const t0 = Date.now();
  let tried = 0;
  while (Date.now() - t0 < seconds * 1000) {
    // half the cases repeat one pattern; the others put a run between a short prefix and suffix
    const p: Shape = rnd(2) === 0 ? ['', word(1 + rnd(5)), ''] : [word(rnd(4)), word(1 + rnd(2)), word(rnd(4))];
    check(p);
    tried++;
  }
  console.log(`${tried} cases, ${found.length} super-linear`);
}
