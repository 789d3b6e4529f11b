/**
 * The inspection stage without a gateway, for unit tests: a stage built from a configuration, and a
 * runner that hands it one request over a constructed RequestContext (headers as Node parses them,
 * a buffered body that counts its reads, events captured).
 */
import type { IncomingMessage } from 'node:http';
import { inspectionControl } from '../../src/controls/inspection/index.ts';
import type { EventInput } from '../../src/events/event.ts';
import { RequestContext } from '../../src/pipeline/context.ts';
import type { RequestStage } from '../../src/pipeline/stage.ts';
import type { Rejection } from '../../src/pipeline/verdict.ts';
import { MemoryStore } from '../../src/state/memory.ts';

/** One request for {@link runInspection}; the method defaults to GET without a body, POST with one. */
export interface InspectionRequest {
  method?: string;
  target?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** The request's body cap in bytes (default 1 MiB). */
  maxBodyBytes?: number;
}

/** The inspection control's request stage for `config` (the control's schema input). */
export async function inspectionStage(config: unknown = {}): Promise<RequestStage> {
  const inst = await inspectionControl.create(inspectionControl.schema.parse(config), {
    apiName: 'api',
    configDir: '.',
    store: new MemoryStore(),
    emit() {},
    log: { info() {}, warn() {}, error() {} },
  });
  return (inst.request as RequestStage[])[0] as RequestStage;
}

/**
 * Runs `stage` on one request. `Host: api.test` and `Content-Length` are added; a read beyond the
 * reader's `max` throws as the gateway's bounded body does.
 * @returns the verdict, the events the stage emitted and how often it read the body.
 */
export async function runInspection(stage: RequestStage, r: InspectionRequest): Promise<{ v: Rejection | undefined; events: EventInput[]; reads: number }> {
  const body = r.body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(r.body) ? r.body : Buffer.from(r.body);
  const headers: Record<string, string> = { host: 'api.test', ...(r.body !== undefined ? { 'content-length': String(body.length) } : {}), ...r.headers };
  const events: EventInput[] = [];
  let reads = 0;
  const access = {
    buffered: undefined as Buffer | undefined,
    async read(max?: number) {
      reads++;
      if (max !== undefined && body.length > max) throw new Error('too large');
      access.buffered = body;
      return body;
    },
  };
  const req = { headers, rawHeaders: Object.entries(headers).flat() } as unknown as IncomingMessage;
  const ctx = new RequestContext(
    {
      id: 'r1',
      req,
      method: r.method ?? (r.body === undefined ? 'GET' : 'POST'),
      target: r.target ?? '/',
      clientIp: '127.0.0.1',
      peerIp: '127.0.0.1',
      scheme: 'http',
      host: 'api.test',
      apiName: 'api',
      body: access,
      emit: (e) => events.push(e),
      signal: new AbortController().signal,
    },
    r.maxBodyBytes ?? 1024 * 1024,
  );
  const v = (await stage.run(ctx)) as Rejection | undefined;
  return { v, events, reads };
}
