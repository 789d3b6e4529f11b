/**
 * Test utilities for the identity control: request contexts built from real `IncomingMessage`-like
 * header sets, a ControlEnv with a real MemoryStore, and a static JWKS server.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { EventInput } from '../../../src/events/event.ts';
import { RequestContext } from '../../../src/pipeline/context.ts';
import type { ControlEnv } from '../../../src/pipeline/control.ts';
import type { Rejection } from '../../../src/pipeline/verdict.ts';
import { createIdentity, identitySchema, type IdentityConfigInput, type IdentityEngine } from '../../../src/controls/identity/index.ts';
import { MemoryStore } from '../../../src/state/memory.ts';

let n = 0;

/** A RequestContext for `headers` (lower-case names) and `target`. */
export function makeCtx(headers: Record<string, string | string[]> = {}, target = '/orders', method = 'GET', apiName = 'orders'): RequestContext {
  const rawHeaders: string[] = [];
  for (const [k, v] of Object.entries(headers)) for (const x of Array.isArray(v) ? v : [v]) rawHeaders.push(k, x);
  const req = { headers, rawHeaders, method, url: target } as unknown as IncomingMessage;
  return new RequestContext(
    {
      id: `req-${++n}`,
      req,
      method,
      target,
      clientIp: '127.0.0.1',
      peerIp: '127.0.0.1',
      scheme: 'http',
      host: 'localhost',
      apiName,
      body: { read: async () => Buffer.alloc(0), buffered: undefined },
      emit: () => {},
      signal: new AbortController().signal,
    },
    1024 * 1024,
  );
}

/** A ControlEnv with a MemoryStore; control-level events and warnings are collected. */
export function makeEnv(apiName = 'orders', configDir = process.cwd()): ControlEnv & { events: EventInput[]; warnings: string[]; store: MemoryStore } {
  const events: EventInput[] = [];
  const warnings: string[] = [];
  const store = new MemoryStore();
  return {
    apiName,
    configDir,
    store,
    events,
    warnings,
    emit: (e) => events.push(e),
    log: { info: () => {}, warn: (m) => warnings.push(m), error: (m) => warnings.push(m) },
  };
}

/** Parses `input` with the control's schema and builds the engine. */
export async function engine(input: IdentityConfigInput, env = makeEnv()): Promise<IdentityEngine & { env: ReturnType<typeof makeEnv> }> {
  const e = await createIdentity(identitySchema.parse(input), env);
  return Object.assign(e, { env });
}

/** Runs the engine on a bearer token (or explicit headers) and returns the rejection, if any. */
export async function runWith(
  e: IdentityEngine,
  headers: Record<string, string | string[]>,
  target = '/orders',
): Promise<{ ctx: RequestContext; rejection: Rejection | undefined }> {
  const ctx = makeCtx(headers, target);
  const rejection = await e.run(ctx);
  return { ctx, rejection };
}

/** `Authorization: Bearer <token>`. */
export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

/** A server publishing a mutable JWK Set at `/jwks`, counting hits. */
export interface JwksServer {
  url: string;
  jwksUri: string;
  keys: Record<string, unknown>[];
  hits: number;
  /** Answer 503 while true. */
  down: boolean;
  /** Requests seen on any other path (must stay empty: e.g. a `jku` the token names). */
  otherPaths: string[];
  close(): Promise<void>;
}

/** Starts a static JWKS server on 127.0.0.1:0. */
export async function startJwksServer(keys: Record<string, unknown>[]): Promise<JwksServer> {
  const state: JwksServer = {
    url: '',
    jwksUri: '',
    keys,
    hits: 0,
    down: false,
    otherPaths: [],
    close: async () => {},
  };
  const server: Server = createServer((req, res) => {
    if (req.url === '/jwks') {
      state.hits++;
      if (state.down) return void res.writeHead(503).end();
      res.writeHead(200, { 'content-type': 'application/jwk-set+json' }).end(JSON.stringify({ keys: state.keys }));
      return;
    }
    state.otherPaths.push(req.url ?? '');
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  state.url = `http://127.0.0.1:${port}`;
  state.jwksUri = `${state.url}/jwks`;
  state.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return state;
}

/** The `WWW-Authenticate` header of a rejection. */
export function challengeOf(r: Rejection | undefined): string | string[] | undefined {
  return r?.problem.headers['www-authenticate'];
}
