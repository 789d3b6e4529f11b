/**
 * Path-template router for OpenAPI Paths Objects (OAS 3.1 §4.8.8 "Paths Object", §4.8.8.2
 * "Path Templating Matching"): a segment tree where a concrete segment always beats a templated
 * one, a segment mixing literal text and expressions (`/files/{name}.{ext}`) is matched with a
 * regular expression compiled once, and a template expression never spans a `/`.
 */

/** One route: a path template and its value per method. */
export interface RouteMatch<T> {
  template: string;
  /** Values by upper-case method. */
  methods: ReadonlyMap<string, T>;
  /** Path parameter values as they appear in the path (still percent-encoded), by name. */
  raw: Record<string, string>;
}

interface Leaf<T> {
  template: string;
  /** Parameter names in order of appearance. */
  names: string[];
  methods: Map<string, T>;
}

interface PartialEdge<T> {
  re: RegExp;
  /** Names captured by the regex groups, in order. */
  count: number;
  node: RNode<T>;
  key: string;
}

interface RNode<T> {
  lit: Map<string, RNode<T>>;
  param: RNode<T> | undefined;
  partial: PartialEdge<T>[];
  leaf: Leaf<T> | undefined;
}

const node = <T>(): RNode<T> => ({ lit: new Map(), param: undefined, partial: [], leaf: undefined });
const EXPR = /\{([^{}]+)\}/g;

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A router from path templates to per-method values. */
export class Router<T> {
  private readonly root: RNode<T> = node();
  /** Number of templates added. */
  size = 0;

  /**
   * Adds `value` for `method` on `template` (e.g. `/users/{id}`).
   * @throws {Error} when the template is malformed or an equivalent template already has `method`.
   */
  add(template: string, method: string, value: T): void {
    if (!template.startsWith('/')) throw new Error(`path template "${template}" must start with "/"`);
    let cur = this.root;
    const names: string[] = [];
    for (const seg of template.slice(1).split('/')) {
      const exprs = [...seg.matchAll(EXPR)];
      if (exprs.length === 0) {
        if (seg.includes('{') || seg.includes('}')) throw new Error(`path template "${template}" has an unbalanced brace`);
        let next = cur.lit.get(seg);
        if (next === undefined) cur.lit.set(seg, (next = node()));
        cur = next;
      } else if (exprs.length === 1 && exprs[0]?.[0] === seg) {
        names.push((exprs[0][1] as string).trim());
        cur.param ??= node();
        cur = cur.param;
      } else {
        let src = '^';
        let last = 0;
        for (const m of exprs) {
          src += `${escapeRe(seg.slice(last, m.index))}([^/]+)`;
          names.push((m[1] as string).trim());
          last = (m.index as number) + m[0].length;
        }
        src += `${escapeRe(seg.slice(last))}$`;
        const key = seg.replace(EXPR, '{}');
        let edge = cur.partial.find((e) => e.key === key);
        if (edge === undefined) {
          edge = { re: new RegExp(src), count: exprs.length, node: node(), key };
          cur.partial.push(edge);
          // Longer literal text first: more specific patterns win.
          cur.partial.sort((a, b) => b.key.length - a.key.length);
        }
        cur = edge.node;
      }
    }
    if (cur.leaf === undefined) {
      cur.leaf = { template, names, methods: new Map() };
      this.size++;
    }
    if (cur.leaf.methods.has(method)) throw new Error(`"${template}" and "${cur.leaf.template}" are the same path template (method ${method} twice)`);
    cur.leaf.methods.set(method, value);
  }

  /**
   * Matches a request path (percent-encoded, no query) against the templates.
   * @returns the route, or `undefined` when no template matches.
   */
  match(path: string): RouteMatch<T> | undefined {
    if (path[0] !== '/') return undefined;
    const segs = path.slice(1).split('/');
    const values: string[] = [];
    const leaf = this.walk(this.root, segs, 0, values);
    if (leaf === undefined) return undefined;
    const raw: Record<string, string> = {};
    for (let i = 0; i < leaf.names.length; i++) raw[leaf.names[i] as string] = values[i] as string;
    return { template: leaf.template, methods: leaf.methods, raw };
  }

  private walk(n: RNode<T>, segs: string[], i: number, values: string[]): Leaf<T> | undefined {
    if (i === segs.length) return n.leaf;
    const seg = segs[i] as string;
    const lit = n.lit.get(seg) ?? (seg.includes('%') ? n.lit.get(safeDecode(seg)) : undefined);
    if (lit !== undefined) {
      const r = this.walk(lit, segs, i + 1, values);
      if (r !== undefined) return r;
    }
    if (seg === '') return undefined;
    for (const e of n.partial) {
      const m = e.re.exec(seg);
      if (m === null) continue;
      const mark = values.length;
      for (let g = 1; g <= e.count; g++) values.push(m[g] as string);
      const r = this.walk(e.node, segs, i + 1, values);
      if (r !== undefined) return r;
      values.length = mark;
    }
    if (n.param !== undefined) {
      values.push(seg);
      const r = this.walk(n.param, segs, i + 1, values);
      if (r !== undefined) return r;
      values.pop();
    }
    return undefined;
  }
}

/** `decodeURIComponent` that returns the input unchanged on malformed escapes. */
export function safeDecode(s: string): string {
  if (!s.includes('%')) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
