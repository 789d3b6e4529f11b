/**
 * Legitimate request values taken from OpenAPI documents, and a driver that runs requests through
 * the inspection stage in-process (a {@link RequestContext} over the stage, as bench/inspection/speed.ts
 * does; no HTTP). Used by bench/inspection/benign.ts (false-positive measurement on real API
 * documents) and test/controls/inspection/benign.test.ts (regression on a vendored sample).
 *
 * What counts as a legitimate value (OpenAPI Specification 3.0.3 / 3.1.0):
 * - parameters (§4.8.12 Parameter Object, `in`: path, query, header, cookie): `example`, the first
 *   of `examples` (§4.8.19 Example Object, `$ref`s followed), else the example of the `schema`;
 * - request bodies (§4.8.13, §4.8.14 Media Type Object): each named media-type example (one request
 *   each) or the media-type `example`; else one body synthesised from the schema: a schema's
 *   `example`, first of `examples` (3.1), `default`, first non-empty `enum` value or `const`,
 *   objects built from the properties that have one (readOnly properties left out), arrays of one
 *   item, `allOf` merged, first usable `oneOf`/`anyOf` branch. No string is ever invented: a
 *   property with nothing of the kind is left out. The one exception: a path parameter without any
 *   example gets the neutral placeholder `1234` (the route needs a segment).
 * Serialisation follows §4.8.12.4 (style/explode): query `form` (exploded arrays repeat the name),
 * `deepObject` (`a[b]=v`), `spaceDelimited`/`pipeDelimited`; path/header `simple`; cookies `form`.
 * Form bodies use the bracket notation of Stripe and Rails (`a[b][0][c]=v`), multipart bodies one
 * part per top-level property (objects as JSON, §4.8.15 Encoding Object default).
 */
import type { IncomingMessage } from 'node:http';
import { inspectionControl } from '../../src/controls/inspection/index.ts';
import { RequestContext } from '../../src/pipeline/context.ts';
import { Problem } from '../../src/pipeline/problem.ts';
import type { RequestStage } from '../../src/pipeline/stage.ts';
import { MemoryStore } from '../../src/state/memory.ts';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** One request built from an operation's examples. */
export interface ExampleRequest {
  /** `METHOD /path/template`, plus `#example-name` for a named body example. */
  operation: string;
  method: string;
  /** Origin-form target: path and query, percent-encoded. */
  target: string;
  /** Lower-case header names; values as UTF-8 text. */
  headers: Record<string, string>;
  body?: { contentType: string; bytes: Buffer };
  /** Inspection location (`query:q`, `body:/a/b`, `header:x`, `cookie:c`, `path:2`) → the value sent there. */
  values: Map<string, string>;
}

/** A `description` of the document (prose, Markdown) and its JSON pointer. */
export interface Description {
  pointer: string;
  text: string;
}

/** Resolves a local `$ref` (`#/a/b`, RFC 6901 tokens); undefined when it does not exist. */
function pointerGet(doc: unknown, ref: string): unknown {
  if (!ref.startsWith('#/')) return undefined;
  let cur: unknown = doc;
  for (const raw of ref.slice(2).split('/')) {
    const tok = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    if (!isObj(cur) && !Array.isArray(cur)) return undefined;
    cur = (cur as Obj)[tok];
    if (cur === undefined) return undefined;
  }
  return cur;
}

/** Follows a chain of `$ref`s (at most 32). */
function deref(doc: unknown, node: unknown): unknown {
  for (let i = 0; i < 32 && isObj(node) && typeof node.$ref === 'string'; i++) node = pointerGet(doc, node.$ref);
  return node;
}

/**
 * An example value of a schema, assembled only from what the document states (see the module
 * comment); undefined when the schema states nothing usable.
 * @param stack `$ref`s being expanded (cycle guard); depth capped at 12.
 */
