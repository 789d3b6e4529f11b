/**
 * Contract violations: one entry per problem found in a request, with its location, listed in the
 * problem-details `errors` extension member (RFC 9457 §3.2). Values the client sent are never
 * echoed (they may be secrets); schema facts (limits, patterns, allowed values) are.
 */
import type { ErrorObject } from 'ajv';
import { READONLY_KEYWORD, WRITEONLY_KEYWORD } from '../../openapi/schema.ts';

/** Where a violation is. */
export type ViolationLocation = 'path' | 'query' | 'header' | 'cookie' | 'body';

/**
 * Kind of a violation: `undeclared` (a parameter or property the document does not declare),
 * `read-only` (a `readOnly` property sent in a request), `missing` (a required parameter, body or
 * property), `invalid` (type, format, pattern, enum, range...), `malformed` (cannot be parsed).
 */
export type ViolationKind = 'undeclared' | 'read-only' | 'missing' | 'invalid' | 'malformed';

/** One violation. */
export interface Violation {
  location: ViolationLocation;
  kind: ViolationKind;
  /** Parameter name (parameters). */
  name?: string;
  /** JSON pointer (RFC 6901) into the parameter value or the body. */
  pointer?: string;
  /** JSON Schema keyword that failed, when any. */
  keyword?: string;
  message: string;
}

/** Maximum violations listed in one problem. */
export const MAX_VIOLATIONS = 50;

function esc(s: string): string {
  return s.replace(/~/g, '~0').replace(/\//g, '~1');
}

function list(v: unknown): string {
  const a = Array.isArray(v) ? v : [v];
  const s = a
    .slice(0, 10)
    .map((x) => JSON.stringify(x))
    .join(', ');
  return a.length > 10 ? `${s}, ...` : s;
}

/** A human-readable message for an Ajv error (Ajv's own messages are off: smaller generated code). */
export function messageOf(e: ErrorObject): string {
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'type':
      return `must be of type ${Array.isArray(p.type) ? p.type.join(' or ') : String(p.type)}`;
    case 'required':
      return 'is required';
    case 'enum':
      return `must be one of ${list(p.allowedValues)}`;
    case 'const':
      return `must be ${JSON.stringify(p.allowedValue)}`;
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return `must be ${String(p.comparison)} ${String(p.limit)}`;
    case 'multipleOf':
      return `must be a multiple of ${String(p.multipleOf)}`;
    case 'minLength':
      return `must have at least ${String(p.limit)} characters`;
    case 'maxLength':
      return `must have at most ${String(p.limit)} characters`;
    case 'minItems':
      return `must have at least ${String(p.limit)} items`;
    case 'maxItems':
      return `must have at most ${String(p.limit)} items`;
    case 'minProperties':
      return `must have at least ${String(p.limit)} properties`;
    case 'maxProperties':
      return `must have at most ${String(p.limit)} properties`;
    case 'uniqueItems':
      return 'must not contain duplicate items';
    case 'pattern':
      return `must match the pattern ${JSON.stringify(p.pattern)}`;
    case 'format':
      return `must be a valid ${String(p.format)}`;
    case 'additionalProperties':
    case 'unevaluatedProperties':
      return 'is not declared in the schema';
    case 'anyOf':
      return 'must match at least one of the allowed schemas';
    case 'oneOf':
      return 'must match exactly one of the allowed schemas';
    case 'not':
      return 'must not match the excluded schema';
    case 'false schema':
      return 'is not allowed';
    case READONLY_KEYWORD:
      return 'is read-only and cannot be sent in a request';
    case WRITEONLY_KEYWORD:
      return 'is write-only';
    default:
      return `fails the "${e.keyword}" rule`;
  }
}

/**
 * Drops the errors of the alternatives of a failed `anyOf`/`oneOf` (Ajv reports them just before
 * the combinator's own error), keeping the combinator's error: the client gets one line per place.
 */
export function pruneAlternatives(errors: readonly ErrorObject[]): ErrorObject[] {
  const out: ErrorObject[] = [];
  for (const e of errors) {
    if (e.keyword === 'anyOf' || e.keyword === 'oneOf') {
      const base = e.instancePath;
      while (out.length) {
        const last = out[out.length - 1] as ErrorObject;
        if (last.instancePath === base || last.instancePath.startsWith(`${base}/`)) out.pop();
        else break;
      }
    }
    out.push(e);
  }
  return out;
}

/** The JSON pointer an error is about (the undeclared or missing property included). */
export function pointerOf(e: ErrorObject): string {
  const p = e.params as Record<string, unknown>;
  if (e.keyword === 'additionalProperties') return `${e.instancePath}/${esc(String(p.additionalProperty))}`;
  if (e.keyword === 'unevaluatedProperties') return `${e.instancePath}/${esc(String(p.unevaluatedProperty))}`;
  if (e.keyword === 'required') return `${e.instancePath}/${esc(String(p.missingProperty))}`;
  return e.instancePath;
}

function kindOf(e: ErrorObject): ViolationKind {
  if (e.keyword === 'additionalProperties' || e.keyword === 'unevaluatedProperties') return 'undeclared';
  if (e.keyword === READONLY_KEYWORD) return 'read-only';
  if (e.keyword === 'required') return 'missing';
  return 'invalid';
}

/** Violations of a request body from Ajv errors. */
export function bodyViolations(errors: readonly ErrorObject[]): Violation[] {
  return pruneAlternatives(errors)
    .slice(0, MAX_VIOLATIONS)
    .map((e) => ({ location: 'body', kind: kindOf(e), pointer: pointerOf(e), keyword: e.keyword, message: messageOf(e) }));
}

/**
 * Violations of the parameters from Ajv errors on `{path, query, header, cookie}`:
 * `/query/limit` becomes location `query`, name `limit`.
 */
export function paramViolations(errors: readonly ErrorObject[]): Violation[] {
  const out: Violation[] = [];
  for (const e of pruneAlternatives(errors)) {
    const ptr = pointerOf(e);
    const parts = ptr.split('/');
    const location = parts[1] as ViolationLocation;
    const name = parts[2]?.replace(/~1/g, '/').replace(/~0/g, '~');
    const rest = parts.slice(3).join('/');
    const v: Violation = { location, kind: kindOf(e), name, keyword: e.keyword, message: messageOf(e) };
    if (rest !== '') v.pointer = `/${rest}`;
    out.push(v);
    if (out.length >= MAX_VIOLATIONS) break;
  }
  return out;
}
