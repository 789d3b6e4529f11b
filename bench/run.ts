/**
 * Benchmark runner (`npm run bench`, or `node bench/run.ts [scenario...]` straight from source).
 *
 * Every system under test runs in its own child process (demo upstream, bare proxy, Rampart);
 * this process only generates load with autocannon, so no two of them share an event loop.
 *
 * Scenarios live in {@link scenarios}; positional arguments select them by name (default: all),
 * `--list` prints them. Environment:
 *
 * - `BENCH_DURATION`     measured seconds per target (default 10)
 * - `BENCH_WARMUP`       warm-up seconds per target, not measured (default 2)
 * - `BENCH_CONNECTIONS`  concurrent connections (default 50)
 * - `BENCH_ROUNDS`       measurement rounds, interleaved across targets; medians are reported
 *                        (default 1; use 3+ on a noisy or small machine)
 * - `BENCH_JSON`         when set, the path of a JSON file to write every scenario's results to
 *
 * Exit code: 0 when every selected scenario succeeded, 1 otherwise (results of the scenarios
 * that ran are still printed), 2 on bad arguments.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus } from 'node:os';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { abuseScenario } from './abuse/scenario.ts';
import { identityScenario } from './identity/scenario.ts';
import { runLoad } from './load.ts';
import type { LoadOptions, LoadResult } from './load.ts';
import { printTable } from './table.ts';
import type { Row } from './table.ts';

/** Settings shared by all scenarios, from the environment. */
export interface BenchConfig {
  /** Measured seconds per target. */
  durationSec: number;
  /** Unmeasured warm-up seconds per target, run once before the first round. */
  warmupSec: number;
  /** Concurrent autocannon connections. */
  connections: number;
  /** Interleaved measurement rounds per target (medians are reported). */
  rounds: number;
}

/** Load options of one target, minus what {@link BenchConfig} decides. */
export type TargetLoad = Omit<LoadOptions, 'durationSec' | 'connections'> & { connections?: number };

/** One named target of {@link BenchContext.compare}. */
export interface Target {
  /** Label in reports, e.g. `bare proxy`. */
  name: string;
  load: TargetLoad;
}

/** A system under test running as a child process. */
export interface Service {
  /** Label for reports, e.g. `upstream`. */
  name: string;
  /** Base URL without trailing slash, e.g. `http://127.0.0.1:40123`. */
  url: string;
  /** Child process id. */
  pid: number | undefined;
  /** SIGTERM, then SIGKILL after 5 s; resolves once the child has exited. Idempotent. */
  stop(): Promise<void>;
}

/** A running Rampart child: its proxy listener is `url`, its admin listener `adminUrl`. */
export interface RampartService extends Service {
  /** Admin listener base URL (serves `/readyz`), e.g. `http://127.0.0.1:40125`. */
  adminUrl: string;
}

/** Options of {@link startRampart}. */
export interface RampartOptions {
  /** Upstream base URL passed as `--upstream`. */
  upstream: string;
  /** Extra CLI arguments after the listeners; default `['--no-controls']`. */
  args?: string[];
  /** Milliseconds to wait for `/readyz` to answer 200; default 30000. */
  readyTimeoutMs?: number;
}

/** What a scenario gets: the config and the helpers to start services and measure. */
export interface BenchContext {
  config: BenchConfig;
  /** Starts `examples/demo-upstream` in a child process (stopped automatically at exit). */
  startUpstream(): Promise<Service>;
  /** Starts `bench/bare-proxy` in front of `upstream` in a child process. */
  startBareProxy(upstream: string): Promise<Service>;
  /** Starts Rampart (`src/cli/main serve ...`) in a child process and waits for `/readyz`. */
  startRampart(opts: RampartOptions): Promise<RampartService>;
  /** Warm-up (config.warmupSec) then one measurement (config.durationSec) of one target. */
  measure(opts: TargetLoad): Promise<LoadResult>;
  /**
   * Warms every target up, then measures them in `config.rounds` interleaved rounds
   * (a, b, c, a, b, c, ...) so drift of a noisy machine spreads evenly; returns per target the
   * median of each latency/rate metric and the sum of the error counts, in `targets` order.
   */
  compare(targets: Target[]): Promise<Array<{ name: string; result: LoadResult }>>;
}

/** A benchmark scenario. Its result (any JSON value) is collected into `BENCH_JSON`. */
export interface Scenario {
  /** Name used on the command line, e.g. `core`. */
  name: string;
  /** One line for `--list` and the report heading. */
  description: string;
  run(ctx: BenchContext): Promise<unknown>;
}

