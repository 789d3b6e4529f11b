/**
 * Compiling an OpenAPI document once at configuration load: the path-template router, every
 * operation with its merged parameters (path-item and operation level, OAS 3.1 §4.8.9.1), request
 * bodies per media type, responses per status code, and effective security requirements
 * (operation `security` or the document's, OAS 3.1 §4.8.10.1). With `validators`, every schema is
 * translated ({@link SchemaBuilder}) and compiled with Ajv (2020-12 dialect) and reused for every
 * request; without, compilation is cheap (routing and security only, as the `authz` control needs).
 */
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsImport from 'ajv-formats';
import { type LoadedDocument, OpenApiError, ptrToken, resolvePointer } from './load.ts';
import type { ParamIn, ParamSpec } from './params.ts';
import { Router } from './router.ts';
import { READONLY_KEYWORD, ROOT_ID, SchemaBuilder, type SchemaPolicy, WRITEONLY_KEYWORD } from './schema.ts';

// ajv-formats is CommonJS with `exports.default`.
const addFormats = ((addFormatsImport as unknown as { default?: unknown }).default ?? addFormatsImport) as (ajv: Ajv2020) => Ajv2020;

/** HTTP methods an OpenAPI Path Item can hold (OAS 3.1 §4.8.9.1). */
export const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

/** One security requirement: scheme name → required scopes (OAS 3.1 §4.8.30). All must hold. */
export type SecurityRequirement = Record<string, string[]>;

/** How a media type's body is handled. */
export type MediaKind = 'json' | 'form' | 'multipart' | 'other';

/** A request or response media type with its compiled validator. */
export interface CompiledMedia {
  /** Media range as documented, lower case, e.g. `application/json`, `application/*`. */
  range: string;
  kind: MediaKind;
  validate: ValidateFunction | undefined;
}

/** A documented response. */
export interface CompiledResponse {
  /** `200`, `2XX` or `default`. */
  status: string;
  media: CompiledMedia[];
}

/** A compiled operation. */
export interface CompiledOperation {
  /** `operationId`, or `METHOD template` when the document gives none. */
  id: string;
  method: string;
  template: string;
  /** JSON pointer of the Operation Object. */
  pointer: string;
  tags: string[];
  params: ParamSpec[];
  /** Validates `{path, query, header, cookie}` (header names lower case); coerces in place. */
  validateParams: ValidateFunction | undefined;
  /** Query names the operation declares (plus `apiKey` security schemes in the query). */
  queryNames: Set<string>;
  /** True when an exploded free-form object parameter may claim any query name. */
  openQuery: boolean;
  body: { required: boolean; media: CompiledMedia[] } | undefined;
  responses: CompiledResponse[];
  /** Effective security requirements (alternatives); `[]` = none declared. */
  security: SecurityRequirement[];
}

/** A compiled document. */
export interface CompiledDocument {
  loaded: LoadedDocument;
  router: Router<CompiledOperation>;
  operations: CompiledOperation[];
  byId: Map<string, CompiledOperation>;
  /** `components.securitySchemes` (resolved). */
  securitySchemes: Record<string, Record<string, unknown>>;
}

/** Options of {@link compileDocument}. */
export interface CompileOptions extends SchemaPolicy {
  /** Compile schema validators (false: routing and security only). */
  validators: boolean;
  /** Ajv `allErrors`: report every violation rather than the first. */
  allErrors?: boolean;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Follows `$ref`s of a non-schema object (Parameter, Request Body, Response). */
function follow(doc: unknown, v: unknown, source: string, pointer: string): { value: Record<string, unknown>; pointer: string } {
  let cur = v;
  let p = pointer;
  for (let i = 0; i < 16 && isObj(cur) && typeof cur.$ref === 'string'; i++) {
    const ref = cur.$ref;
    const t = resolvePointer(doc, ref);
    if (t === undefined) throw new OpenApiError(source, `${p}/$ref`, `unresolvable $ref "${ref}"`);
    cur = t;
    p = ref.slice(1);
  }
  if (!isObj(cur)) throw new OpenApiError(source, p, 'expected an object');
  return { value: cur, pointer: p };
}

/** Media kind of a media type or range. */
export function mediaKind(range: string): MediaKind {
  const r = range.toLowerCase();
  if (r === 'application/json' || r.endsWith('+json') || r === '*/*' || r === 'application/*' || /\/json\b/.test(r)) return 'json';
  if (r === 'application/x-www-form-urlencoded') return 'form';
  if (r.startsWith('multipart/')) return 'multipart';
  return 'other';
}

function newAjv(coerce: boolean, allErrors: boolean): Ajv2020 {
  const ajv = new Ajv2020({
    strict: false,
    allErrors,
    coerceTypes: coerce ? 'array' : false,
    useDefaults: false,
    validateSchema: false,
    validateFormats: true,
    inlineRefs: false,
    logger: false,
    unicodeRegExp: false,
    // Messages are built by formatError (smaller generated code, faster compile).
    messages: false,
    code: { optimize: false },
  });
  addFormats(ajv);
  // OpenAPI formats (OAS 3.0.3 §4.4 "Data Types").
  ajv.addFormat('int32', { type: 'number', validate: (n: number) => Number.isInteger(n) && n >= -2147483648 && n <= 2147483647 });
  ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isInteger(n) });
  ajv.addFormat('float', { type: 'number', validate: () => true });
  ajv.addFormat('double', { type: 'number', validate: () => true });
  ajv.addFormat('byte', /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/);
  for (const f of ['binary', 'password']) ajv.addFormat(f, () => true);
  ajv.addKeyword({ keyword: READONLY_KEYWORD, schemaType: 'boolean', validate: () => false });
  ajv.addKeyword({ keyword: WRITEONLY_KEYWORD, schemaType: 'boolean', validate: () => false });
  return ajv;
}

