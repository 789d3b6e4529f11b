/**
 * Smaller detectors: NoSQL operator injection (OWASP WSTG-INPV-05.6; CWE-943), server-side
 * template injection (WSTG-INPV-18; CWE-1336) including JNDI lookups (CVE-2021-44228), and LDAP
 * filter injection (WSTG-INPV-06; CWE-90; RFC 4515 filter syntax). Each is a bounded number of
 * `indexOf` scans: linear in the value.
 */

/** A detection from one of these detectors. */
export interface MiscHit {
  rule: string;
  index: number;
  paranoia: number;
}

/** MongoDB query and update operators that change a query's meaning when a client supplies them. */
export const NOSQL_OPERATORS = new Set([
  '$ne',
  '$eq',
  '$gt',
  '$gte',
  '$lt',
  '$lte',
  '$in',
  '$nin',
  '$regex',
  '$where',
  '$exists',
  '$expr',
  '$function',
  '$accumulator',
  '$or',
  '$and',
  '$nor',
  '$not',
  '$elemmatch',
  '$all',
  '$size',
  '$type',
  '$mod',
  '$text',
  '$jsonschema',
  '$lookup',
  '$set',
  '$unset',
  '$rename',
  '$inc',
  '$push',
  '$pull',
  '$merge',
  '$out',
  '$group',
  '$match',
  '$options',
]);

/**
 * Detects a NoSQL operator in a parameter or JSON key name (`$ne`, `user[$ne]`), or a JSON query
 * object smuggled in a string value (`{"$gt": ""}`).
 * @param isName true when `s` is a key or parameter name.
 */
