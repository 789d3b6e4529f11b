/**
 * Test helpers for the contract and authz controls: a RequestContext over a fixed body, a real
 * UpstreamResponse, and a ControlEnv with a MemoryStore that collects events.
 */
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import type { EventInput } from '../../../src/events/event.ts';
import { UpstreamResponse } from '../../../src/gateway/body.ts';
import { RequestContext } from '../../../src/pipeline/context.ts';
import type { ControlEnv } from '../../../src/pipeline/control.ts';
import { MemoryStore } from '../../../src/state/memory.ts';

let n = 0;

/** A context with its emitted events. */
export type TestCtx = RequestContext & { events: EventInput[] };

/** Builds a RequestContext; `body` (when given) is what `ctx.body.read()` returns, and sets `content-length`. */
export function makeCtx(method: string, target: string, opts: { headers?: Record<string, string>; body?: string | Buffer; clientIp?: string } = {}): TestCtx {
  const headers: Record<string, string> = { host: 'localhost', ...(opts.headers ?? {}) };
  const body = opts.body === undefined ? undefined : Buffer.from(opts.body);
  if (body !== undefined && headers['content-length'] === undefined) headers['content-length'] = String(body.length);
  const rawHeaders: string[] = [];
  for (const [k, v] of Object.entries(headers)) rawHeaders.push(k, v);
  const req = { headers, rawHeaders, method, url: target } as unknown as IncomingMessage;
  const events: EventInput[] = [];
  let buffered: Buffer | undefined;
  const ctx = new RequestContext(
    {
      id: `req-${++n}`,
      req,
      method,
      target,
      clientIp: opts.clientIp ?? '127.0.0.1',
      peerIp: '127.0.0.1',
      scheme: 'http',
      host: 'localhost',
      apiName: 'demo',
      body: {
        read: async () => (buffered = body ?? Buffer.alloc(0)),
        get buffered() {
          return buffered;
        },
      },
      emit: (e) => events.push(e),
      signal: new AbortController().signal,
    },
    1024 * 1024,
  );
  return Object.assign(ctx, { events });
}

/** A real UpstreamResponse over a JSON (or raw) body. */
export function makeResponse(status: number, body: unknown, headers: Record<string, string> = {}): UpstreamResponse {
  const buf = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  return new UpstreamResponse(status, { 'content-type': 'application/json', 'content-length': String(buf.length), ...headers }, Readable.from([buf]));
}

/** Reads a response's current body as text. */
export async function bodyText(res: UpstreamResponse): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res.body) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** A ControlEnv over a MemoryStore; control-level events are collected. */
export function makeEnv(configDir = process.cwd()): ControlEnv & { events: EventInput[]; store: MemoryStore } {
  const events: EventInput[] = [];
  const store = new MemoryStore({ maxKeys: 10000 });
  return {
    apiName: 'demo',
    configDir,
    store,
    events,
    emit: (e) => events.push(e),
    log: { info() {}, warn() {}, error() {} },
  };
}
