/**
 * Parameter deserialization per OpenAPI `style` and `explode` (OAS 3.1 §4.8.12.4 "Style Values"
 * and §4.8.12.5 "Style Examples"): path `simple`/`label`/`matrix`, query `form`/`spaceDelimited`/
 * `pipeDelimited`/`deepObject`, header `simple`, cookie `form`. Values come out as strings,
 * string arrays or string maps; the parameter validator then coerces them to the schema's types.
 */
import { safeDecode } from './router.ts';

/** Where a parameter lives (OAS §4.8.12.1 "Parameter Locations"). */
export type ParamIn = 'path' | 'query' | 'header' | 'cookie';

/** How a parameter is serialized, compiled from its Parameter Object. */
export interface ParamSpec {
  name: string;
  in: ParamIn;
  required: boolean;
  style: string;
  explode: boolean;
  /** `array`, `object` or `primitive`: from the schema's `type` (following `$ref`s). */
  shape: 'array' | 'object' | 'primitive';
  /** Property names of an object parameter (for exploded `form` objects, which spread into the query). */
  properties: string[];
  /** For `content`-based parameters: the media type (JSON is parsed). */
  contentType?: string;
  allowEmptyValue: boolean;
}

/** A value that could not be deserialized (reported as a violation). */
export class ParamFormatError extends Error {}

/** Parses a query string (`application/x-www-form-urlencoded`, WHATWG URL §5.1) into name → values, in order. */
export function parseQuery(raw: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  if (raw === '') return out;
  for (const part of raw.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const k = formDecode(eq === -1 ? part : part.slice(0, eq));
    const v = eq === -1 ? '' : formDecode(part.slice(eq + 1));
    const list = out.get(k);
    if (list === undefined) out.set(k, [v]);
    else list.push(v);
  }
  return out;
}

function formDecode(s: string): string {
  return safeDecode(s.includes('+') ? s.replace(/\+/g, ' ') : s);
}

/** Parses a `Cookie` header (RFC 6265 §5.4) into name → value (first occurrence wins). */
export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!header) return out;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1) continue;
    const k = part.slice(0, eq).trim();
    if (!out.has(k)) out.set(k, part.slice(eq + 1).trim());
  }
  return out;
}

function pairs(list: string[], p: ParamSpec): Record<string, string> {
  if (list.length % 2 !== 0) throw new ParamFormatError(`"${p.name}" must be a list of key,value pairs`);
  const o: Record<string, string> = {};
  for (let i = 0; i < list.length; i += 2) o[list[i] as string] = list[i + 1] as string;
  return o;
}