function shapeOf(doc: unknown, schema: unknown): { shape: ParamSpec['shape']; properties: string[]; open: boolean } {
  let s = schema;
  for (let i = 0; i < 16 && isObj(s) && typeof s.$ref === 'string'; i++) s = resolvePointer(doc, s.$ref);
  if (!isObj(s)) return { shape: 'primitive', properties: [], open: false };
  const t = Array.isArray(s.type) ? s.type.find((x) => x !== 'null') : s.type;
  if (t === 'array') return { shape: 'array', properties: [], open: false };
  if (t === 'object' || (t === undefined && isObj(s.properties))) {
    const properties = isObj(s.properties) ? Object.keys(s.properties) : [];
    const open = s.additionalProperties !== undefined && s.additionalProperties !== false;
    return { shape: 'object', properties, open: open || properties.length === 0 };
  }
  return { shape: 'primitive', properties: [], open: false };
}

/**
 * Compiles a loaded document.
 * @throws {OpenApiError} naming the JSON pointer and the reason: a malformed Path Item,
 *   Parameter, Request Body or Response, an unresolvable `$ref`, a schema Ajv cannot compile
 *   (e.g. an invalid `pattern`), or two equivalent path templates with the same method.
 */
export function compileDocument(loaded: LoadedDocument, opts: CompileOptions): CompiledDocument {
  const { doc, source } = loaded;
  const policy: SchemaPolicy = { closeRequest: opts.closeRequest, closeResponse: opts.closeResponse, rejectReadOnly: opts.rejectReadOnly };
  const bodyB = opts.validators ? new SchemaBuilder(doc, loaded.version, source, policy) : undefined;
  const paramB = opts.validators ? new SchemaBuilder(doc, loaded.version, source, policy) : undefined;
  const router = new Router<CompiledOperation>();
  const operations: CompiledOperation[] = [];
  const byId = new Map<string, CompiledOperation>();
  const pending: { op: CompiledOperation; set: (f: ValidateFunction) => void; key: string; body: boolean; pointer: string }[] = [];

  const components = isObj(doc.components) ? doc.components : {};
  const securitySchemes: Record<string, Record<string, unknown>> = {};
  if (isObj(components.securitySchemes)) {
    for (const [name, s] of Object.entries(components.securitySchemes)) {
      securitySchemes[name] = follow(doc, s, source, `/components/securitySchemes/${ptrToken(name)}`).value;
    }
  }
  const queryKeyNames: string[] = [];
  for (const s of Object.values(securitySchemes)) if (s.type === 'apiKey' && s.in === 'query' && typeof s.name === 'string') queryKeyNames.push(s.name);
  const rootSecurity = Array.isArray(doc.security) ? (doc.security as SecurityRequirement[]) : [];

  const paths = isObj(doc.paths) ? doc.paths : {};
  for (const [template, rawItem] of Object.entries(paths)) {
    const itemPtr = `/paths/${ptrToken(template)}`;
    const { value: item } = follow(doc, rawItem, source, itemPtr);
    const shared = Array.isArray(item.parameters) ? item.parameters : [];
    for (const m of HTTP_METHODS) {
      const rawOp = item[m];
      if (rawOp === undefined) continue;
      const opPtr = `${itemPtr}/${m}`;
      if (!isObj(rawOp)) throw new OpenApiError(source, opPtr, 'expected an Operation Object');
      const method = m.toUpperCase();
      let id = typeof rawOp.operationId === 'string' && rawOp.operationId !== '' ? rawOp.operationId : `${method} ${template}`;
      if (byId.has(id)) id = `${method} ${template}`;

      // Parameters: operation-level override path-item-level by (name, in).
      const merged = new Map<string, { value: Record<string, unknown>; pointer: string }>();
      shared.forEach((p, i) => {
        const f = follow(doc, p, source, `${itemPtr}/parameters/${i}`);
        merged.set(`${f.value.in}:${String(f.value.name).toLowerCase()}`, f);
      });
      if (Array.isArray(rawOp.parameters)) {
        rawOp.parameters.forEach((p, i) => {
          const f = follow(doc, p, source, `${opPtr}/parameters/${i}`);
          merged.set(`${f.value.in}:${String(f.value.name).toLowerCase()}`, f);
        });
      }
      const params: ParamSpec[] = [];
      const groups: Record<ParamIn, { properties: Record<string, unknown>; required: string[] }> = {
        path: { properties: {}, required: [] },
        query: { properties: {}, required: [] },
        header: { properties: {}, required: [] },
        cookie: { properties: {}, required: [] },
      };
      const queryNames = new Set<string>(queryKeyNames);
      let openQuery = false;
      for (const { value: p, pointer } of merged.values()) {
        const where = p.in;
        if (where !== 'path' && where !== 'query' && where !== 'header' && where !== 'cookie')
          throw new OpenApiError(source, `${pointer}/in`, `invalid parameter location ${JSON.stringify(where)}`);
        if (typeof p.name !== 'string' || p.name === '') throw new OpenApiError(source, `${pointer}/name`, 'a parameter needs a name');
        let schema: unknown = p.schema;
        let schemaPtr = `${pointer}/schema`;
        let contentType: string | undefined;
        if (schema === undefined && isObj(p.content)) {
          const [ct, media] = Object.entries(p.content)[0] ?? [];
          contentType = ct;
          schema = isObj(media) ? media.schema : undefined;
          schemaPtr = `${pointer}/content/${ptrToken(ct ?? '')}/schema`;
        }
        const sh = shapeOf(doc, schema);
        const defStyle = where === 'query' || where === 'cookie' ? 'form' : 'simple';
        const style = typeof p.style === 'string' ? p.style : defStyle;
        const spec: ParamSpec = {
          name: where === 'header' ? p.name.toLowerCase() : p.name,
          in: where,
          required: where === 'path' ? true : p.required === true,
          style,
          explode: typeof p.explode === 'boolean' ? p.explode : style === 'form',
          shape: sh.shape,
          properties: sh.properties,
          contentType,
          allowEmptyValue: p.allowEmptyValue === true,
        };
        params.push(spec);
        if (where === 'query') {
          if (spec.style === 'deepObject') {
            /* claims name[...] */
          } else if (spec.shape === 'object' && spec.explode && contentType === undefined) {
            for (const n of sh.properties) queryNames.add(n);
            if (sh.open) openQuery = true;
          } else queryNames.add(spec.name);
        }
        if (where === 'path' && !template.includes(`{${p.name}}`)) {
          throw new OpenApiError(source, `${pointer}/name`, `path parameter "${p.name}" does not appear in the template "${template}"`);
        }
        if (paramB && schema !== undefined) {
          const g = groups[where];
          g.properties[spec.name] = paramB.entry(schema, 'param', schemaPtr);
          if (spec.required) g.required.push(spec.name);
        } else if (spec.required) groups[where].required.push(spec.name);
      }

      const op: CompiledOperation = {
        id,
        method,
        template,
        pointer: opPtr,
        tags: Array.isArray(rawOp.tags) ? rawOp.tags.filter((t): t is string => typeof t === 'string') : [],
        params,
        validateParams: undefined,
        queryNames,
        openQuery,
        body: undefined,
        responses: [],
        security: Array.isArray(rawOp.security) ? (rawOp.security as SecurityRequirement[]) : rootSecurity,
      };

      if (paramB) {
        const props: Record<string, unknown> = {};
        for (const where of ['path', 'query', 'header', 'cookie'] as const) {
          const g = groups[where];
          const gp: Record<string, unknown> = {};
          for (const [n, key] of Object.entries(g.properties)) gp[n] = { $ref: `#/$defs/${key as string}` };
          props[where] = { type: 'object', properties: gp, ...(g.required.length ? { required: g.required } : {}) };
        }
        const key = paramB.raw({ type: 'object', properties: props });
        pending.push({ op, key, body: false, pointer: `${opPtr}/parameters`, set: (f) => (op.validateParams = f) });
      }

      if (rawOp.requestBody !== undefined) {
        const { value: rb, pointer: rbPtr } = follow(doc, rawOp.requestBody, source, `${opPtr}/requestBody`);
        const media: CompiledMedia[] = [];
        if (isObj(rb.content)) {
          for (const [range, m] of Object.entries(rb.content)) {
            const cm: CompiledMedia = { range: range.toLowerCase(), kind: mediaKind(range), validate: undefined };
            media.push(cm);
            const schema = isObj(m) ? m.schema : undefined;
            if (schema !== undefined && (cm.kind === 'json' || cm.kind === 'form') && bodyB && paramB) {
              const ptr = `${rbPtr}/content/${ptrToken(range)}/schema`;
              // Form bodies are strings on the wire: validated with coercion, like parameters.
              const b = cm.kind === 'json' ? bodyB : paramB;
              const key = b.entry(schema, 'req', ptr);
              pending.push({ op, key, body: cm.kind === 'json', pointer: ptr, set: (f) => (cm.validate = f) });
            }
          }
        }
        op.body = { required: rb.required === true, media };
      }

      if (isObj(rawOp.responses)) {
        for (const [status, r] of Object.entries(rawOp.responses)) {
          const { value: resp, pointer: rPtr } = follow(doc, r, source, `${opPtr}/responses/${ptrToken(status)}`);
          const media: CompiledMedia[] = [];
          if (isObj(resp.content)) {
            for (const [range, m] of Object.entries(resp.content)) {
              const cm: CompiledMedia = { range: range.toLowerCase(), kind: mediaKind(range), validate: undefined };
              media.push(cm);
              const schema = isObj(m) ? m.schema : undefined;
              if (schema !== undefined && cm.kind === 'json' && bodyB) {
                const ptr = `${rPtr}/content/${ptrToken(range)}/schema`;
                const key = bodyB.entry(schema, 'res', ptr);
                pending.push({ op, key, body: true, pointer: ptr, set: (f) => (cm.validate = f) });
              }
            }
          }
          op.responses.push({ status: status.toUpperCase(), media });
        }
      }

      try {
        router.add(template, method, op);
      } catch (e) {
        throw new OpenApiError(source, itemPtr, (e as Error).message);
      }
      operations.push(op);
      byId.set(id, op);
    }
  }

  if (bodyB && paramB) {
    const allErrors = opts.allErrors ?? true;
    const bodyAjv = newAjv(false, allErrors);
    const paramAjv = newAjv(true, allErrors);
    bodyAjv.addSchema(bodyB.root());
    paramAjv.addSchema(paramB.root());
    for (const p of pending) {
      const ajv = p.body ? bodyAjv : paramAjv;
      try {
        const f = ajv.getSchema(`${ROOT_ID}#/$defs/${p.key}`);
        if (f === undefined) throw new Error('schema not found');
        p.set(f);
      } catch (e) {
        throw new OpenApiError(source, p.pointer, `the schema cannot be compiled: ${(e as Error).message}`);
      }
    }
  }
  return { loaded, router, operations, byId, securitySchemes };
}

