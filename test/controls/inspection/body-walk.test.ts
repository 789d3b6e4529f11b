/**
 * The JSON walker's fast paths (names reused from the previous sibling object, character classes
 * handed to the engine) must see exactly what a plain scan sees: same names and values, same
 * paths, same duplicate and prototype-pollution refusals, classes only for unescaped strings.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BodyLimitError, type JsonLimits, type PathStack, walkJson } from '../../../src/controls/inspection/body.ts';
import { CLASS, NORM } from '../../../src/controls/inspection/engine.ts';

const limits: JsonLimits = {
  maxDepth: 32,
  maxKeys: 1000,
  maxArray: 10000,
  maxString: 1_000_000,
  maxNumber: Number.POSITIVE_INFINITY,
  maxNumberDigits: 40,
  maxNumberExponent: 308,
  duplicateKeys: 'reject',
  forbiddenKeys: new Set(['__proto__', 'constructor', 'prototype']),
};

function classesOf(s: string): number {
  let m = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    m |= c < 128 ? (CLASS[c] as number) : NORM;
  }
  return m;
}

function visits(text: string, l: JsonLimits = limits): [string, boolean, string, number | undefined][] {
  const out: [string, boolean, string, number | undefined][] = [];
  walkJson(text, l, (v: string, isName: boolean, path: PathStack, classes?: number) => {
    out.push([v, isName, path.join('/'), classes]);
    return false;
  });
  return out;
}

function refusal(text: string, l: JsonLimits = limits): string | undefined {
  try {
    walkJson(text, l, () => false);
  } catch (e) {
    if (e instanceof BodyLimitError) return `${e.code}:${e.limit}`;
    throw e;
  }
  return undefined;
}

describe('JSON walker fast paths', () => {
  it('names repeated across records, escaped spellings and prefixes are read as written', () => {
    const v = visits('[{"ab":"x","c":1},{"a\\u0062":"Y","c":2},{"abc":"z<","c":3},{"ab":"é","c":4},{"a":5,"cd":6}]');
    assert.deepEqual(
      v.map(([s, n, p]) => [s, n, p]),
      [
        ['ab', true, '0/ab'],
        ['x', false, '0/ab'],
        ['c', true, '0/c'],
        ['ab', true, '1/ab'],
        ['Y', false, '1/ab'],
        ['c', true, '1/c'],
        ['abc', true, '2/abc'],
        ['z<', false, '2/abc'],
        ['c', true, '2/c'],
        ['ab', true, '3/ab'],
        ['é', false, '3/ab'],
        ['c', true, '3/c'],
        ['a', true, '4/a'],
        ['cd', true, '4/cd'],
      ],
    );
    // classes are those of the value, or absent (-1) when escapes were decoded
    for (const [s, , , classes] of v) assert.ok(classes === -1 || classes === classesOf(s), `${s}: ${classes}`);
    assert.equal(v[3]?.[3], -1);
  });

  it('duplicates and forbidden names are refused in later records too', () => {
    assert.equal(refusal('[{"a":1,"b":2},{"a":1,"a":2}]'), 'duplicate-key:duplicate_keys');
    assert.equal(refusal('[{"a":1,"b":2},{"a":1,"\\u0061":2}]'), 'duplicate-key:duplicate_keys');
    assert.equal(refusal('[{"a":1,"x":2},{"a":1,"__proto__":{}}]'), 'prototype-pollution:forbidden_keys');
    const many = Array.from({ length: 20 }, (_, i) => `"k${i}":${i}`).join(',');
    assert.equal(refusal(`[{${many}},{${many},"k3":0}]`), 'duplicate-key:duplicate_keys');
    assert.equal(refusal(`[{${many}},{${many},"k19":0}]`), 'duplicate-key:duplicate_keys');
    assert.equal(refusal(`[{${many}},{${many}}]`), undefined);
    assert.equal(refusal('[{"a":1,"b":2},{"b":1,"a":2}]'), undefined);
    assert.equal(refusal('[{"a":1,"a":2}]', { ...limits, duplicateKeys: 'allow' }), undefined);
  });

  it('keeps the limits: members per object and string length in every record', () => {
    assert.equal(refusal('[{"a":1,"b":2},{"a":1,"b":2,"c":3}]', { ...limits, maxKeys: 2 }), 'json-limit-exceeded:max_keys');
    assert.equal(refusal('[{"abcd":1},{"abcd":1}]', { ...limits, maxString: 3 }), 'json-limit-exceeded:max_string');
  });
});