export function schemaExample(doc: unknown, schema: unknown, stack: string[] = [], depth = 0): unknown {
  if (depth > 12) return undefined;
  if (isObj(schema) && typeof schema.$ref === 'string') {
    if (stack.includes(schema.$ref)) return undefined;
    return schemaExample(doc, pointerGet(doc, schema.$ref), [...stack, schema.$ref], depth + 1);
  }
  if (!isObj(schema)) return undefined;
  const s = schema;
  if (s.example !== undefined && s.example !== null) return s.example;
  if (Array.isArray(s.examples) && s.examples.length > 0 && s.examples[0] !== null) return s.examples[0];
  if (s.default !== undefined && s.default !== null) return s.default;
  if (Array.isArray(s.enum)) {
    const v = s.enum.find((x) => x !== null && x !== '');
    if (v !== undefined) return v;
  }
  if (s.const !== undefined && s.const !== null) return s.const;
  if (Array.isArray(s.allOf)) {
    let merged: Obj | undefined;
    for (const part of s.allOf) {
      const v = schemaExample(doc, part, stack, depth + 1);
      if (isObj(v)) merged = { ...(merged ?? {}), ...v };
      else if (v !== undefined && merged === undefined) return v;
    }
    if (merged !== undefined) return merged;
  }
  for (const key of ['oneOf', 'anyOf'] as const) {
    const alts = s[key];
    if (!Array.isArray(alts)) continue;
    for (const alt of alts) {
      const v = schemaExample(doc, alt, stack, depth + 1);
      if (v !== undefined) return v;
    }
  }
  if (isObj(s.properties)) {
    const out: Obj = {};
    for (const [k, p] of Object.entries(s.properties)) {
      if (isObj(deref(doc, p)) && (deref(doc, p) as Obj).readOnly === true) continue;
      const v = schemaExample(doc, p, stack, depth + 1);
      if (v !== undefined) out[k] = v;
    }
    return Object.keys(out).length > 0 ? out : undefined;
  }
  if (s.items !== undefined) {
    const v = schemaExample(doc, s.items, stack, depth + 1);
    return v === undefined ? undefined : [v];
  }
  return undefined;
}

/** The example of a parameter (or header/media object holding `example`/`examples`/`schema`). */
function parameterExample(doc: unknown, p: Obj): unknown {
  if (p.example !== undefined && p.example !== null) return p.example;
  if (isObj(p.examples)) {
    for (const ex of Object.values(p.examples)) {
      const e = deref(doc, ex);
      if (isObj(e) && e.value !== undefined && e.value !== null) return e.value;
    }
  }
  if (isObj(p.content)) {
    for (const mt of Object.values(p.content)) {
      if (!isObj(mt)) continue;
      const v = parameterExample(doc, mt);
      if (v !== undefined) return v;
    }
  }
  return schemaExample(doc, p.schema);
}

const scalar = (v: unknown): string => (typeof v === 'string' ? v : typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v));
const enc = encodeURIComponent;

/** Flattens a value in bracket notation: `[['a[b][0]', 'v'], ...]`. */
function brackets(prefix: string, v: unknown, out: [string, string][], depth = 0): void {
  if (depth > 16) return;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) brackets(`${prefix}[${i}]`, v[i], out, depth + 1);
  } else if (isObj(v)) for (const [k, x] of Object.entries(v)) brackets(prefix === '' ? k : `${prefix}[${k}]`, x, out, depth + 1);
  else if (v !== undefined && v !== null) out.push([prefix, scalar(v)]);
}

/** Query pairs of one parameter (OAS §4.8.12.4 style/explode). */
function queryPairs(p: Obj, v: unknown): [string, string][] {
  const name = String(p.name);
  const style = typeof p.style === 'string' ? p.style : 'form';
  const explode = typeof p.explode === 'boolean' ? p.explode : style === 'form';
  if (Array.isArray(v)) {
    if (explode) return v.map((x) => [name, scalar(x)]);
    const sep = style === 'spaceDelimited' ? ' ' : style === 'pipeDelimited' ? '|' : ',';
    return [[name, v.map(scalar).join(sep)]];
  }
  if (isObj(v)) {
    if (style === 'deepObject') {
      const out: [string, string][] = [];
      brackets(name, v, out);
      return out;
    }
    if (explode) return Object.entries(v).map(([k, x]) => [k, scalar(x)]);
    return [
      [
        name,
        Object.entries(v)
          .flatMap(([k, x]) => [k, scalar(x)])
          .join(','),
      ],
    ];
  }
  return [[name, scalar(v)]];
}