/** File extension of this module: `.ts` from source, `.js` when run from `dist/`. */
const EXT = extname(fileURLToPath(import.meta.url));

/** Absolute path of a project file given without extension, e.g. `src/cli/main`. */
function projectFile(pathNoExt: string): string {
  return fileURLToPath(new URL(`../${pathNoExt}${EXT}`, import.meta.url));
}

function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${JSON.stringify(raw)}`);
  return n;
}

/** Reads {@link BenchConfig} from `BENCH_DURATION`, `BENCH_WARMUP`, `BENCH_CONNECTIONS`, `BENCH_ROUNDS`. */
export function configFromEnv(): BenchConfig {
  return {
    durationSec: envNumber('BENCH_DURATION', 10),
    warmupSec: process.env.BENCH_WARMUP === '0' ? 0 : envNumber('BENCH_WARMUP', 2),
    connections: Math.round(envNumber('BENCH_CONNECTIONS', 50)),
    rounds: Math.round(envNumber('BENCH_ROUNDS', 1)),
  };
}

const running = new Set<Service>();

/** Wraps a child process as a {@link Service}. */
function asService(name: string, child: ChildProcess, url: string): Service {
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  let stopping: Promise<void> | undefined;
  const service: Service = {
    name,
    url,
    pid: child.pid,
    stop() {
      stopping ??= (async () => {
        running.delete(service);
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
          await exited;
          clearTimeout(timer);
        }
      })();
      return stopping;
    },
  };
  running.add(service);
  return service;
}

/** Keeps the last `max` characters written by a child, for error messages. */
function tail(stream: NodeJS.ReadableStream | null, max = 4_000): () => string {
  let text = '';
  stream?.setEncoding('utf8');
  stream?.on('data', (chunk: string) => {
    text = (text + chunk).slice(-max);
  });
  return () => text.trim();
}

/**
 * Spawns `node <script> ...args` and resolves with the URL it prints as `... listening on <url>`
 * on stdout. Rejects when the child exits first or prints nothing within `timeoutMs`.
 */
function spawnListening(name: string, script: string, args: string[], timeoutMs = 20_000): Promise<Service> {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const stderr = tail(child.stderr);
  return new Promise<Service>((resolve, reject) => {
    let out = '';
    const fail = (why: string): void => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${name}: ${why}${stderr() ? `\n${stderr()}` : ''}`));
    };
    const timer = setTimeout(() => fail(`no "listening on <url>" line within ${timeoutMs} ms`), timeoutMs);
    const onExit = (code: number | null, signal: string | null): void => fail(`exited before listening (code ${code}, signal ${signal})`);
    child.once('exit', onExit);
    child.stdout.setEncoding('utf8');
    const onData = (chunk: string): void => {
      out += chunk;
      const m = /listening on (https?:\/\/\S+)/.exec(out);
      if (!m?.[1]) return;
      clearTimeout(timer);
      child.off('exit', onExit);
      child.stdout.off('data', onData);
      child.stdout.resume(); // keep draining so the child never blocks on a full pipe
      resolve(asService(name, child, m[1].replace(/\/$/, '')));
    };
    child.stdout.on('data', onData);
  });
}

/** A free TCP port on 127.0.0.1 (bound then released; a small race is accepted). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts Rampart as `node src/cli/main.ts serve --upstream <url> --listen 127.0.0.1:<p>
 * --admin 127.0.0.1:<a> [...args]` and polls `GET <admin>/readyz` every 100 ms until it answers 200.
 */
