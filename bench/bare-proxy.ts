/**
 * The speed limit of a Node.js reverse proxy: a `node:http` server forwarding every request to
 * one upstream through a single `undici` Pool, with no logic in between. Benchmarks compare
 * Rampart against this to show what Rampart's own work costs, apart from what proxying in Node
 * costs anyway.
 *
 * Forwarded: method, path + query, and headers minus hop-by-hop ones (RFC 9110 §7.6.1), `host`
 * (undici sets the upstream's) and `expect`; bodies are streamed both ways without buffering.
 * Not done on purpose: `X-Forwarded-*`, `Via`, upgrades (WebSocket), trailers, retries.
 *
 * Run directly: `node bench/bare-proxy.ts --upstream http://127.0.0.1:3000 [--port 8081]` prints
 * `bare-proxy listening on http://127.0.0.1:8081`.
 */
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';

/** Options of {@link startBareProxy}. */
export interface BareProxyOptions {
  /** Origin of the upstream, e.g. `http://127.0.0.1:3000` (a path, if any, is ignored). */
  upstream: string;
  /** TCP port to listen on; default 0 (a random free port). */
  port?: number;
  /** Interface to bind; default `127.0.0.1`. */
  host?: string;
  /** Maximum upstream connections in the pool; default 128. */
  connections?: number;
}

/** A running bare proxy. */
export interface BareProxy {
  /** Base URL without trailing slash, e.g. `http://127.0.0.1:43122`. */
  url: string;
  /** The bound TCP port. */
  port: number;
  /** Stops listening, drops client connections and closes the upstream pool. */
  close(): Promise<void>;
}

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1) plus `host` (undici sets it) and `expect` (undici refuses
 * it; Node's server already answered `100 Continue`), never forwarded in either direction.
 */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'expect',
]);

type HeaderMap = Record<string, string | string[]>;

/** Copies `headers` without hop-by-hop ones and without those named in `Connection`. */
function endToEnd(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): HeaderMap {
  const out: HeaderMap = {};
  const connection = headers.connection;
  const listed =
    connection === undefined
      ? undefined
      : new Set((Array.isArray(connection) ? connection.join(',') : connection).split(',').map((t) => t.trim().toLowerCase()));
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || HOP_BY_HOP.has(name) || listed?.has(name)) continue;
    out[name] = value;
  }
  return out;
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

function badGateway(res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ error: 'bad_gateway', message: (err as Error)?.message ?? String(err) });
  res.writeHead(502, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/**
 * Starts the bare proxy in front of `opts.upstream`.
 *
 * Pool: `connections` (default 128) keep-alive connections, pipelining 1. Upstream failures
 * before the response head answer 502 `{ error: "bad_gateway", message }`; after it, the client
 * connection is destroyed. A client that disconnects aborts its upstream request.
 */
export async function startBareProxy(opts: BareProxyOptions): Promise<BareProxy> {
  const origin = new URL(opts.upstream).origin;
  const pool = new Pool(origin, { connections: opts.connections ?? 128, pipelining: 1 });

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const abort = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) abort.abort();
    });
    pool
      .stream(
        {
          path: req.url ?? '/',
          method: (req.method ?? 'GET') as 'GET',
          headers: endToEnd(req.headers),
          body: hasBody(req) ? req : null,
          signal: abort.signal,
        },
        ({ statusCode, headers }) => {
          res.writeHead(statusCode, endToEnd(headers));
          return res;
        },
      )
      .catch((err: unknown) => badGateway(res, err));
  });
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;

  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : (opts.port ?? 0);
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await pool.destroy();
    },
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      upstream: { type: 'string' },
      port: { type: 'string', default: '0' },
      host: { type: 'string', default: '127.0.0.1' },
      connections: { type: 'string', default: '128' },
    },
  });
  if (!values.upstream) {
    console.error('usage: node bench/bare-proxy.ts --upstream <url> [--port N] [--host H] [--connections N]');
    process.exit(2);
  }
  const proxy = await startBareProxy({
    upstream: values.upstream,
    port: Number(values.port),
    host: values.host,
    connections: Number(values.connections),
  });
  console.log(`bare-proxy listening on ${proxy.url}`);
  const stop = (): void => {
    proxy.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