/** `simple` style (path and header parameters). */
function simple(v: unknown): string {
  if (Array.isArray(v)) return v.map(scalar).join(',');
  if (isObj(v))
    return Object.entries(v)
      .flatMap(([k, x]) => [k, scalar(x)])
      .join(',');
  return scalar(v);
}

/** JSON pointer of a path. */
const ptr = (path: (string | number)[]): string => path.map((p) => `/${String(p).replaceAll('~', '~0').replaceAll('/', '~1')}`).join('');

/** Records every string leaf of a JSON value under its body pointer. */
function jsonLeaves(v: unknown, path: (string | number)[], out: Map<string, string>, depth = 0): void {
  if (depth > 64) return;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) jsonLeaves(v[i], [...path, i], out, depth + 1);
  } else if (isObj(v)) for (const [k, x] of Object.entries(v)) jsonLeaves(x, [...path, k], out, depth + 1);
  else if (typeof v === 'string') out.set(`body:${ptr(path)}`, v);
}

const addValue = (m: Map<string, string>, loc: string, v: string): void => {
  const prev = m.get(loc);
  m.set(loc, prev === undefined ? v : `${prev} | ${v}`);
};

/** Media types in order of preference for the one body an operation's request carries. */
function pickMediaType(content: Obj): string | undefined {
  const types = Object.keys(content);
  const rank = (t: string): number => {
    const l = t.toLowerCase();
    if (l === 'application/json' || l.endsWith('+json')) return 0;
    if (l === 'application/x-www-form-urlencoded') return 1;
    if (l === 'multipart/form-data') return 2;
    if (l.startsWith('text/')) return 3;
    if (l.includes('xml')) return 4;
    return 9;
  };
  return types.sort((a, b) => rank(a) - rank(b))[0];
}

/** Encodes a body example under its media type; undefined when it cannot be sent (binary, no value). */
function encodeBody(mediaType: string, v: unknown, values: Map<string, string>): { contentType: string; bytes: Buffer } | undefined {
  const l = mediaType.toLowerCase();
  if (l === 'application/json' || l.endsWith('+json') || l === 'text/json') {
    jsonLeaves(v, [], values);
    return { contentType: 'application/json', bytes: Buffer.from(JSON.stringify(v)) };
  }
  if (l === 'application/x-www-form-urlencoded') {
    if (typeof v === 'string') {
      values.set('body:', v);
      return { contentType: mediaType, bytes: Buffer.from(v) };
    }
    const pairs: [string, string][] = [];
    brackets('', v, pairs);
    if (pairs.length === 0) return undefined;
    for (const [k, x] of pairs) addValue(values, `body:${ptr([k])}`, x);
    return { contentType: mediaType, bytes: Buffer.from(pairs.map(([k, x]) => `${enc(k)}=${enc(x)}`).join('&')) };
  }
  if (l === 'multipart/form-data') {
    if (!isObj(v)) return undefined;
    const boundary = 'benignBoundary7MA4YWxkTrZu0gW';
    let s = '';
    for (const [k, x] of Object.entries(v)) {
      const text = scalar(x);
      addValue(values, `body:${ptr([k])}`, text);
      s += `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${text}\r\n`;
    }
    s += `--${boundary}--\r\n`;
    return { contentType: `multipart/form-data; boundary=${boundary}`, bytes: Buffer.from(s) };
  }
  if (typeof v === 'string' && (l.startsWith('text/') || l.includes('xml'))) {
    values.set('body:', v);
    return { contentType: mediaType, bytes: Buffer.from(v) };
  }
  if (l.startsWith('text/') && v !== undefined && v !== null && typeof v !== 'object') {
    values.set('body:', String(v));
    return { contentType: mediaType, bytes: Buffer.from(String(v)) };
  }
  return undefined;
}

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
/** Header parameters OAS says to ignore (§4.8.12.1): they are set by other means. */
const IGNORED_HEADERS = new Set(['accept', 'content-type', 'authorization']);

