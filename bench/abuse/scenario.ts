/**
 * `abuse` benchmark: the cost of the GCRA rate limiter on the request path, in the same run,
 * against the same demo upstream: Rampart with no limiter, with the memory limiter and with the
 * Redis limiter (127.0.0.1:6379, a unique key prefix per run). The limit is set far above the
 * offered load (10^9/s), so every request takes the full limiter path and is admitted; the
 * hot single key (one client IP) is the worst case for contention.
 */
import { randomUUID } from 'node:crypto';
import type { BenchContext, RampartService, Scenario } from '../run.ts';
import { printTable } from '../table.ts';
import type { Row } from '../table.ts';

/** Runs the comparison and prints req/s, p50/p99 and the overhead of each limiter. */
async function run(ctx: BenchContext): Promise<unknown> {
  const upstream = await ctx.startUpstream();
  const prefix = `rampart-bench:${randomUUID()}:`;
  const variants: Array<{ name: string; args: string[] }> = [
    { name: 'no limiter', args: ['--no-controls'] },
    { name: 'memory limiter', args: ['--no-controls', '--rate-limit', '1000000000/s'] },
    {
      name: 'redis limiter',
      args: ['--no-controls', '--rate-limit', '1000000000/s', '--store', `redis://127.0.0.1:6379?prefix=${encodeURIComponent(prefix)}`],
    },
  ];
  const started: Array<{ name: string; svc: RampartService }> = [];
  try {
    for (const v of variants) started.push({ name: v.name, svc: await ctx.startRampart({ upstream: upstream.url, args: v.args }) });
    // Sanity: the limiter is really on the path (RateLimit fields present) and admits.
    for (const { name, svc } of started) {
      const r = await fetch(`${svc.url}/health`);
      await r.arrayBuffer();
      if (r.status !== 200) throw new Error(`${name}: /health answered ${r.status}`);
      if (name !== 'no limiter' && !r.headers.get('ratelimit')) throw new Error(`${name}: no RateLimit field, limiter not active`);
    }
    const results = await ctx.compare(started.map(({ name, svc }) => ({ name, load: { url: `${svc.url}/health` } })));
    const base = results[0]?.result;
    const rows: Row[] = results.map(({ name, result }) => ({
      target: name,
      'req/s': Math.round(result.rps),
      'p50 ms': result.p50Ms,
      'p99 ms': result.p99Ms,
      'vs none': base ? `${((result.rps / base.rps) * 100).toFixed(1)} %` : '-',
      errors: result.errors,
      'non-2xx': result.non2xx,
    }));
    const { connections, durationSec, rounds } = ctx.config;
    printTable(rows, { title: `abuse: GET /health with a GCRA limit on the path, ${connections} connections, ${durationSec} s x ${rounds} round(s)` });
    return Object.fromEntries(results.map(({ name, result }) => [name, result]));
  } finally {
    await Promise.all([...started.map((s) => s.svc.stop()), upstream.stop()]);
  }
}

export const abuseScenario: Scenario = {
  name: 'abuse',
  description: 'rate limiter cost: no limiter vs memory GCRA vs Redis GCRA (same run)',
  run,
};
