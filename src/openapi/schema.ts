/**
 * Translating OpenAPI Schema Objects into JSON Schema 2020-12 for `ajv/dist/2020`, per direction.
 *
 * - OpenAPI 3.1 schemas are JSON Schema 2020-12 already (OAS 3.1 §4.8.24); OpenAPI 3.0 Schema
 *   Objects (OAS 3.0.3 §4.7.24) are translated: `nullable: true` adds `"null"` to `type` (and to
 *   `enum`; without `type` it allows `null` beside the schema), boolean `exclusiveMinimum` /
 *   `exclusiveMaximum` become the numeric 2020-12 keywords, and the siblings of a `$ref` are
 *   ignored (they are, in 3.0).
 * - Direction `req` (request bodies): a `readOnly` property is refused wherever it appears
 *   (OAS 3.0.3 §4.7.24.1 "SHOULD NOT be sent as part of the request") and dropped from `required`.
 * - Direction `res` (response bodies): a `writeOnly` property is marked so that the filter removes
 *   it, and dropped from `required`.
 * - "Closed" objects: a schema that declares its properties and says nothing of the others gets
 *   `unevaluatedProperties: false`, so undeclared properties are reported (requests: mass
 *   assignment, OWASP API3:2023; responses: excessive data exposure). Members of `allOf` stay
 *   open and the composing schema is closed instead, which is how `unevaluatedProperties` sees
 *   every member's properties (JSON Schema 2020-12 Core §11.3); alternatives of `anyOf`/`oneOf`
 *   each describe the whole value and are closed one by one.
 *   Free-form objects (`type: object` without `properties`, `additionalProperties: true`) stay open.
 *
 * All schemas of one Ajv instance live in one root schema (`$id` {@link ROOT_ID}) under `$defs`,
 * so each referenced component is compiled once and shared by every operation.
 */
import { OpenApiError, ptrToken, resolvePointer } from './load.ts';

/** `$id` of the root schema holding every translated schema. */
export const ROOT_ID = 'urn:rampart:openapi';

/** Keyword placed on a `readOnly` property in request schemas; always fails. */
export const READONLY_KEYWORD = 'x-rampart-readonly';
/** Keyword placed on a `writeOnly` property in response schemas; always fails (the filter strips it). */
export const WRITEONLY_KEYWORD = 'x-rampart-writeonly';

/** Request body, response body, or parameter. */
export type Direction = 'req' | 'res' | 'param';

/** What the translation enforces. */
export interface SchemaPolicy {
  /** Close declared objects in request bodies (mass-assignment protection). */
  closeRequest: boolean;
  /** Close declared objects in response bodies (response filtering). */
  closeResponse: boolean;
  /** Refuse `readOnly` properties in request bodies. */
  rejectReadOnly: boolean;
}

const DROP = new Set([
  'discriminator',
  'xml',
  'externalDocs',
  'example',
  'examples',
  'deprecated',
  '$id',
  '$schema',
  '$anchor',
  '$dynamicAnchor',
  '$comment',
  '$defs',
  'definitions',
  'nullable',
  'description',
  'title',
]);
const ANNOTATIONS = new Set(['description', 'summary', 'title', 'examples', 'example', 'deprecated', 'readOnly', 'writeOnly', 'default', '$comment']);

type Shape = 'declared' | 'free' | 'none';

/** Builds the `$defs` of one root schema. Not thread-safe; one per compile. */
export class SchemaBuilder {
  readonly defs: Record<string, unknown> = {};
  private readonly keys = new Map<string, string>();
  private n = 0;
  private readonly doc: unknown;
  private readonly v30: boolean;
  private readonly source: string;
  private readonly policy: SchemaPolicy;
  private readonly shapes = new Map<unknown, Shape>();
  private readonly entries: Record<Direction, WeakMap<object, string>> = { req: new WeakMap(), res: new WeakMap(), param: new WeakMap() };

  constructor(doc: unknown, version: '3.0' | '3.1', source: string, policy: SchemaPolicy) {
    this.doc = doc;
    this.v30 = version === '3.0';
    this.source = source;
    this.policy = policy;
  }

  /**
   * Adds a top-level schema (a parameter's, a body's) and returns its `$defs` key.
   * @param pointer JSON pointer of `node` in the document, for error messages.
   * @throws {OpenApiError} on an unresolvable `$ref` or a value that is not a schema.
   */
  entry(node: unknown, dir: Direction, pointer: string): string {
    const memo = node !== null && typeof node === 'object' ? this.entries[dir] : undefined;
    const known = memo?.get(node as object);
    if (known !== undefined) return known;
    const key = `e${this.n++}`;
    this.defs[key] = this.translate(node, dir, true, pointer);
    memo?.set(node as object, key);
    return key;
  }

  /** Adds an already translated schema (its `$ref`s point into `#/$defs`) and returns its key. */
  raw(schema: Record<string, unknown>): string {
    const key = `e${this.n++}`;
    this.defs[key] = schema;
    return key;
  }