/**
 * The example requests of every operation of an OpenAPI 3.0/3.1 document: one per named body
 * example, else one (with a synthesised body when the schema allows one).
 */
export function extractRequests(doc: Obj): ExampleRequest[] {
  const out: ExampleRequest[] = [];
  const paths = isObj(doc.paths) ? doc.paths : {};
  for (const [template, rawItem] of Object.entries(paths)) {
    const item = deref(doc, rawItem);
    if (!isObj(item)) continue;
    for (const method of METHODS) {
      const op = item[method];
      if (!isObj(op)) continue;
      // operation parameters override path-item ones of the same name and location
      const params = new Map<string, Obj>();
      for (const list of [item.parameters, op.parameters]) {
        if (!Array.isArray(list)) continue;
        for (const raw of list) {
          const p = deref(doc, raw);
          if (isObj(p) && typeof p.name === 'string' && typeof p.in === 'string') params.set(`${p.in}:${p.name}`, p);
        }
      }
      const values = new Map<string, string>();
      const headers: Record<string, string> = { host: 'api.example.com', 'user-agent': 'benign-bench/1.0' };
      const query: [string, string][] = [];
      const cookies: string[] = [];
      let path = template;
      for (const p of params.values()) {
        const v = parameterExample(doc, p);
        const name = p.name as string;
        if (p.in === 'path') {
          const seg = v === undefined ? '1234' : simple(v);
          path = path.replaceAll(`{${name}}`, enc(seg));
        } else if (v === undefined) continue;
        else if (p.in === 'query') query.push(...queryPairs(p, v));
        else if (p.in === 'header') {
          const h = name.toLowerCase();
          if (!IGNORED_HEADERS.has(h)) headers[h] = simple(v);
        } else if (p.in === 'cookie') cookies.push(`${name}=${enc(simple(v))}`);
      }
      path = path.replace(/\{[^}]*\}/g, '1234');
      const segs = path.split('/');
      for (let i = 1; i < segs.length; i++) if (segs[i] !== '') values.set(`path:${i}`, decodeURIComponent(segs[i] as string));
      for (const [k, v] of query) addValue(values, `query:${k}`, v);
      for (const [k, v] of Object.entries(headers)) if (k !== 'host' && k !== 'user-agent') values.set(`header:${k}`, v);
      if (cookies.length > 0) {
        headers.cookie = cookies.join('; ');
        for (const c of cookies) {
          const eq = c.indexOf('=');
          values.set(`cookie:${c.slice(0, eq)}`, decodeURIComponent(c.slice(eq + 1)));
        }
      }
      const target = query.length === 0 ? path : `${path}?${query.map(([k, v]) => `${enc(k)}=${enc(v)}`).join('&')}`;
      const operation = `${method.toUpperCase()} ${template}`;
      const base = { method: method.toUpperCase(), target, headers };

      // bodies: named examples, the media-type example, or one synthesised from the schema
      const rb = deref(doc, op.requestBody);
      const content = isObj(rb) && isObj(rb.content) ? rb.content : undefined;
      const mediaType = content ? pickMediaType(content) : undefined;
      const media = mediaType && content ? deref(doc, content[mediaType]) : undefined;
      const bodies: [string, unknown][] = [];
      if (isObj(media)) {
        if (isObj(media.examples)) {
          for (const [exName, ex] of Object.entries(media.examples)) {
            const e = deref(doc, ex);
            if (isObj(e) && e.value !== undefined && e.value !== null) bodies.push([exName, e.value]);
          }
        }
        if (bodies.length === 0 && media.example !== undefined && media.example !== null) bodies.push(['', media.example]);
        if (bodies.length === 0) {
          const v = schemaExample(doc, media.schema);
          if (v !== undefined) bodies.push(['', v]);
        }
      }
      if (bodies.length === 0) {
        out.push({ operation, ...base, values });
        continue;
      }
      for (const [exName, v] of bodies) {
        const vals = new Map(values);
        const body = encodeBody(mediaType as string, v, vals);
        out.push({ operation: exName === '' ? operation : `${operation}#${exName}`, ...base, headers: { ...headers }, body, values: vals });
      }
    }
  }
  return out;
}

