/**
 * Small HTTP helpers shared by the `contract` and `authz` controls: decoding a buffered body by its
 * `Content-Encoding` (RFC 9110 §8.4) and per-request facts one stage publishes for later ones.
 */
import { promisify } from 'node:util';
import { brotliDecompress, gunzip, inflate } from 'node:zlib';

const gunzipP = promisify(gunzip);
const inflateP = promisify(inflate);
const brotliP = promisify(brotliDecompress);

/**
 * Decodes `buf` per its `Content-Encoding` (`gzip`, `x-gzip`, `deflate`, `br`, `identity`).
 * @param maxBytes bound on the decoded size (a decompression bomb fails instead of filling memory).
 * @returns the decoded bytes, or `undefined` for an unknown or stacked encoding.
 * @throws {Error} when the data is corrupt or decodes to more than `maxBytes`.
 */
export async function decodeBody(buf: Buffer, encoding: string | string[] | undefined, maxBytes: number): Promise<Buffer | undefined> {
  if (encoding === undefined) return buf;
  const enc = (Array.isArray(encoding) ? encoding.join(',') : encoding).trim().toLowerCase();
  if (enc === '' || enc === 'identity') return buf;
  const opts = { maxOutputLength: maxBytes };
  if (enc === 'gzip' || enc === 'x-gzip') return gunzipP(buf, opts);
  if (enc === 'deflate') return inflateP(buf, opts);
  if (enc === 'br') return brotliP(buf, opts);
  return undefined;
}

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
