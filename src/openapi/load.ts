/**
 * Loading OpenAPI documents (3.0.x and 3.1.x; OpenAPI Specification §4.3 "Document Structure"):
 * YAML or JSON, from a file or an http(s) URL, with external `$ref`s bundled into the document
 * (`@apidevtools/json-schema-ref-parser` `bundle`), so everything downstream sees one document
 * whose references are all local (`#/...`).
 *
 * Shared by the `contract` and `authz` controls (neither imports the other). A module-level cache
 * keyed by the absolute source (and, for files, the modification time) lets both controls of one
 * API load a document once per configuration load.
 */
import { readFile, stat } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { bundle } from '@apidevtools/json-schema-ref-parser';
import { LineCounter, parseDocument } from 'yaml';

/** A parsed OpenAPI document with only local references. */
export interface LoadedDocument {
  /** Absolute file path or URL the document was read from. */
  source: string;
  /** `3.0` or `3.1`: selects the schema dialect (OpenAPI 3.0 Schema Object vs JSON Schema 2020-12). */
  version: '3.0' | '3.1';
  /** The exact `openapi` field, e.g. `3.0.3`. */
  openapi: string;
  /** The document (plain JSON values). */
  doc: Record<string, unknown>;
}

/**
 * A document that cannot be used. `message` reads `FILE: at POINTER: REASON` so that the
 * configuration error shows the file, the JSON pointer (RFC 6901) and the reason.
 */
export class OpenApiError extends Error {
  readonly source: string;
  /** JSON pointer into the document (`''` for the whole document). */
  readonly pointer: string;
  readonly reason: string;
  constructor(source: string, pointer: string, reason: string) {
    super(`${source}: at ${pointer === '' ? '(document)' : pointer}: ${reason}`);
    this.name = 'OpenApiError';
    this.source = source;
    this.pointer = pointer;
    this.reason = reason;
  }
}

/** Escapes one JSON-pointer token (RFC 6901 §3). */
export function ptrToken(s: string | number): string {
  return String(s).replace(/~/g, '~0').replace(/\//g, '~1');
}

/** Resolves a local reference `#/a/b` in `doc`; `undefined` when it does not exist. */
export function resolvePointer(doc: unknown, ref: string): unknown {
  if (ref === '#' || ref === '') return doc;
  if (!ref.startsWith('#/')) return undefined;
  let cur: unknown = doc;
  for (const raw of ref.slice(2).split('/')) {
    const tok = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[tok];
    if (cur === undefined) return undefined;
  }
  return cur;
}

function hasExternalRef(node: unknown, depth = 0): boolean {
  if (depth > 2000 || node === null || typeof node !== 'object') return false;
  if (Array.isArray(node)) return node.some((n) => hasExternalRef(n, depth + 1));
  for (const [k, v] of Object.entries(node)) {
    if (k === '$ref' && typeof v === 'string' && !v.startsWith('#')) return true;
    if (typeof v === 'object' && v !== null && hasExternalRef(v, depth + 1)) return true;
  }
  return false;
}

function parseText(text: string, source: string): unknown {
  const trimmed = text.trimStart();
  if (trimmed.startsWith('{')) {
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new OpenApiError(source, '', `invalid JSON: ${(e as Error).message}`);
    }
  }
  const lc = new LineCounter();
  const d = parseDocument(text, { lineCounter: lc, uniqueKeys: true });
  if (d.errors.length) {
    const e = d.errors[0] as { message: string; pos: [number, number] };
    const p = lc.linePos(e.pos[0]);
    throw new OpenApiError(source, '', `invalid YAML at line ${p.line}, column ${p.col}: ${e.message.split('\n')[0]}`);
  }
  return d.toJS({ maxAliasCount: 1000 });
}

async function readSource(source: string): Promise<string> {
  if (/^https?:\/\//i.test(source)) {
    const r = await fetch(source, { signal: AbortSignal.timeout(10_000), redirect: 'follow' });
    if (!r.ok) throw new OpenApiError(source, '', `HTTP ${r.status} fetching the document`);
    return await r.text();
  }
  try {
    return await readFile(source, 'utf8');
  } catch (e) {
    throw new OpenApiError(source, '', (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (e as Error).message);
  }
}

const cache = new Map<string, Promise<LoadedDocument>>();
const CACHE_MAX = 16;

/**
 * Resolves `location` (relative paths against `baseDir`) to an absolute file path or URL.
 */
export function resolveSource(location: string, baseDir: string): string {
  if (/^https?:\/\//i.test(location)) return location;
  return isAbsolute(location) ? location : resolve(baseDir, location);
}

/**
 * Loads, parses and bundles an OpenAPI 3.0/3.1 document.
 * @param location file path (relative to `baseDir`) or http(s) URL.
 * @returns the document; the same object for repeated loads of an unchanged file (callers must not mutate it).
 * @throws {OpenApiError} unreadable source, YAML/JSON syntax error (with line and column),
 *   unsupported `openapi` version, missing `paths`, or an unresolvable external `$ref`.
 */
export async function loadOpenApi(location: string, baseDir: string): Promise<LoadedDocument> {
  const source = resolveSource(location, baseDir);
  let key = source;
  if (!/^https?:/i.test(source)) {
    try {
      const s = await stat(source);
      key = `${source}\0${s.mtimeMs}\0${s.size}`;
    } catch {
      /* readSource reports it */
    }
  }
  let p = cache.get(key);
  if (p === undefined) {
    p = loadUncached(source);
    cache.set(key, p);
    if (cache.size > CACHE_MAX) cache.delete(cache.keys().next().value as string);
    p.catch(() => cache.delete(key));
  }
  return p;
}

async function loadUncached(source: string): Promise<LoadedDocument> {
  const text = await readSource(source);
  let doc = parseText(text, source);
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new OpenApiError(source, '', 'the document is not an object');
  const o = doc as Record<string, unknown>;
  if (typeof o.swagger === 'string') throw new OpenApiError(source, '/swagger', `Swagger ${o.swagger} is not supported; convert it to OpenAPI 3`);
  const openapi = o.openapi;
  if (typeof openapi !== 'string' || !/^3\.[01]\.\d+/.test(openapi)) {
    throw new OpenApiError(source, '/openapi', `unsupported or missing "openapi" version ${JSON.stringify(openapi)} (expected 3.0.x or 3.1.x)`);
  }
  if (o.paths === undefined && o.webhooks === undefined) throw new OpenApiError(source, '/paths', 'the document has no "paths"');
  if (o.paths !== undefined && (o.paths === null || typeof o.paths !== 'object')) throw new OpenApiError(source, '/paths', '"paths" must be an object');
  if (hasExternalRef(doc)) {
    try {
      doc = await bundle(source, doc as object, { resolve: { http: { timeout: 10_000 } } } as never);
    } catch (e) {
      const err = e as Error & { path?: string; source?: string };
      throw new OpenApiError(source, err.path ?? '', `cannot resolve an external $ref: ${err.message}`);
    }
  }
  return { source, version: openapi.startsWith('3.1') ? '3.1' : '3.0', openapi, doc: doc as Record<string, unknown> };
}