/** Every string `description` of the document (Markdown prose), with its JSON pointer; duplicates dropped. */
export function extractDescriptions(doc: unknown): Description[] {
  const out: Description[] = [];
  const seen = new Set<string>();
  const walk = (n: unknown, path: (string | number)[], depth: number): void => {
    if (depth > 200) return;
    if (Array.isArray(n)) {
      for (let i = 0; i < n.length; i++) walk(n[i], [...path, i], depth + 1);
    } else if (isObj(n))
      for (const [k, v] of Object.entries(n)) {
        if (k === 'description' && typeof v === 'string') {
          if (v.trim() !== '' && !seen.has(v)) {
            seen.add(v);
            out.push({ pointer: ptr([...path, k]), text: v });
          }
        } else if (typeof v === 'object' && v !== null) walk(v, [...path, k], depth + 1);
      }
  };
  walk(doc, [], 0);
  return out;
}

/** One detection as the stage reports it. */
export interface Hit {
  detector: string;
  rule: string;
  location: string;
  snippet: string;
}

/** Outcome of one request: blocked or not, why, and the detections. */
export interface Outcome {
  blocked: boolean;
  status: number;
  code: string;
  hits: Hit[];
}

/** The inspection request stage at a paranoia level (default configuration otherwise, block mode). */
export async function inspectionStage(paranoia: number): Promise<RequestStage> {
  const inst = await inspectionControl.create(inspectionControl.schema.parse({ paranoia_level: paranoia }), {
    apiName: 'benign',
    configDir: '.',
    store: new MemoryStore(),
    emit() {},
    log: { info() {}, warn() {}, error() {} },
  });
  return (inst.request as RequestStage[])[0] as RequestStage;
}

/** A request to run: method, origin-form target, lower-case headers, optional body. */
export interface StageRequest {
  method: string;
  target: string;
  headers: Record<string, string>;
  body?: { contentType: string; bytes: Buffer };
}

/**
 * Runs one request through the stage in-process. Header values are handed over as Node's HTTP
 * parser does (UTF-8 bytes read as latin1); `content-type`/`content-length` come from the body.
 */
export async function runStage(stage: RequestStage, r: StageRequest): Promise<Outcome> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(r.headers)) headers[k] = Buffer.from(v, 'utf8').toString('latin1');
  if (r.body) {
    headers['content-type'] = r.body.contentType;
    headers['content-length'] = String(r.body.bytes.length);
  }
  const req = { headers, rawHeaders: Object.entries(headers).flat() } as unknown as IncomingMessage;
  const bytes = r.body?.bytes ?? Buffer.alloc(0);
  const ctx = new RequestContext(
    {
      id: 'b',
      req,
      method: r.method,
      target: r.target,
      clientIp: '127.0.0.1',
      peerIp: '127.0.0.1',
      scheme: 'https',
      host: 'api.example.com',
      apiName: 'benign',
      body: { buffered: bytes, read: async () => bytes },
      emit() {},
      signal: new AbortController().signal,
    },
    16 << 20,
  );
  try {
    const v = await stage.run(ctx);
    if (!v) return { blocked: false, status: 200, code: 'ok', hits: [] };
    const det = (v.details?.detections as Hit[] | undefined) ?? [];
    return { blocked: v.problem.status >= 400, status: v.problem.status, code: v.problem.code, hits: det };
  } catch (e) {
    if (e instanceof Problem) return { blocked: true, status: e.status, code: e.code, hits: [] };
    throw e;
  }
}

