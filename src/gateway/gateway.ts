/**
 * Gateway lifecycle: start (validate, compile, listen), reload (validate, compile, swap
 * atomically, keep serving the old configuration on error) and drain (stop accepting, finish
 * in-flight requests within a deadline, close pools and sinks).
 */
import type { Server } from 'node:http';
import { dirname, resolve } from 'node:path';
import pino from 'pino';
import { ConfigError, formatIssue, loadConfigFile, validateConfig, type Locator } from '../config/load.ts';
import type { RampartConfig } from '../config/schema.ts';
import { EventBus } from '../events/bus.ts';
import type { EventInput, SecurityEvent } from '../events/event.ts';
import { Redactor } from '../events/redact.ts';
import { openSinks } from '../events/sinks/index.ts';
import { createStore } from '../state/index.ts';
import type { Store } from '../state/store.ts';
import { gatewayMetrics, metricsText } from '../telemetry/metrics.ts';
import { type AdminRoute, createAdminServer, sendJson } from './admin.ts';
import type { ControlDefinition } from '../pipeline/control.ts';
import { type CompiledConfig, compileConfig, prepareConfig } from './compile.ts';
import { type AccessLog, type AccessRecord, RequestHandler } from './handler.ts';
import { type ApiListener, createTlsListener, httpApiListener, listen, requestTlsInfo, type TlsListenerSettings, urlOf } from './listeners.ts';
import { listenerClientAuth, prepareTransport } from '../controls/transport/wiring.ts';

/** Options of {@link startGateway}. */
export interface GatewayOptions {
  /** Configuration object (parsed YAML). Ignored when `configFile` is given. */
  config?: unknown;
  /** Configuration file; `reload()` without arguments re-reads it. */
  configFile?: string;
  /** Base directory for relative paths in the configuration (default: the file's directory or cwd). */
  configDir?: string;
  /** Receives every security event after redaction (tests, console). */
  eventSink?: (e: SecurityEvent) => void;
  /** Start the admin listener (default true; cluster workers leave it to the primary). */
  admin?: boolean;
  /** Operational log (default: JSON lines on stdout). */
  log?: pino.Logger;
  /**
   * The controls available to APIs (default: every control Rampart ships). Embedders add their
   * own here; their stages still run in the fixed phase order.
   */
  controls?: readonly ControlDefinition[];
}

/** A running gateway. */
export interface GatewayHandle {
  /** Base URL of the API listener, e.g. `http://127.0.0.1:8080`. */
  readonly url: string;
  /** Base URL of the admin listener ('' when disabled). */
  readonly adminUrl: string;
  /** The active configuration. */
  readonly config: RampartConfig;
  /**
   * Validates and compiles a new configuration (the given object, or the configuration file
   * re-read), then swaps it in. On error the running configuration keeps serving.
   * @throws {ConfigError} when the new configuration is invalid.
   */
  reload(config?: unknown): Promise<void>;
  /** Registers a read-only route on the admin listener (e.g. `/.well-known/jwks.json`). */
  addAdminRoute(path: string, route: AdminRoute): void;
  /** Drains and stops: stop accepting, wait for in-flight requests up to `drainMs`, close everything. */
  close(drainMs?: number): Promise<void>;
}

/**
 * Starts a gateway in this process.
 * @throws {ConfigError} when the configuration is invalid (nothing is left listening).
 */