  /** The root schema to add to Ajv. */
  root(): Record<string, unknown> {
    return { $id: ROOT_ID, $defs: this.defs };
  }

  private closes(dir: Direction): boolean {
    return dir === 'req' ? this.policy.closeRequest : dir === 'res' ? this.policy.closeResponse : false;
  }

  private refKey(ref: string, dir: Direction, closed: boolean, pointer: string): string {
    const c = closed && this.closes(dir);
    const k = `${dir}${c ? 'c' : 'o'}${ref}`;
    let key = this.keys.get(k);
    if (key !== undefined) return key;
    const target = resolvePointer(this.doc, ref);
    if (target === undefined) throw new OpenApiError(this.source, pointer, `unresolvable $ref "${ref}"`);
    key = `d${this.n++}`;
    this.keys.set(k, key);
    this.defs[key] = true;
    this.defs[key] = this.translate(target, dir, c, ref.slice(1));
    return key;
  }

  private deref(node: unknown, depth = 0): unknown {
    let cur = node;
    for (let i = 0; i < 16 && cur !== null && typeof cur === 'object' && typeof (cur as { $ref?: unknown }).$ref === 'string'; i++) {
      const t = resolvePointer(this.doc, (cur as { $ref: string }).$ref);
      if (t === undefined) return cur;
      cur = t;
    }
    return depth > 16 ? undefined : cur;
  }

  /** Whether a schema declares its object properties (closable), is free-form, or neither. */
  private shape(node: unknown, depth = 0): Shape {
    if (node === true) return 'free';
    if (node === null || typeof node !== 'object' || depth > 12) return 'none';
    const cached = this.shapes.get(node);
    if (cached !== undefined) return cached;
    this.shapes.set(node, 'none'); // cycle guard
    const o = node as Record<string, unknown>;
    let s: Shape = 'none';
    if (typeof o.$ref === 'string') {
      const t = resolvePointer(this.doc, o.$ref);
      s = this.shape(t, depth + 1);
      if (this.v30) {
        this.shapes.set(node, s);
        return s;
      }
    }
    const ap = o.additionalProperties ?? o.unevaluatedProperties;
    if ((ap !== undefined && ap !== false) || o.patternProperties !== undefined) s = 'free';
    else if (o.properties !== undefined && s === 'none') s = 'declared';
    else if (s === 'none' && (o.type === 'object' || (Array.isArray(o.type) && o.type.includes('object'))) && o.properties === undefined && ap === undefined) {
      const comp = (['allOf', 'anyOf', 'oneOf'] as const).some((k) => Array.isArray(o[k]));
      if (!comp) s = 'free';
    }
    for (const k of ['allOf', 'anyOf', 'oneOf'] as const) {
      const arr = o[k];
      if (!Array.isArray(arr)) continue;
      for (const m of arr) {
        const ms = this.shape(m, depth + 1);
        if (ms === 'free') s = 'free';
        else if (ms === 'declared' && s === 'none') s = 'declared';
      }
    }
    this.shapes.set(node, s);
    return s;
  }

  private flag(node: unknown, name: 'readOnly' | 'writeOnly'): boolean {
    if (node === null || typeof node !== 'object') return false;
    if ((node as Record<string, unknown>)[name] === true) return true;
    const t = this.deref(node);
    return t !== null && typeof t === 'object' && (t as Record<string, unknown>)[name] === true;
  }