/**
 * The raw HTTP/1.1 bytes of `r` as a client would send them (`Host: api.example.com`, UTF-8 header
 * values, `Content-Type`/`Content-Length` from the body, `Connection: close`): the same request for
 * engines reached over TCP (nginx + ModSecurity + CRS, see ./modsec.ts).
 */
export function rawRequest(r: StageRequest): Buffer {
  const lines = [`${r.method} ${r.target} HTTP/1.1`];
  const headers: Record<string, string> = { host: 'api.example.com', ...r.headers };
  if (r.body) {
    headers['content-type'] = r.body.contentType;
    headers['content-length'] = String(r.body.bytes.length);
  }
  headers.connection = 'close';
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'utf8');
  return r.body ? Buffer.concat([head, r.body.bytes]) : head;
}

/** A free-text body: the text as the JSON string value `{"text": ...}` of a POST, like a user comment or ticket. */
export function textRequest(text: string): StageRequest {
  return {
    method: 'POST',
    target: '/comments',
    headers: { host: 'api.example.com', 'user-agent': 'benign-bench/1.0' },
    body: { contentType: 'application/json', bytes: Buffer.from(JSON.stringify({ text })) },
  };
}

/** One legitimate value the document states for a request field, and where it goes. */
export interface FieldValue {
  /** `query`, `path`, `header`, `cookie` or `body`. */
  in: string;
  /** Parameter or property name. */
  name: string;
  value: string;
  /** The operation it was found under. */
  operation: string;
}

/**
 * Every distinct string value the document states for a request field: all `enum` members, every
 * `example`/`examples`/`default`/`const` of parameters, of request-body schemas (properties at any
 * depth, `$ref`s followed) and the string leaves of media-type examples. Wider than
 * {@link extractRequests}, which sends one value per field.
 */
export function extractFieldValues(doc: Obj): FieldValue[] {
  const out: FieldValue[] = [];
  const seen = new Set<string>();
  const add = (where: string, name: string, v: unknown, operation: string): void => {
    if (typeof v !== 'string' || v === '') return;
    const key = `${where}\0${name}\0${v}`;
    if (seen.has(key)) return;
    seen.add(key);
    out.push({ in: where, name, value: v, operation });
  };
  const leaves = (where: string, name: string, v: unknown, operation: string, depth = 0): void => {
    if (depth > 32) return;
    if (Array.isArray(v)) for (const x of v) leaves(where, name, x, operation, depth + 1);
    else if (isObj(v)) for (const [k, x] of Object.entries(v)) leaves(where, k, x, operation, depth + 1);
    else add(where, name, v, operation);
  };
  const walkSchema = (where: string, name: string, schema: unknown, operation: string, stack: string[], depth: number): void => {
    if (depth > 16) return;
    if (isObj(schema) && typeof schema.$ref === 'string') {
      if (stack.includes(schema.$ref)) return;
      walkSchema(where, name, pointerGet(doc, schema.$ref), operation, [...stack, schema.$ref], depth + 1);
      return;
    }
    if (!isObj(schema) || schema.readOnly === true) return;
    for (const k of ['example', 'default', 'const'] as const) if (schema[k] !== undefined) leaves(where, name, schema[k], operation);
    for (const k of ['examples', 'enum'] as const) if (Array.isArray(schema[k])) for (const x of schema[k]) leaves(where, name, x, operation);
    for (const k of ['allOf', 'oneOf', 'anyOf'] as const)
      if (Array.isArray(schema[k])) for (const x of schema[k]) walkSchema(where, name, x, operation, stack, depth + 1);
    if (isObj(schema.properties)) for (const [k, p] of Object.entries(schema.properties)) walkSchema(where, k, p, operation, stack, depth + 1);
    if (schema.items !== undefined) walkSchema(where, name, schema.items, operation, stack, depth + 1);
    if (isObj(schema.additionalProperties)) walkSchema(where, name, schema.additionalProperties, operation, stack, depth + 1);
  };
  const paths = isObj(doc.paths) ? doc.paths : {};
  for (const [template, rawItem] of Object.entries(paths)) {
    const item = deref(doc, rawItem);
    if (!isObj(item)) continue;
    for (const method of METHODS) {
      const op = item[method];
      if (!isObj(op)) continue;
      const operation = `${method.toUpperCase()} ${template}`;
      for (const list of [item.parameters, op.parameters]) {
        if (!Array.isArray(list)) continue;
        for (const raw of list) {
          const p = deref(doc, raw);
          if (!isObj(p) || typeof p.name !== 'string' || typeof p.in !== 'string') continue;
          if (p.in === 'header' && IGNORED_HEADERS.has(p.name.toLowerCase())) continue;
          if (p.example !== undefined) leaves(p.in, p.name, p.example, operation);
          if (isObj(p.examples)) for (const ex of Object.values(p.examples)) leaves(p.in, p.name, (deref(doc, ex) as Obj | undefined)?.value, operation);
          walkSchema(p.in, p.name, p.schema, operation, [], 0);
        }
      }
      const rb = deref(doc, op.requestBody);
      if (!isObj(rb) || !isObj(rb.content)) continue;
      for (const rawMedia of Object.values(rb.content)) {
        const media = deref(doc, rawMedia);
        if (!isObj(media)) continue;
        if (media.example !== undefined) leaves('body', 'value', media.example, operation);
        if (isObj(media.examples))
          for (const ex of Object.values(media.examples)) leaves('body', 'value', (deref(doc, ex) as Obj | undefined)?.value, operation);
        walkSchema('body', 'value', media.schema, operation, [], 0);
      }
    }
  }
  return out;
}