export async function startRampart(opts: RampartOptions): Promise<RampartService> {
  const [port, adminPort] = [await freePort(), await freePort()];
  const args = [
    projectFile('src/cli/main'),
    'serve',
    '--upstream',
    opts.upstream,
    '--listen',
    `127.0.0.1:${port}`,
    '--admin',
    `127.0.0.1:${adminPort}`,
    ...(opts.args ?? ['--no-controls']),
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const stderr = tail(child.stderr);
  const service = asService('rampart', child, `http://127.0.0.1:${port}`);
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 30_000);
  let exitInfo: string | undefined;
  child.once('exit', (code, signal) => {
    exitInfo = `code ${code}, signal ${signal}`;
  });
  for (;;) {
    if (exitInfo !== undefined) {
      await service.stop();
      throw new Error(`rampart exited before ready (${exitInfo})${stderr() ? `\n${stderr()}` : ''}`);
    }
    try {
      const res = await fetch(`${adminUrl}/readyz`, { signal: AbortSignal.timeout(1_000) });
      await res.arrayBuffer();
      if (res.status === 200) return { ...service, stop: service.stop, adminUrl };
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await service.stop();
      throw new Error(`rampart: ${adminUrl}/readyz did not answer 200 in time${stderr() ? `\n${stderr()}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] ?? Number.NaN) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** Medians of rates and latencies, sums of counts, over several runs of one target. */
function combine(runs: LoadResult[]): LoadResult {
  const m = (k: keyof LoadResult): number => median(runs.map((r) => r[k]));
  const sum = (k: keyof LoadResult): number => runs.reduce((acc, r) => acc + r[k], 0);
  return {
    rps: m('rps'),
    p50Ms: m('p50Ms'),
    p99Ms: m('p99Ms'),
    meanMs: m('meanMs'),
    errors: sum('errors'),
    timeouts: sum('timeouts'),
    non2xx: sum('non2xx'),
    totalRequests: sum('totalRequests'),
    durationSec: sum('durationSec'),
  };
}

/** Builds the {@link BenchContext} handed to every scenario. */
export function createContext(config: BenchConfig): BenchContext {
  return {
    config,
    startUpstream: () => spawnListening('upstream', projectFile('examples/demo-upstream'), ['--port', '0']),
    startBareProxy: (upstream) => spawnListening('bare-proxy', projectFile('bench/bare-proxy'), ['--upstream', upstream, '--port', '0']),
    startRampart,
    async measure(opts) {
      const load: LoadOptions = { ...opts, connections: opts.connections ?? config.connections, durationSec: 0 };
      if (config.warmupSec > 0) await runLoad({ ...load, durationSec: config.warmupSec });
      return runLoad({ ...load, durationSec: config.durationSec });
    },
    async compare(targets) {
      const loads = targets.map((t) => ({ ...t.load, connections: t.load.connections ?? config.connections }));
      if (config.warmupSec > 0) {
        for (const [i, load] of loads.entries()) {
          process.stderr.write(`  warming up ${targets[i]?.name} ...\n`);
          await runLoad({ ...load, durationSec: config.warmupSec });
        }
      }
      const runs: LoadResult[][] = targets.map(() => []);
      for (let round = 1; round <= config.rounds; round++) {
        for (const [i, load] of loads.entries()) {
          process.stderr.write(`  measuring ${targets[i]?.name} (round ${round}/${config.rounds}) ...\n`);
          runs[i]?.push(await runLoad({ ...load, durationSec: config.durationSec }));
        }
      }
      return targets.map((t, i) => ({ name: t.name, result: combine(runs[i] ?? []) }));
    },
  };
}

/** Checks that `url` answers 200; returns an error text otherwise (or undefined when fine). */
async function probe(url: string): Promise<string | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
    const text = await res.text();
    return res.status === 200 ? undefined : `${url} answered ${res.status}: ${text.slice(0, 200)}`;
  } catch (err) {
    return `${url} failed: ${(err as Error).message}`;
  }
}

function resultRow(target: string, r: LoadResult): Row {
  return {
    target,
    'req/s': Math.round(r.rps),
    'p50 ms': r.p50Ms,
    'p99 ms': r.p99Ms,
    errors: r.errors,
    'non-2xx': r.non2xx,
  };
}

/**
 * `core`: `GET /health` against (a) the upstream directly, (b) the bare proxy, (c) Rampart with
 * `--no-controls` (warmed up, then measured in interleaved rounds); prints the table and Rampart's
 * req/s relative to the bare proxy and the p99 it adds (autocannon latencies have 1 ms resolution). Throws (after printing what it measured) when a target fails to start or answer.
 */