function kv(list: string[], p: ParamSpec): Record<string, string> {
  const o: Record<string, string> = {};
  for (const item of list) {
    const eq = item.indexOf('=');
    if (eq === -1) throw new ParamFormatError(`"${p.name}" must be a list of key=value pairs`);
    o[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return o;
}

function parseContent(v: string, p: ParamSpec): unknown {
  if (p.contentType !== undefined && /json/i.test(p.contentType)) {
    try {
      return JSON.parse(v);
    } catch {
      throw new ParamFormatError(`"${p.name}" must be JSON (${p.contentType})`);
    }
  }
  return v;
}

/**
 * Deserializes a path parameter from its raw (percent-encoded) segment text.
 * @throws {ParamFormatError} when the text does not follow the parameter's style.
 */
export function deserializePath(raw: string, p: ParamSpec): unknown {
  if (p.contentType !== undefined) return parseContent(safeDecode(raw), p);
  let s = raw;
  let sep = ',';
  if (p.style === 'label') {
    if (s[0] !== '.') throw new ParamFormatError(`"${p.name}" must start with "." (label style)`);
    s = s.slice(1);
    if (p.explode) sep = '.';
  } else if (p.style === 'matrix') {
    const prefix = `;${p.name}`;
    if (p.shape === 'object' && p.explode) {
      if (s[0] !== ';') throw new ParamFormatError(`"${p.name}" must start with ";" (matrix style)`);
      return kv(s.slice(1).split(';').map(safeDecode), p);
    }
    if (p.shape === 'array' && p.explode) {
      const items = s.split(';').slice(1);
      return items.map((it) => {
        if (!it.startsWith(`${p.name}=`)) throw new ParamFormatError(`"${p.name}" must repeat ";${p.name}=" (matrix style)`);
        return safeDecode(it.slice(p.name.length + 1));
      });
    }
    if (!s.startsWith(prefix)) throw new ParamFormatError(`"${p.name}" must start with "${prefix}" (matrix style)`);
    s = s.slice(prefix.length);
    if (s.startsWith('=')) s = s.slice(1);
  }
  if (p.shape === 'primitive') return safeDecode(s);
  const list = s === '' ? [] : s.split(sep).map(safeDecode);
  if (p.shape === 'array') return list;
  return p.explode ? kv(list, p) : pairs(list, p);
}

/**
 * Deserializes a query parameter. `claimed` receives every query name the parameter consumed.
 * @returns `undefined` when absent.
 * @throws {ParamFormatError} on a malformed value.
 */
export function deserializeQuery(q: Map<string, string[]>, p: ParamSpec, claimed: Set<string>): unknown {
  if (p.style === 'deepObject') {
    const o: Record<string, string> = {};
    let found = false;
    const prefix = `${p.name}[`;
    for (const [k, vals] of q) {
      if (!k.startsWith(prefix) || !k.endsWith(']')) continue;
      claimed.add(k);
      found = true;
      o[k.slice(prefix.length, -1)] = vals[0] as string;
    }
    return found ? o : undefined;
  }
  if (p.shape === 'object' && p.explode && p.contentType === undefined) {
    // form + explode: the object's properties are query parameters of their own.
    const o: Record<string, string> = {};
    let found = false;
    for (const name of p.properties) {
      const vals = q.get(name);
      if (vals === undefined) continue;
      claimed.add(name);
      found = true;
      o[name] = vals[0] as string;
    }
    return found ? o : undefined;
  }
  const vals = q.get(p.name);
  if (vals === undefined) return undefined;
  claimed.add(p.name);
  if (p.contentType !== undefined) return parseContent(vals[0] as string, p);
  if (p.shape === 'primitive') {
    if (vals.length > 1) throw new ParamFormatError(`"${p.name}" is given ${vals.length} times`);
    return vals[0];
  }
  if (p.shape === 'array') {
    if (p.explode && p.style === 'form') return vals;
    const sep = p.style === 'spaceDelimited' ? ' ' : p.style === 'pipeDelimited' ? '|' : ',';
    const v = vals[0] as string;
    return v === '' ? [] : v.split(sep);
  }
  const v = vals[0] as string;
  return pairs(v === '' ? [] : v.split(','), p);
}

/**
 * Deserializes a header (`simple` style) or cookie (`form` style) value.
 * @throws {ParamFormatError} on a malformed value.
 */
export function deserializeSimple(v: string, p: ParamSpec): unknown {
  if (p.contentType !== undefined) return parseContent(v, p);
  if (p.shape === 'primitive') return v;
  const list = v === '' ? [] : v.split(',').map((s) => (p.in === 'header' ? s.trim() : safeDecode(s)));
  if (p.shape === 'array') return list;
  return p.explode && p.in === 'header' ? kv(list, p) : pairs(list, p);
}

/**
 * Parses an `application/x-www-form-urlencoded` body into an object. Bracketed names build nested
 * values the way `deepObject`-encoded form bodies do (OAS 3.1 §4.8.15 "Encoding Object"):
 * `a[b]=1` → `{a: {b: '1'}}`, `a[]=1&a[]=2` and `a[0]=1` → `{a: ['1', ...]}`; a repeated plain
 * name becomes an array.
 * @throws {ParamFormatError} when a name is used both as a value and as a container, or nests deeper than 8 levels.
 */
export function parseFormBody(text: string): Record<string, unknown> {
  const out: Record<string, unknown> = Object.create(null);
  for (const [name, vals] of parseQuery(text)) {
    const br = name.indexOf('[');
    if (br <= 0 || !name.endsWith(']')) {
      out[name] = vals.length === 1 ? vals[0] : vals;
      continue;
    }
    const path = [name.slice(0, br), ...name.slice(br + 1, -1).split('][')];
    if (path.length > 9) throw new ParamFormatError(`"${name}" nests too deeply`);
    for (const v of vals) {
      let cur: Record<string, unknown> | unknown[] = out;
      for (let i = 0; i < path.length; i++) {
        const tok = path[i] as string;
        const last = i === path.length - 1;
        const nextTok = path[i + 1];
        const container = (): Record<string, unknown> | unknown[] => (nextTok === '' || /^\d+$/.test(nextTok ?? '') ? [] : Object.create(null));
        if (Array.isArray(cur)) {
          const idx = tok === '' ? cur.length : /^\d+$/.test(tok) ? Number(tok) : -1;
          if (idx < 0 || idx > 10_000) throw new ParamFormatError(`"${name}" mixes list and object notation`);
          if (last) cur[idx] = v;
          else {
            cur[idx] ??= container();
            const n: unknown = cur[idx];
            if (typeof n !== 'object' || n === null) throw new ParamFormatError(`"${name}" is both a value and a container`);
            cur = n as Record<string, unknown> | unknown[];
          }
        } else {
          if (tok === '') throw new ParamFormatError(`"${name}" has an empty key`);
          if (last) cur[tok] = v;
          else {
            cur[tok] ??= container();
            const n: unknown = cur[tok];
            if (typeof n !== 'object' || n === null) throw new ParamFormatError(`"${name}" is both a value and a container`);
            cur = n as Record<string, unknown> | unknown[];
          }
        }
      }
    }
  }
  return out;
}
