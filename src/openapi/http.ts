/**
 * Small HTTP helpers shared by the `contract` and `authz` controls: decoding a buffered body by its
 * `Content-Encoding` (RFC 9110 §8.4, from ../http/coding.ts) and per-request facts one stage
 * publishes for later ones.
 */
export { decodeBody } from '../http/coding.ts';

/** Whether a `Content-Type` value is JSON (`application/json` or a `+json` suffix, RFC 6839 §3.1). */
export function isJsonType(ct: string | string[] | undefined): boolean {
  if (typeof ct !== 'string') return false;
  const semi = ct.indexOf(';');
  const e = (semi === -1 ? ct : ct.slice(0, semi)).trim().toLowerCase();
  return e === 'application/json' || e.endsWith('+json');
}

/** What the contract stage learned about a request, for later stages (keyed by the RequestContext). */
export interface RequestFacts {
  /** Parameters after deserialization and type coercion: `{path, query, header, cookie}`. */
  params?: Record<string, Record<string, unknown>>;
  /** The parsed body (JSON or form), when the operation has one. */
  body?: unknown;
}

/** The parsed JSON of a response body, for later response stages; valid while `buf` is the body. */
export interface ResponseFacts {
  buf: Buffer;
  json: unknown;
}

/** Request facts published by the contract stage; weakly keyed so nothing outlives its request. */
export const requestFacts = new WeakMap<object, RequestFacts>();
/** Response facts published by the contract response stage. */
export const responseFacts = new WeakMap<object, ResponseFacts>();