/** A request carrying one field value where the document puts it (a body field as a JSON member). */
export function fieldRequest(f: Pick<FieldValue, 'in' | 'name' | 'value'>): StageRequest & { location: string } {
  const headers: Record<string, string> = { host: 'api.example.com', 'user-agent': 'benign-bench/1.0' };
  if (f.in === 'query') return { method: 'GET', target: `/items?${enc(f.name)}=${enc(f.value)}`, headers, location: `query:${f.name}` };
  if (f.in === 'path') return { method: 'GET', target: `/items/${enc(f.value)}`, headers, location: 'path:2' };
  if (f.in === 'header')
    return { method: 'GET', target: '/items', headers: { ...headers, [f.name.toLowerCase()]: f.value }, location: `header:${f.name.toLowerCase()}` };
  if (f.in === 'cookie') return { method: 'GET', target: '/items', headers: { ...headers, cookie: `${f.name}=${enc(f.value)}` }, location: `cookie:${f.name}` };
  return {
    method: 'POST',
    target: '/items',
    headers,
    body: { contentType: 'application/json', bytes: Buffer.from(JSON.stringify({ [f.name]: f.value })) },
    location: `body:${ptr([f.name])}`,
  };
}

/**
 * The shortest run of whole words of `text` that the stage still blocks as a free-text body
 * (greedy: words dropped from the front, then from the back, while the rest stays blocked). Shows
 * which words of a long description a detector reacts to. Returns `text` when it is not blocked.
 */
export async function minimalFragment(stage: RequestStage, text: string): Promise<string> {
  const blocked = async (t: string): Promise<boolean> => (await runStage(stage, textRequest(t))).blocked;
  if (!(await blocked(text))) return text;
  const words = text.split(/(?<=\s)/);
  let lo = 0;
  let hi = words.length;
  while (hi - lo > 1 && (await blocked(words.slice(lo + 1, hi).join('')))) lo++;
  while (hi - lo > 1 && (await blocked(words.slice(lo, hi - 1).join('')))) hi--;
  return words.slice(lo, hi).join('').trim();
}

export { fnv1a } from './corpus.ts';
