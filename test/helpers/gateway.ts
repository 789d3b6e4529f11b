/**
 * Test helpers for the gateway: real upstream servers, an in-process gateway with captured
 * events, and the real CLI as a child process.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { SecurityEvent } from '../../src/events/event.ts';
import { type GatewayHandle, type GatewayOptions, startGateway } from '../../src/gateway/gateway.ts';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

/** A real upstream HTTP server on 127.0.0.1 and a random port. */
export interface TestUpstream {
  url: string;
  port: number;
  server: Server;
  close(): Promise<void>;
}

/** Starts `handler` on 127.0.0.1:0. */
export async function startUpstream(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<TestUpstream> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** An upstream that echoes method, url, headers and body length as JSON. */
export function echoUpstream(): Promise<TestUpstream> {
  return startUpstream((req, res) => {
    let n = 0;
    req.on('data', (c: Buffer) => (n += c.length));
    req.on('end', () => {
      const body = JSON.stringify({ method: req.method, url: req.url, headers: req.headers, bytes: n });
      res.writeHead(200, {
        'content-type': 'application/json',
        server: 'upstream/1.0',
        'x-powered-by': 'php/5',
        connection: 'keep-alive, x-upstream-hop',
        'x-upstream-hop': 'secret-hop',
        'keep-alive': 'timeout=5',
      });
      res.end(body);
    });
  });
}

/** A gateway running in this process, with its events captured. */
export interface TestGateway extends GatewayHandle {
  events: SecurityEvent[];
}

/**
 * Starts a gateway in-process on random ports with the given API list (or full config),
 * stdout sinks and the access log off.
 */
export async function startTestGateway(config: Record<string, unknown>, opts: Partial<GatewayOptions> = {}): Promise<TestGateway> {
  const events: SecurityEvent[] = [];
  const full = { listen: '127.0.0.1:0', admin: { listen: '127.0.0.1:0' }, access_log: false, events: { sinks: [] }, ...config };
  const gw = await startGateway({ config: full, eventSink: (e) => events.push(e), log: silentLog(), ...opts });
  return Object.assign(gw, { events });
}

/** A pino-compatible logger that writes nothing. */
export function silentLog(): import('pino').Logger {
  // biome-ignore lint/suspicious/noExplicitAny: minimal logger double for tests (no output wanted)
  const noop: any = () => {};
  // biome-ignore lint/suspicious/noExplicitAny: see above
  const l: any = { info: noop, warn: noop, error: noop, debug: noop, flush: noop, child: () => l };
  return l;
}

/** A `rampart` CLI child process. */
export interface RampartProcess {
  child: ChildProcess;
  /** Everything the process wrote to stdout so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves with the `nth` (default first) stdout JSON line whose `msg` equals `msg`. */
  waitForLog(msg: string, timeoutMs?: number, nth?: number): Promise<Record<string, unknown>>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Spawns `node src/cli/main.ts ...args`. */
export function spawnRampart(args: string[], env: NodeJS.ProcessEnv = {}): RampartProcess {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    waitForLog(msg, timeoutMs = 20_000, nth = 1) {
      return new Promise((resolve, reject) => {
        const started = Date.now();
        const tick = () => {
          let seen = 0;
          for (const line of out.split('\n')) {
            if (!line.startsWith('{')) continue;
            try {
              const j = JSON.parse(line) as Record<string, unknown>;
              if (j.msg === msg && ++seen === nth) return resolve(j);
            } catch {
              /* partial line */
            }
          }
          if (child.exitCode !== null) return reject(new Error(`rampart exited (${child.exitCode}): ${err}`));
          if (Date.now() - started > timeoutMs) return reject(new Error(`timed out waiting for "${msg}"; stderr: ${err}`));
          setTimeout(tick, 25);
        };
        tick();
      });
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Polls `url` until it answers `status` (default 200). */
export async function waitForStatus(url: string, status = 200, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      const r = await fetch(url);
      await r.arrayBuffer();
      if (r.status === status) return;
    } catch {
      /* not up yet */
    }
    if (Date.now() > until) throw new Error(`${url} did not answer ${status}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A response read fully by {@link httpGet}. */
export interface RawResponse {
  status: number;
  headers: import('node:http').IncomingHttpHeaders;
  body: string;
}

/**
 * A request with node:http, which (unlike fetch) sends any header as given, including
 * `Connection`, `Host` and `TE`.
 */
export function httpRequestText(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<RawResponse> {
  // Not `new URL(url)`: it would normalise dot segments that tests send on purpose.
  const m = /^http:\/\/([^/:]+|\[[^\]]+\]):(\d+)(\/.*)?$/.exec(url);
  if (!m) throw new Error(`unsupported URL ${url}`);
  return new Promise((resolve, reject) => {
    const req = httpRequestRaw(
      { host: (m[1] as string).replace(/^\[|\]$/g, ''), port: Number(m[2]), path: m[3] ?? '/', method: opts.method ?? 'GET', headers: opts.headers },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}
import { request as httpRequestRaw } from 'node:http';