/**
 * Finds the documented media range for a request `Content-Type` (RFC 9110 §8.3.1): exact type,
 * then `type/*`, then `*∕*`; parameters (`; charset=utf-8`) are ignored.
 */
export function matchMedia(media: readonly CompiledMedia[], contentType: string | undefined): CompiledMedia | undefined {
  if (contentType === undefined) return undefined;
  const semi = contentType.indexOf(';');
  const essence = (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  let wildType: CompiledMedia | undefined;
  let wildAll: CompiledMedia | undefined;
  const slash = essence.indexOf('/');
  const type = slash === -1 ? essence : essence.slice(0, slash);
  for (const m of media) {
    if (m.range === essence) return m;
    if (m.range === `${type}/*`) wildType ??= m;
    else if (m.range === '*/*') wildAll ??= m;
  }
  return wildType ?? wildAll;
}

/** Finds the documented response for a status code: exact, then `2XX`-style range, then `default`. */
export function matchResponse(responses: readonly CompiledResponse[], status: number): CompiledResponse | undefined {
  const exact = String(status);
  const range = `${exact[0]}XX`;
  let r: CompiledResponse | undefined;
  let d: CompiledResponse | undefined;
  for (const x of responses) {
    if (x.status === exact) return x;
    if (x.status === range) r = x;
    else if (x.status === 'DEFAULT') d = x;
  }
  return r ?? d;
}

const routingCache = new WeakMap<LoadedDocument, CompiledDocument>();

/**
 * Routing and security only (no schema validators): {@link compileDocument} with
 * `validators: false`, compiled once per loaded document and shared by every caller in the
 * process. {@link loadOpenApi} returns the same {@link LoadedDocument} object while the file is
 * unchanged, so a configuration reload reuses the compiled router; a changed file compiles anew
 * (the old entry goes with its document: the cache is weakly keyed).
 * The result is shared: callers must not mutate it.
 * @throws {OpenApiError} as {@link compileDocument} (nothing is cached then).
 */
export function compileRouting(loaded: LoadedDocument): CompiledDocument {
  let c = routingCache.get(loaded);
  if (c === undefined) {
    c = compileDocument(loaded, { validators: false, closeRequest: false, closeResponse: false, rejectReadOnly: false });
    routingCache.set(loaded, c);
  }
  return c;
}
