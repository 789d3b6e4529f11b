/**
 * HTTP content codings (RFC 9110 §8.4.1), one module for every control that reads a coded body
 * (inspection of requests, contract and authz checks, DLP on responses): decode `gzip`, `deflate`
 * and `br` with a bound on the decoded size (decompression bombs), and encode back after a
 * response was rewritten. Runs on the libuv thread pool (async zlib), never blocking the event loop.
 */
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';

/** Content codings the gateway can decode. */
export type Coding = 'gzip' | 'deflate' | 'br';

const gunzip = promisify(zlib.gunzip);
const inflate = promisify(zlib.inflate);
const inflateRaw = promisify(zlib.inflateRaw);
const brotliDecompress = promisify(zlib.brotliDecompress);
const gzip = promisify(zlib.gzip);
const deflate = promisify(zlib.deflate);
const brotliCompress = promisify(zlib.brotliCompress);

/**
 * Parses a `Content-Encoding` value.
 * @returns `null` for identity (absent, empty or `identity`), the coding when supported, or
 * `undefined` for anything else (unknown codings, or several codings stacked).
 */
export function parseCoding(value: string | string[] | undefined): Coding | null | undefined {
  if (value === undefined) return null;
  const v = (Array.isArray(value) ? value.join(',') : value).trim().toLowerCase();
  if (v === '' || v === 'identity') return null;
  if (v === 'gzip' || v === 'x-gzip') return 'gzip';
  if (v === 'deflate') return 'deflate';
  if (v === 'br') return 'br';
  return undefined;
}

/** Thrown by {@link decode} when the decoded body would exceed the limit. */
export class DecodedTooLargeError extends Error {
  constructor(limit: number) {
    super(`decoded body exceeds ${limit} bytes`);
    this.name = 'DecodedTooLargeError';
  }
}

/** Thrown by {@link decode} when the coded data is corrupt or truncated; `partial` holds what decoded. */
export class CorruptEncodingError extends Error {
  readonly partial: Buffer;
  constructor(message: string, partial: Buffer) {
    super(message);
    this.name = 'CorruptEncodingError';
    this.partial = partial;
  }
}

function isTooLarge(e: unknown): boolean {
  return e instanceof RangeError || (e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE';
}

/**
 * Decodes `buf` coded with `coding`, producing at most `maxBytes` bytes. `deflate` accepts the
 * zlib format of RFC 9110 §8.4.1.2 and, as browsers do, raw DEFLATE (RFC 1951).
 * @throws {DecodedTooLargeError} when the output would exceed `maxBytes`.
 * @throws {CorruptEncodingError} when the data is corrupt or truncated (with the part that decoded).
 */
export async function decode(buf: Buffer, coding: Coding, maxBytes: number): Promise<Buffer> {
  const opts = { maxOutputLength: maxBytes };
  try {
    if (coding === 'gzip') return await gunzip(buf, opts);
    if (coding === 'br') return await brotliDecompress(buf, opts);
    try {
      return await inflate(buf, opts);
    } catch (e) {
      if (isTooLarge(e)) throw e;
      return await inflateRaw(buf, opts);
    }
  } catch (e) {
    if (isTooLarge(e)) throw new DecodedTooLargeError(maxBytes);
    // Recover what decodes before the damage, so it can be inspected (and never sent unscanned).
    let partial = Buffer.alloc(0);
    try {
      const flush = { maxOutputLength: maxBytes, finishFlush: coding === 'br' ? zlib.constants.BROTLI_OPERATION_FLUSH : zlib.constants.Z_SYNC_FLUSH };
      partial = coding === 'gzip' ? await gunzip(buf, flush) : coding === 'br' ? await brotliDecompress(buf, flush) : await inflate(buf, flush);
    } catch {
      // nothing decodable
    }
    throw new CorruptEncodingError((e as Error).message, partial);
  }
}

/**
 * Encodes `buf` with `coding` (gzip/deflate level 6; brotli quality 5, a speed/size balance for
 * responses, RFC 7932).
 */
export async function encode(buf: Buffer, coding: Coding): Promise<Buffer> {
  if (coding === 'gzip') return gzip(buf);
  if (coding === 'deflate') return deflate(buf);
  return brotliCompress(buf, {
    params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 5, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: buf.length },
  });
}

/**
 * A streaming decoder for `coding` (DLP's streaming path). `deflate` is the zlib format of
 * RFC 9110 §8.4.1.2 only here; corrupt or truncated data makes the stream error (the response
 * is then cut off, never sent undecoded).
 */
export function decoderFor(coding: Coding): zlib.Gunzip | zlib.Inflate | zlib.BrotliDecompress {
  if (coding === 'gzip') return zlib.createGunzip();
  if (coding === 'deflate') return zlib.createInflate();
  return zlib.createBrotliDecompress();
}

/** A streaming encoder for `coding` (gzip/deflate level 6, brotli quality 5 as {@link encode}). */
export function encoderFor(coding: Coding): zlib.Gzip | zlib.Deflate | zlib.BrotliCompress {
  if (coding === 'gzip') return zlib.createGzip();
  if (coding === 'deflate') return zlib.createDeflate();
  return zlib.createBrotliCompress({ params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 5 } });
}

/**
 * Decodes `buf` per its `Content-Encoding` header value (`gzip`, `x-gzip`, `deflate`, `br`,
 * `identity` or none).
 * @param maxBytes bound on the decoded size (a decompression bomb fails instead of filling memory).
 * @returns the decoded bytes (`buf` itself for identity), or `undefined` for an unknown or stacked coding.
 * @throws {DecodedTooLargeError} when the output would exceed `maxBytes`.
 * @throws {CorruptEncodingError} when the data is corrupt or truncated.
 */
export async function decodeBody(buf: Buffer, encoding: string | string[] | undefined, maxBytes: number): Promise<Buffer | undefined> {
  const coding = parseCoding(encoding);
  if (coding === null) return buf;
  if (coding === undefined) return undefined;
  return decode(buf, coding, maxBytes);
}