export async function startGateway(opts: GatewayOptions): Promise<GatewayHandle> {
  const log = opts.log ?? pino({ base: undefined }, pino.destination({ dest: 1, sync: false }));
  const metrics = gatewayMetrics();
  let loaded = await loadSource(opts, undefined);
  let config = loaded.config;
  const configDir = opts.configDir ?? (opts.configFile ? dirname(resolve(opts.configFile)) : process.cwd());
  const file = opts.configFile ?? '(inline)';

  let bus = openBus(config, configDir, opts.eventSink);
  const emit = (e: EventInput): void => {
    metrics.events.inc({ control: e.control, reason: e.reason });
    bus.emit(e);
  };
  const storeUrl = config.state.store;
  const store: Store = createStore(storeUrl, { memoryMaxKeys: config.state.memory_max_keys, emit });
  const controlLog = {
    info: (msg: string, data?: object) => log.info({ type: 'log', ...data }, msg),
    warn: (msg: string, data?: object) => log.warn({ type: 'log', ...data }, msg),
    error: (msg: string, data?: object) => log.error({ type: 'log', ...data }, msg),
  };
  const routes = new Map<string, AdminRoute>();
  const compile = (c: RampartConfig, locate?: Locator): Promise<CompiledConfig> =>
    compileConfig(prepareConfig(c, configDir), {
      file,
      configDir,
      locate,
      store,
      emit,
      log: controlLog,
      controls: opts.controls,
      addAdminRoute: (p, r) => routes.set(p, r),
    });

  let compiled: CompiledConfig;
  try {
    compiled = await compile(config, loaded.locate);
  } catch (e) {
    await bus.close();
    await store.close();
    throw e;
  }
  // Access log: one line per request, written in batches (>= 16 KiB, or every 200 ms) so the hot
  // path does not pay a write(2) per request; close() flushes.
  const accessDest = config.access_log ? pino.destination({ dest: 1, sync: false }) : undefined;
  const accessLog = accessDest ? new BatchedAccessLog(accessDest) : undefined;
  const handler = new RequestHandler(compiled, { emit, metrics, accessLog, tlsInfo: config.tls ? requestTlsInfo : undefined });
  const tlsSettings = (c: RampartConfig): TlsListenerSettings | undefined =>
    c.tls ? { tls: c.tls, dir: configDir, ...listenerClientAuth(prepareTransport(c, configDir), configDir) } : undefined;
  let listener: ApiListener;
  try {
    const ts = tlsSettings(config);
    listener = ts ? await createTlsListener(handler.handle, emit, ts, controlLog) : httpApiListener(handler.handle, emit);
  } catch (e) {
    await compiled.close();
    await bus.close();
    await store.close();
    throw e;
  }
  const server = listener.server;
  const bound = await listen(server, config.listen);

  routes.set('/healthz', (_req, res) => sendJson(res, 200, { status: 'ok' }));
  routes.set('/readyz', (_req, res) => {
    const reasons = handler.compiled.notReady();
    sendJson(res, reasons.length ? 503 : 200, { ready: reasons.length === 0, reasons });
  });
  routes.set('/metrics', async (_req, res) => {
    const m = await metricsText();
    res.writeHead(200, { 'content-type': m.contentType });
    res.end(m.body);
  });
  let adminServer: Server | undefined;
  let adminUrl = '';
  if (opts.admin !== false) {
    adminServer = createAdminServer(routes);
    try {
      adminUrl = urlOf('http', await listen(adminServer, config.admin.listen));
    } catch (e) {
      server.close();
      listener.dispose();
      throw e;
    }
  }
  const url = urlOf(listener.scheme, bound);
  log.info({ type: 'log', url, admin: adminUrl, apis: config.apis.map((a) => a.name) }, 'rampart listening');

  let reloading = Promise.resolve();
  const reload = (next?: unknown): Promise<void> => {
    const run = async (): Promise<void> => {
      try {
        const l = await loadSource(opts, next);
        if (l.config.listen !== config.listen || l.config.admin.listen !== config.admin.listen) {
          log.warn({ type: 'log' }, 'listen addresses changed: restart the gateway to apply them');
        }
        if (l.config.state.store !== storeUrl) {
          log.warn({ type: 'log' }, 'state.store changed: restart the gateway to apply it');
        }
        const c = await compile(l.config, l.locate);
        if ((l.config.tls === undefined) !== (config.tls === undefined)) {
          log.warn({ type: 'log' }, 'tls added or removed: restart the gateway to apply it');
        } else {
          const ts = tlsSettings(l.config);
          if (ts && listener.updateTls) {
            try {
              await listener.updateTls(ts);
            } catch (e) {
              await c.close();
              throw e;
            }
          }
        }
        const oldBus = bus;
        const eventsChanged = JSON.stringify(l.config.events) !== JSON.stringify(config.events);
        if (eventsChanged) bus = openBus(l.config, configDir, opts.eventSink);
        config = l.config;
        loaded = l;
        void handler.swap(c);
        if (eventsChanged) void oldBus.close();
        metrics.reloads.inc({ result: 'ok' });
        log.info({ type: 'log' }, 'configuration reloaded');
      } catch (e) {
        metrics.reloads.inc({ result: 'error' });
        const issues = e instanceof ConfigError ? e.issues.map(formatIssue) : [(e as Error).message];
        emit({ control: 'config', reason: 'config-invalid', action: 'error', severity: 'high', details: { file, issues } });
        log.error({ type: 'log', issues }, 'configuration refused; the running configuration keeps serving');
        throw e;
      }
    };
    const p = reloading.then(run);
    reloading = p.catch(() => {});
    return p;
  };

  let closing: Promise<void> | undefined;
  return {
    url,
    adminUrl,
    get config() {
      return config;
    },
    reload,
    addAdminRoute(path, route) {
      routes.set(path, route);
    },
    close(drainMs = config.drain_timeout_ms) {
      closing ??= (async () => {
        const stopped = new Promise<void>((r) => server.close(() => r()));
        listener.dispose();
        listener.closeIdle();
        const deadline = Date.now() + drainMs;
        while (handler.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        listener.closeAll();
        await stopped;
        await new Promise<void>((r) => (adminServer ? adminServer.close(() => r()) : r()));
        adminServer?.closeAllConnections();
        await handler.compiled.close();
        await store.close();
        await bus.close();
        log.flush?.();
        try {
          accessLog?.close();
          accessDest?.flushSync();
        } catch {
          /* not open yet */
        }
      })();
      return closing;
    },
  };

  function openBus(c: RampartConfig, dir: string, sink: ((e: SecurityEvent) => void) | undefined): EventBus {
    return new EventBus(
      openSinks(c.events.sinks, dir, (msg, data) => log.warn({ type: 'log', ...data }, msg)),
      new Redactor(c.events.redact_headers),
      sink,
    );
  }
}

async function loadSource(opts: GatewayOptions, next: unknown): Promise<{ config: RampartConfig; locate?: Locator }> {
  if (next !== undefined) return { config: validateConfig(next) };
  if (opts.configFile) return loadConfigFile(opts.configFile);
  return { config: validateConfig(opts.config) };
}

/** A JSON number as pino writes it (non-finite numbers become `null`). */
function jsonNumber(n: number): string {
  return Number.isFinite(n) ? `${n}` : 'null';
}

/**
 * The access log: one JSON line per request, byte-for-byte what `pino().info({ type: 'access', ... })`
 * wrote (`level` 30, `time` in epoch ms, then the fields in order, `upstream_ms` omitted when
 * undefined), built by hand for the fixed fields and handed to the pino destination in batches
 * (>= 16 KiB, or every 200 ms): generic serialisation and the destination's per-write bookkeeping
 * cost more than the line itself. `close()` hands over what is left (then flush the destination).
 */
class BatchedAccessLog implements AccessLog {
  private buf = '';
  private readonly dest: { write(s: string): unknown };
  private readonly timer: NodeJS.Timeout;

  constructor(dest: { write(s: string): unknown }) {
    this.dest = dest;
    this.timer = setInterval(() => this.flush(), 200);
    this.timer.unref();
  }

  access(r: AccessRecord): void {
    this.buf +=
      `{"level":30,"time":${Date.now()},"type":"access","request_id":${JSON.stringify(r.request_id)},"api":${JSON.stringify(r.api)}` +
      `,"method":${JSON.stringify(r.method)},"path":${JSON.stringify(r.path)},"status":${jsonNumber(r.status)},"verdict":${JSON.stringify(r.verdict)}` +
      `,"aborted":${r.aborted},"bytes_in":${jsonNumber(r.bytes_in)},"bytes_out":${jsonNumber(r.bytes_out)},"latency_ms":${jsonNumber(r.latency_ms)}` +
      `${r.upstream_ms === undefined ? '' : `,"upstream_ms":${jsonNumber(r.upstream_ms)}`},"client_ip":${JSON.stringify(r.client_ip)}}\n`;
    if (this.buf.length >= 16384) this.flush();
  }

  private flush(): void {
    if (this.buf === '') return;
    const b = this.buf;
    this.buf = '';
    this.dest.write(b);
  }

  close(): void {
    clearInterval(this.timer);
    this.flush();
  }
}
