/** Builds abuse stages and request contexts for unit tests (no HTTP server needed). */
import type { IncomingMessage } from 'node:http';
import type { EventInput } from '../../../src/events/event.ts';
import { abuseControl, abuseSchema } from '../../../src/controls/abuse/index.ts';
import { RequestContext, type Identity } from '../../../src/pipeline/context.ts';
import type { ControlInstance } from '../../../src/pipeline/control.ts';
import type { RequestStage } from '../../../src/pipeline/stage.ts';
import type { Rejection } from '../../../src/pipeline/verdict.ts';
import type { Store } from '../../../src/state/store.ts';

export interface Built {
  instance: ControlInstance;
  stages: RequestStage[];
  events: EventInput[];
  /** Runs every stage in order like the gateway; returns the first rejection. */
  run(ctx: RequestContext): Promise<(Rejection & { quiet?: boolean }) | undefined>;
  /** Calls every stage's done hook, like the gateway at the end of a request. */
  done(ctx: RequestContext, aborted?: boolean): void;
}

export async function build(config: unknown, store: Store, apiName = 'api'): Promise<Built> {
  const events: EventInput[] = [];
  const cfg = abuseSchema.parse(config);
  const instance = await abuseControl.create(cfg, {
    apiName,
    configDir: '.',
    store,
    emit: (e) => events.push(e),
    log: { info() {}, warn() {}, error() {} },
  });
  const stages = instance.request ?? [];
  return {
    instance,
    stages,
    events,
    async run(ctx) {
      for (const s of stages) {
        const v = await s.run(ctx);
        if (v !== undefined) return v;
      }
      return undefined;
    },
    done(ctx, aborted = false) {
      for (const s of stages) s.done?.(ctx, { status: 200, aborted, bytesIn: 0, bytesOut: 0 });
    },
  };
}

export interface CtxOptions {
  method?: string;
  target?: string;
  ip?: string;
  headers?: Record<string, string>;
  identity?: Partial<Identity> & { subject: string };
  operation?: string;
  signal?: AbortSignal;
  events?: EventInput[];
}

let n = 0;
export function makeCtx(o: CtxOptions = {}): RequestContext {
  const headers = { host: 'api.test', ...(o.headers ?? {}) };
  const rawHeaders = Object.entries(headers).flat();
  const req = { headers, rawHeaders } as unknown as IncomingMessage;
  const ctx = new RequestContext(
    {
      id: `req-${++n}`,
      req,
      method: o.method ?? 'GET',
      target: o.target ?? '/items',
      clientIp: o.ip ?? '192.0.2.1',
      peerIp: o.ip ?? '192.0.2.1',
      scheme: 'http',
      host: 'api.test',
      apiName: 'api',
      body: { read: async () => Buffer.alloc(0), buffered: undefined },
      emit: (e) => o.events?.push(e),
      signal: o.signal ?? new AbortController().signal,
    },
    1 << 20,
  );
  if (o.identity) ctx.identity = { scopes: [], methods: ['jwt'], claims: {}, ...o.identity };
  if (o.operation) ctx.operation = { id: o.operation, template: ctx.path, params: {} };
  return ctx;
}
