/**
 * Request and response body plumbing: bounded buffering of request bodies for stages that ask
 * for them, a byte-counting stream for the ones that do not, and the ResponseState that
 * response stages operate on.
 */
import type { IncomingMessage } from 'node:http';
import { pipeline, Readable, type Transform } from 'node:stream';
import type { BodyAccess } from '../pipeline/context.ts';
import { Problem } from '../pipeline/problem.ts';
import type { ResponseState } from '../pipeline/stage.ts';

/** 413 `body-too-large`: the body exceeded `limit` bytes (counted on the bytes received). */
export function bodyTooLarge(limit: number): Problem {
  return new Problem(413, 'body-too-large', 'Content Too Large', { detail: `The request body exceeds ${limit} bytes.` });
}

/** Thrown inside the streaming body when the cap is exceeded; mapped to 413 by the handler. */
export class BodyLimitExceeded extends Error {
  readonly limit: number;
  constructor(limit: number) {
    super(`request body exceeds ${limit} bytes`);
    this.limit = limit;
  }
}

/**
 * Marks a response whose request carried `Expect: 100-continue` and has not been told to send its
 * body yet. The listeners take over Node's automatic `100 Continue` (the `checkContinue` event)
 * so the pipeline can refuse first: a request denied by any stage (401, 403, 413 on a declared
 * `Content-Length`, ...) gets its final status without the client ever sending the body
 * (RFC 9110 §10.1.1). The interim response is sent when the body is first read.
 */
export const CONTINUE_PENDING: unique symbol = Symbol('rampart.continuePending');

/** A response that may owe the client a `100 Continue`. */
export interface ContinueCapable {
  [CONTINUE_PENDING]?: boolean;
  writeContinue(): void;
}

/** Sends the owed `100 Continue`, once; a no-op for requests that did not ask for one. */
export function sendContinue(res: ContinueCapable): void {
  if (res[CONTINUE_PENDING] !== true) return;
  res[CONTINUE_PENDING] = false;
  try {
    res.writeContinue();
  } catch {
    /* the client went away; reading the body will fail and say so */
  }
}

/** Counts request body bytes; `exceeded` is set when the cap was hit. */
export interface BodyMeter {
  bytes: number;
  exceeded: boolean;
}

/** Streams `req` as an async iterable, counting bytes and failing past `cap` bytes. */
export async function* meteredBody(req: AsyncIterable<Buffer>, cap: number, meter: BodyMeter): AsyncGenerator<Buffer> {
  for await (const chunk of req) {
    meter.bytes += chunk.length;
    if (meter.bytes > cap) {
      meter.exceeded = true;
      throw new BodyLimitExceeded(cap);
    }
    yield chunk;
  }
}

/** BodyAccess over an incoming request: reads once, bounded by the smaller of `maxBytes` and `cap()`. */
export class RequestBody implements BodyAccess {
  buffered: Buffer | undefined;
  private pending: Promise<Buffer> | undefined;
  private readonly req: IncomingMessage;
  private readonly cap: () => number;
  private readonly beforeRead: (() => void) | undefined;
  readonly meter: BodyMeter;

  /** @param beforeRead called once before the first byte is read (sends an owed `100 Continue`). */
  constructor(req: IncomingMessage, cap: () => number, meter: BodyMeter, beforeRead?: () => void) {
    this.req = req;
    this.cap = cap;
    this.meter = meter;
    this.beforeRead = beforeRead;
  }

  read(maxBytes = Number.POSITIVE_INFINITY): Promise<Buffer> {
    if (this.pending === undefined) this.beforeRead?.();
    this.pending ??= this.readAll(Math.min(maxBytes, this.cap()));
    return this.pending;
  }

  private async readAll(limit: number): Promise<Buffer> {
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of meteredBody(this.req, limit, this.meter)) chunks.push(chunk);
    } catch (e) {
      if (e instanceof BodyLimitExceeded) throw bodyTooLarge(limit);
      throw new Problem(400, 'body-incomplete', 'Bad Request', { detail: 'The request body could not be read completely.' });
    }
    if (!this.req.complete) throw new Problem(400, 'body-incomplete', 'Bad Request', { detail: 'The request body could not be read completely.' });
    this.buffered = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
    return this.buffered;
  }
}

/** The upstream response under the response stages. */
export class UpstreamResponse implements ResponseState {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  private stream: Readable;
  /** Set when a stage replaced the body with a buffer (sent with one write). */
  buffer: Buffer | undefined;

  constructor(status: number, headers: Record<string, string | string[] | undefined>, body: Readable) {
    this.status = status;
    this.headers = headers;
    this.stream = body;
  }

  get body(): Readable {
    if (this.buffer !== undefined) {
      this.stream = Readable.from([this.buffer]);
      this.buffer = undefined;
    }
    return this.stream;
  }

  async readBody(maxBytes: number): Promise<Buffer | undefined> {
    if (this.buffer !== undefined) return this.buffer.length <= maxBytes ? this.buffer : undefined;
    const cl = this.headers['content-length'];
    if (typeof cl === 'string' && Number(cl) > maxBytes) return undefined;
    const src = this.stream;
    const it = src[Symbol.asyncIterator]();
    const chunks: Buffer[] = [];
    let n = 0;
    for (;;) {
      const r = await it.next();
      if (r.done) break;
      const c = r.value as Buffer;
      chunks.push(c);
      n += c.length;
      if (n > maxBytes) {
        this.stream = Readable.from(
          (async function* () {
            yield* chunks;
            for (;;) {
              const x = await it.next();
              if (x.done) return;
              yield x.value as Buffer;
            }
          })(),
          { objectMode: false },
        );
        return undefined;
      }
    }
    const buf = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
    this.setBody(buf);
    return buf;
  }

  setBody(buf: Buffer): void {
    this.buffer = buf;
    this.headers['content-length'] = String(buf.length);
    delete this.headers['transfer-encoding'];
  }

  pipeThrough(transform: Transform): void {
    const src = this.body;
    this.stream = pipeline(src, transform, () => {});
    delete this.headers['content-length'];
  }
}
