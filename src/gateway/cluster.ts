/**
 * Multi-core: `--workers N` runs N worker processes with `node:cluster` sharing the listening
 * socket. The primary owns the admin listener (metrics aggregated over the workers), restarts a
 * worker that dies, passes reloads (SIGHUP, file change) to every worker and drains them on
 * SIGTERM.
 */
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { dirname, resolve } from 'node:path';
import pino from 'pino';
import { AggregatorRegistry } from 'prom-client';
import { ConfigError, loadConfigFile, validateConfig } from '../config/load.ts';
import type { RampartConfig } from '../config/schema.ts';
import { PASSPORT_JWKS_PATH, passportJwksOf } from '../controls/passport/index.ts';
import { createAdminServer, sendJson } from './admin.ts';
import { startGateway } from './gateway.ts';
import { listen, urlOf } from './listeners.ts';

/** The gateway source: a file or a zero-config object. */
export interface Source {
  configFile?: string;
  config?: unknown;
}

async function loadOnce(source: Source): Promise<RampartConfig> {
  return source.configFile ? (await loadConfigFile(source.configFile)).config : validateConfig(source.config);
}

/** Worker count: `--workers` overrides the configuration; `auto` is the CPU count. */
export function resolveWorkers(flag: string | undefined, config: RampartConfig | undefined): number {
  const v = flag ?? config?.workers ?? 1;
  if (v === 'auto') return availableParallelism();
  const n = Number(v);
  return Number.isInteger(n) && n >= 1 ? Math.min(n, 64) : 1;
}

/** True when this is the primary and more than one worker is wanted. */
export async function shouldCluster(source: Source, flag: string | undefined): Promise<boolean> {
  if (!cluster.isPrimary || process.env.RAMPART_WORKER === '1') return false;
  let config: RampartConfig | undefined;
  try {
    config = await loadOnce(source);
  } catch {
    return false; // the single-process path reports the error
  }
  return resolveWorkers(flag, config) > 1;
}

/** Runs the primary: forks workers, serves admin, restarts, reloads, drains. */
export async function runCluster(source: Source, flag: string | undefined): Promise<void> {
  const log = pino({ base: undefined });
  let config: RampartConfig;
  try {
    config = await loadOnce(source);
  } catch (e) {
    process.stderr.write(`rampart: invalid configuration\n${e instanceof ConfigError ? e.message : (e as Error).message}\n`);
    process.exit(1);
  }
  const n = resolveWorkers(flag, config);
  const ready = new Set<number>();
  let stopping = false;
  const env = { RAMPART_WORKER: '1', RAMPART_WORKERS: String(n) };
  const fork = (): Worker => {
    const w = cluster.fork(env);
    w.on('message', (m: { type?: string }) => {
      if (m?.type === 'ready') ready.add(w.id);
    });
    return w;
  };
  cluster.on('exit', (w, code, signal) => {
    ready.delete(w.id);
    if (stopping) return;
    log.warn({ type: 'log', worker: w.process.pid, code, signal }, 'worker died; starting a new one');
    fork();
  });
  for (let i = 0; i < n; i++) fork();

  const aggregator = new AggregatorRegistry();
  const admin = createAdminServer(
    new Map([
      ['/healthz', (_q, res) => sendJson(res, 200, { status: 'ok', workers: Object.keys(cluster.workers ?? {}).length })],
      ['/readyz', (_q, res) => sendJson(res, ready.size >= n ? 200 : 503, { ready: ready.size >= n, workers_ready: ready.size, workers: n })],
      [
        // The passport JWKS: workers create the passport controls, the primary owns the admin
        // listener; both read the same key files (generated once, race-free), so they agree.
        PASSPORT_JWKS_PATH,
        async (_q, res) => {
          const c = await loadOnce(source).catch(() => config);
          sendJson(res, 200, await passportJwksOf(c.apis, source.configFile ? dirname(resolve(source.configFile)) : process.cwd()));
        },
      ],
      [
        '/metrics',
        async (_q, res) => {
          const body = await aggregator.clusterMetrics();
          res.writeHead(200, { 'content-type': aggregator.contentType });
          res.end(body);
        },
      ],
    ]),
  );
  const adminAddr = await listen(admin, config.admin.listen);
  log.info({ type: 'log', workers: n, admin: urlOf('http', adminAddr) }, 'rampart primary started');

  const broadcast = (msg: object) => {
    for (const w of Object.values(cluster.workers ?? {})) w?.send(msg);
  };
  process.on('SIGHUP', () => broadcast({ type: 'reload' }));
  if (source.configFile) {
    const { watchFile } = await import('../cli/serve.ts');
    watchFile(source.configFile, () => broadcast({ type: 'reload' }));
  }
  const stop = () => {
    if (stopping) return;
    stopping = true;
    broadcast({ type: 'shutdown' });
    const deadline = setTimeout(() => process.exit(0), config.drain_timeout_ms + 2000);
    deadline.unref();
    const check = setInterval(() => {
      if (Object.keys(cluster.workers ?? {}).length === 0) {
        clearInterval(check);
        admin.close();
        process.exit(0);
      }
    }, 50);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

/** Runs one worker: the gateway without its own admin listener, driven by the primary's messages. */
export async function runWorker(source: Source): Promise<void> {
  let gw: Awaited<ReturnType<typeof startGateway>>;
  try {
    gw = await startGateway({ ...source, admin: false });
  } catch (e) {
    process.stderr.write(`rampart worker: ${(e as Error).message}\n`);
    process.exit(1);
  }
  // Constructing an AggregatorRegistry installs prom-client's listener that answers the
  // primary's metrics requests with this worker's registry.
  new AggregatorRegistry();
  process.send?.({ type: 'ready' });
  process.on('message', (m: { type?: string }) => {
    if (m?.type === 'reload') void gw.reload().catch(() => {});
    if (m?.type === 'shutdown') void gw.close().then(() => process.exit(0));
  });
  process.on('SIGTERM', () => {}); // the primary coordinates shutdown
  process.on('SIGINT', () => {});
}