export function detectNosql(s: string, isName: boolean): MiscHit | undefined {
  let p = s.indexOf('$');
  while (p !== -1) {
    let j = p + 1;
    while (j < s.length && s.charCodeAt(j) >= 97 && s.charCodeAt(j) <= 122) j++;
    const op = s.slice(p, j);
    if (NOSQL_OPERATORS.has(op)) {
      const prev = p === 0 ? 0 : s.charCodeAt(p - 1);
      if (isName && (p === 0 || prev === 91 /* [ */ || prev === 46)) return { rule: `operator:${op}`, index: p, paranoia: 1 };
      if (!isName && (prev === 34 || prev === 39 || prev === 123 || prev === 91) && /[{[]/.test(s.slice(Math.max(0, p - 4), p)))
        return { rule: `operator:${op}`, index: p, paranoia: 1 };
    }
    p = s.indexOf('$', p + 1);
  }
  if (!isName && s.indexOf('this.') !== -1 && /(?:^|[;'"\s|&])(?:return\s|this\.\w+\s*(?:==|!=|\.match|\.constructor)|sleep\s*\()/.test(s))
    return { rule: 'where-javascript', index: 0, paranoia: 2 };
  return undefined;
}

const EXPR_CHARS = /[*+\-/%.()[\]|'"_<>=!~]/;

/**
 * Finds template blocks `open … close` whose body is at most 256 characters (`close` within the 256
 * characters after `open`). One instance serves the openers of one kind in increasing order: it
 * remembers the next `close`, so a run of openers without a close (`<%<%<%…`) costs one forward scan
 * instead of a 256-character window per opener.
 */
class Blocks {
  private next = -2;
  private readonly s: string;
  private readonly open: string;
  private readonly close: string;
  constructor(s: string, open: string, close: string) {
    this.s = s;
    this.open = open;
    this.close = close;
  }
  /** The body of the block opened at `p` (openers must come in increasing order), or undefined. */
  at(p: number): string | undefined {
    const from = p + this.open.length;
    if (this.next !== -1 && this.next < from) this.next = this.s.indexOf(this.close, from);
    if (this.next === -1 || this.next + this.close.length > from + 256) return undefined;
    return this.s.slice(from, this.next);
  }
}

/**
 * Velocity and FreeMarker directives that run code or reach Java classes (PortSwigger "Server-side
 * template injection"; PayloadsAllTheThings SSTI/Java): Velocity `#set($x = …)`, `#evaluate(`,
 * `#parse(`, the ClassTool `$class.inspect(…)`/`$class.type`; FreeMarker `<#assign …>` and the other
 * assignment directives, the `?new(` built-in and `freemarker.template.utility.Execute`. Level 2:
 * the control directives (`#foreach($`, `#if($`, `<#list`, `<#include`), which template source in a
 * CMS field may carry legitimately. Prose has none of these shapes (a `#` or `<#` glued to a
 * directive name and a parenthesis or `$`). One linear pass (bounded white-space runs).
 */
const TEMPLATE_DIRECTIVE =
  /#(?:set\s{0,8}\(\s{0,8}\$|(?:evaluate|parse)\s{0,8}\()|\$class\.(?:inspect|type|forname)\b|freemarker\.template\.utility\.|<#(?:assign|global|local|setting)\b|\?new\s{0,8}\(/;
const TEMPLATE_DIRECTIVE_L2 = /#(?:foreach|if|elseif|macro|define|include)\s{0,8}\(\s{0,8}\$|<#(?:include|import|attempt|list|if|function|macro)\b/;

/**
 * Detects Velocity/FreeMarker directives ({@link TEMPLATE_DIRECTIVE}); the engine calls it for
 * values with `#` or `$` but no brace, angle bracket or square bracket (where {@link detectSsti}
 * runs and calls it too).
 */
export function detectTemplateDirective(s: string, paranoia: number): MiscHit | undefined {
  const m = TEMPLATE_DIRECTIVE.exec(s);
  if (m !== null) return { rule: 'template-directive', index: m.index, paranoia: 1 };
  if (paranoia >= 2) {
    const m2 = TEMPLATE_DIRECTIVE_L2.exec(s);
    if (m2 !== null) return { rule: 'template-directive', index: m2.index, paranoia: 2 };
  }
  return undefined;
}

/**
 * Detects template expressions that evaluate code: `{{7*7}}`, `${T(java.lang.Runtime)}`, `<%= %>`,
 * `#{...}`, `{% import %}`, Velocity/FreeMarker directives ({@link detectTemplateDirective}), and
 * JNDI lookups (`${jndi:ldap://...}`).
 * @param paranoia the configured level (level-2 directives are looked for only from 2).
 */
export function detectSsti(s: string, paranoia = 1): MiscHit | undefined {
  let p = s.indexOf('${');
  const dollar = new Blocks(s, '${', '}');
  while (p !== -1) {
    const rest = s.slice(p + 2, p + 40);
    if (/^\s*(?:jndi|lower|upper|env|sys|java|date|main|ctx|spring|k8s|docker|log4j|bundle|base64|::-)[:-]/.test(rest) || rest.includes('${')) {
      if (/jndi|\$\{|::-/.test(s.slice(p, p + 200))) return { rule: 'jndi-lookup', index: p, paranoia: 1 };
    }
    const body = dollar.at(p);
    if (body !== undefined && EXPR_CHARS.test(body) && !/^[a-z_][a-z0-9_]*$/.test(body.trim())) return { rule: 'dollar-expression', index: p, paranoia: 1 };
    p = s.indexOf('${', p + 2);
  }
  for (const [open, close] of [
    ['{{', '}}'],
    ['#{', '}'],
    ['*{', '}'],
    ['@{', '}'],
    ['<%', '%>'],
    ['{%', '%}'],
    ['[[', ']]'],
  ] as const) {
    let q = s.indexOf(open);
    const blocks = new Blocks(s, open, close);
    while (q !== -1) {
      const body = blocks.at(q);
      if (body !== undefined) {
        if (open === '<%' || open === '{%') {
          if (/^[=\-#]|\b(?:import|include|set|for|if|macro|extends|load|exec|eval|system|runtime|request|response|out\.print)\b/.test(body))
            return { rule: `template:${open}`, index: q, paranoia: 1 };
        } else if (EXPR_CHARS.test(body)) {
          return { rule: `template:${open}`, index: q, paranoia: open === '[[' ? 2 : 1 };
        }
      }
      q = s.indexOf(open, q + open.length);
    }
  }
  return s.indexOf('#') !== -1 || s.indexOf('$') !== -1 || s.indexOf('?') !== -1 ? detectTemplateDirective(s, paranoia) : undefined;
}

/**
 * Detects LDAP filter injection: closing a filter and opening another (`*)(uid=*`, `)(|(`), or a
 * filter made always-true (`*)(|(objectclass=*`). RFC 4515 §3.
 */
export function detectLdap(s: string): MiscHit | undefined {
  let p = s.indexOf(')(');
  while (p !== -1) {
    const after = s.charCodeAt(p + 2);
    if (after === 124 || after === 38 || after === 33) return { rule: 'filter-operator', index: p, paranoia: 1 };
    const m = /^[a-z][a-z0-9-]{0,40}[~<>]?=/.exec(s.slice(p + 2, p + 46));
    if (m) {
      const before = s.charCodeAt(p - 1);
      if (before === 42 || before === 41 || p === 0 || s.indexOf('(', 0) < p) return { rule: 'filter-breakout', index: p, paranoia: 1 };
    }
    p = s.indexOf(')(', p + 2);
  }
  if (s.startsWith('*)') || s.startsWith('*|') || s.startsWith('*(|') || s.startsWith('(|(') || s.startsWith('(&('))
    return { rule: 'filter-wildcard', index: 0, paranoia: 1 };
  return undefined;
}