async function core(ctx: BenchContext): Promise<unknown> {
  const upstream = await ctx.startUpstream();
  const bare = await ctx.startBareProxy(upstream.url);
  let rampart: RampartService | undefined;
  let quiet: RampartService | undefined;
  let failure: string | undefined;
  try {
    rampart = await ctx.startRampart({ upstream: upstream.url });
    quiet = await ctx.startRampart({ upstream: upstream.url, args: ['--no-controls', '--no-access-log'] });
  } catch (err) {
    failure = (err as Error).message;
  }

  const targets: Array<{ name: string; url: string }> = [
    { name: 'upstream (direct)', url: upstream.url },
    { name: 'bare proxy', url: bare.url },
  ];
  if (rampart) targets.push({ name: 'rampart --no-controls', url: rampart.url });
  if (quiet) targets.push({ name: 'rampart, no access log', url: quiet.url });

  const healthy: Target[] = [];
  for (const t of targets) {
    const broken = await probe(`${t.url}/health`);
    if (broken) failure ??= broken;
    else healthy.push({ name: t.name, load: { url: `${t.url}/health` } });
  }
  const results: Record<string, LoadResult> = {};
  const rows: Row[] = [];
  for (const { name, result } of await ctx.compare(healthy)) {
    results[name] = result;
    rows.push(resultRow(name, result));
  }
  const { connections, durationSec, rounds } = ctx.config;
  printTable(rows, {
    title: `GET /health, ${connections} connections, ${durationSec} s x ${rounds} round(s) each${rounds > 1 ? ' (medians)' : ''}`,
  });

  const b = results['bare proxy'];
  const c = results['rampart --no-controls'];
  const a = results['upstream (direct)'];
  const summary: Record<string, number> = {};
  if (a && b) summary.bareVsUpstreamRps = b.rps / a.rps;
  if (b && c) {
    summary.rampartVsBareRps = c.rps / b.rps;
    summary.rampartAddedP99Ms = c.p99Ms - b.p99Ms;
    console.log(
      `\nrampart / bare proxy: ${(summary.rampartVsBareRps * 100).toFixed(1)} % of req/s, ` +
        `p99 ${summary.rampartAddedP99Ms >= 0 ? '+' : ''}${summary.rampartAddedP99Ms.toFixed(2)} ms`,
    );
  }
  const q = results['rampart, no access log'];
  if (b && q) {
    summary.quietVsBareRps = q.rps / b.rps;
    console.log(`rampart without access log / bare proxy: ${(summary.quietVsBareRps * 100).toFixed(1)} % of req/s, p99 +${(q.p99Ms - b.p99Ms).toFixed(2)} ms`);
  }
  if (a && b) console.log(`bare proxy / upstream: ${((summary.bareVsUpstreamRps ?? 0) * 100).toFixed(1)} % of req/s`);

  await Promise.all([rampart?.stop(), quiet?.stop(), bare.stop(), upstream.stop()]);
  if (failure) throw new Error(failure);
  return { results, summary };
}

/** Every scenario, in run order. Add new ones here. */
export const scenarios: Scenario[] = [
  {
    name: 'core',
    description: 'GET /health: upstream vs bare Node proxy vs Rampart with no controls',
    run: core,
  },
  abuseScenario,
  identityScenario,
];

async function stopAll(): Promise<void> {
  await Promise.all([...running].map((s) => s.stop()));
}

async function main(argv: string[]): Promise<number> {
  if (argv.includes('--list') || argv.includes('--help') || argv.includes('-h')) {
    console.log('usage: node bench/run.ts [--list] [scenario...]\n\nscenarios:');
    for (const s of scenarios) console.log(`  ${s.name.padEnd(16)} ${s.description}`);
    return 0;
  }
  const names = argv.filter((a) => !a.startsWith('-'));
  const unknown = names.filter((n) => !scenarios.some((s) => s.name === n));
  if (unknown.length > 0) {
    console.error(`unknown scenario(s): ${unknown.join(', ')}; known: ${scenarios.map((s) => s.name).join(', ')}`);
    return 2;
  }
  const selected = names.length === 0 ? scenarios : scenarios.filter((s) => names.includes(s.name));
  const config = configFromEnv();
  const ctx = createContext(config);
  const cpu = cpus();
  console.log(
    `rampart bench: node ${process.version}, ${cpu.length} x ${cpu[0]?.model ?? 'unknown cpu'}, ` +
      `${config.durationSec} s x ${config.rounds} round(s) measured + ${config.warmupSec} s warm-up per target, ` +
      `${config.connections} connections`,
  );
  const collected: Record<string, unknown> = {};
  let failed = false;
  for (const s of selected) {
    console.log(`\n== ${s.name}: ${s.description}`);
    try {
      collected[s.name] = await s.run(ctx);
    } catch (err) {
      failed = true;
      collected[s.name] = { error: (err as Error).message };
      console.error(`\n${s.name} FAILED: ${(err as Error).message}`);
    } finally {
      await stopAll();
    }
  }
  if (process.env.BENCH_JSON) {
    writeFileSync(process.env.BENCH_JSON, `${JSON.stringify({ config, node: process.version, scenarios: collected }, null, 2)}\n`);
  }
  return failed ? 1 : 0;
}

if (import.meta.main) {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      stopAll().finally(() => process.exit(130));
    });
  }
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    async (err: unknown) => {
      console.error(err);
      await stopAll();
      process.exitCode = 1;
    },
  );
}