  private translate(node: unknown, dir: Direction, closed: boolean, pointer: string): unknown {
    if (typeof node === 'boolean') return node;
    if (node === null || typeof node !== 'object' || Array.isArray(node)) {
      throw new OpenApiError(this.source, pointer, 'expected a Schema Object');
    }
    const o = node as Record<string, unknown>;
    if (o.$ref !== undefined) {
      if (typeof o.$ref !== 'string' || !o.$ref.startsWith('#'))
        throw new OpenApiError(this.source, `${pointer}/$ref`, `unsupported $ref ${JSON.stringify(o.$ref)}`);
      const onlyAnnotations = Object.keys(o).every((k) => k === '$ref' || ANNOTATIONS.has(k) || k.startsWith('x-'));
      if (this.v30 || onlyAnnotations) return { $ref: `#/$defs/${this.refKey(o.$ref, dir, closed, pointer)}` };
      // 3.1: `$ref` beside other keywords applies both (JSON Schema 2020-12 Core §8.2.3.1).
      const { $ref, ...rest } = o;
      const allOf = Array.isArray(rest.allOf) ? [{ $ref }, ...rest.allOf] : [{ $ref }];
      return this.translate({ ...rest, allOf }, dir, closed, pointer);
    }
    const out: Record<string, unknown> = {};
    let dropRequired: Set<string> | undefined;
    for (const k in o) {
      const v = o[k];
      if (DROP.has(k) || k.startsWith('x-')) continue;
      const p = `${pointer}/${ptrToken(k)}`;
      switch (k) {
        case 'properties': {
          if (v === null || typeof v !== 'object') throw new OpenApiError(this.source, p, '"properties" must be an object');
          const props: Record<string, unknown> = {};
          for (const name in v as Record<string, unknown>) {
            const ps = (v as Record<string, unknown>)[name];
            const pp = `${p}/${ptrToken(name)}`;
            if (dir === 'req' && this.policy.rejectReadOnly && this.flag(ps, 'readOnly')) {
              props[name] = { [READONLY_KEYWORD]: true };
              (dropRequired ??= new Set()).add(name);
            } else if (dir === 'res' && this.flag(ps, 'writeOnly')) {
              props[name] = { [WRITEONLY_KEYWORD]: true };
              (dropRequired ??= new Set()).add(name);
            } else {
              props[name] = this.translate(ps, dir, true, pp);
            }
          }
          out.properties = props;
          break;
        }
        case 'additionalProperties':
        case 'unevaluatedProperties':
        case 'additionalItems':
        case 'unevaluatedItems':
        case 'contains':
          out[k] = this.translate(v, dir, true, p);
          break;
        case 'items':
          if (Array.isArray(v)) out.prefixItems = v.map((s, i) => this.translate(s, dir, true, `${p}/${i}`));
          else out.items = this.translate(v, dir, true, p);
          break;
        case 'prefixItems':
          if (!Array.isArray(v)) throw new OpenApiError(this.source, p, '"prefixItems" must be an array');
          out.prefixItems = v.map((s, i) => this.translate(s, dir, true, `${p}/${i}`));
          break;
        case 'patternProperties':
        case 'dependentSchemas': {
          if (v === null || typeof v !== 'object') throw new OpenApiError(this.source, p, `"${k}" must be an object`);
          const m: Record<string, unknown> = {};
          for (const name in v as Record<string, unknown>)
            m[name] = this.translate((v as Record<string, unknown>)[name], dir, k === 'patternProperties', `${p}/${ptrToken(name)}`);
          out[k] = m;
          break;
        }
        case 'allOf':
          if (!Array.isArray(v)) throw new OpenApiError(this.source, p, `"${k}" must be an array`);
          out[k] = v.map((s, i) => this.translate(s, dir, false, `${p}/${i}`));
          break;
        case 'anyOf':
        case 'oneOf':
          // Alternatives each describe the whole object: close them one by one, unless the
          // schema itself declares properties next to them (then it is closed as a whole).
          if (!Array.isArray(v)) throw new OpenApiError(this.source, p, `"${k}" must be an array`);
          out[k] = v.map((s, i) => this.translate(s, dir, closed && o.properties === undefined && o.allOf === undefined, `${p}/${i}`));
          break;
        case 'not':
        case 'if':
        case 'then':
        case 'else':
        case 'propertyNames':
          out[k] = this.translate(v, dir, false, p);
          break;
        case 'exclusiveMinimum':
        case 'exclusiveMaximum':
          if (typeof v === 'boolean') {
            if (!this.v30) throw new OpenApiError(this.source, p, `boolean "${k}" is OpenAPI 3.0 syntax; in 3.1 it is a number`);
            const bound = k === 'exclusiveMinimum' ? 'minimum' : 'maximum';
            if (v && typeof o[bound] === 'number') out[k] = o[bound];
          } else out[k] = v;
          break;
        case 'minimum':
        case 'maximum': {
          const ex = o[k === 'minimum' ? 'exclusiveMinimum' : 'exclusiveMaximum'];
          if (!(this.v30 && ex === true)) out[k] = v;
          break;
        }
        case 'type':
          if (this.v30 && v === 'file') out.type = 'string';
          else out.type = v;
          break;
        default:
          out[k] = v;
      }
    }
    if (dropRequired !== undefined && Array.isArray(out.required)) {
      const req = (out.required as unknown[]).filter((r) => !dropRequired.has(r as string));
      if (req.length) out.required = req;
      else delete out.required;
    }
    if (
      closed &&
      this.closes(dir) &&
      (o.properties !== undefined || o.allOf !== undefined) &&
      out.additionalProperties === undefined &&
      out.unevaluatedProperties === undefined &&
      this.shape(o) === 'declared'
    ) {
      // Without in-place applicators, `additionalProperties` says the same and compiles to far less code.
      const inPlace =
        o.allOf !== undefined ||
        o.anyOf !== undefined ||
        o.oneOf !== undefined ||
        o.if !== undefined ||
        o.dependentSchemas !== undefined ||
        o.$ref !== undefined;
      if (inPlace) out.unevaluatedProperties = false;
      else out.additionalProperties = false;
    }
    if (this.v30 && o.nullable === true) {
      if (typeof out.type === 'string') {
        out.type = [out.type, 'null'];
        if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
      } else if (out.type === undefined) {
        return { anyOf: [out, { type: 'null' }] };
      }
    }
    return out;
  }
}
