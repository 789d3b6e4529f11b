/**
 * SPIFFE ID patterns for route rules. A SPIFFE ID is `spiffe://trust-domain/path` (SPIFFE ID
 * §2); a pattern is a SPIFFE ID whose path segments may be `*` (exactly one segment) or, as the
 * last segment, `**` (one or more segments). Trust domains are compared literally (lower case),
 * so a pattern never crosses trust domains.
 */

/** A compiled SPIFFE ID pattern. */
export interface SpiffePattern {
  readonly source: string;
  test(id: string): boolean;
}

const SEGMENT = /^[A-Za-z0-9._~!$&'()+,;=:@%-]+$/;

/**
 * Compiles a pattern such as `spiffe://example.org/ns/*\/sa/web` or `spiffe://example.org/ns/prod/**`.
 * @throws {Error} when it is not `spiffe://trust-domain[/segments]` or `**` is not last.
 */
export function compileSpiffePattern(pattern: string): SpiffePattern {
  const m = /^spiffe:\/\/([a-z0-9._-]+)((?:\/[^/]+)*)$/.exec(pattern);
  if (!m) throw new Error(`invalid SPIFFE ID pattern "${pattern}" (expected spiffe://trust-domain/path, * for one segment, ** for the rest)`);
  const segs = (m[2] as string).split('/').slice(1);
  let re = `^spiffe://${(m[1] as string).replace(/\./g, '\\.')}`;
  segs.forEach((s, i) => {
    if (s === '**') {
      if (i !== segs.length - 1) throw new Error(`invalid SPIFFE ID pattern "${pattern}": ** must be the last segment`);
      re += '(?:/[^/]+)+';
    } else if (s === '*') re += '/[^/]+';
    else if (SEGMENT.test(s)) re += `/${s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`;
    else throw new Error(`invalid SPIFFE ID pattern "${pattern}": bad segment "${s}"`);
  });
  const rx = new RegExp(`${re}$`);
  return { source: pattern, test: (id) => rx.test(id) };
}

/** Whether `id` matches any of `patterns`. */
export function matchesAny(patterns: readonly SpiffePattern[], id: string): boolean {
  for (const p of patterns) if (p.test(id)) return true;
  return false;
}
