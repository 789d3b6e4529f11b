/**
 * `abuse` control: GCRA rate limits (separate read and write budgets, several limits per route),
 * per-key concurrency limits and priority-based load shedding, after Stripe's published limiters
 * (request rate limiter, concurrent requests limiter, fleet-usage and worker-utilisation load
 * shedders). OWASP API Security Top 10 2023 API4 (unrestricted resource consumption) and API6
 * (unrestricted access to sensitive business flows).
 *
 * Stages: identity-free limits (keys `ip`, `client_cert`, `header:*`, `api`) and load shedding
 * by route priority run in phase `network`, before identity work; identity-keyed limits, identity
 * priorities and concurrency on identity run in phase `abuse`.
 *
 * Responses: 429 problem details with `Retry-After` (RFC 9110 §10.2.3) and the `RateLimit-Policy`
 * and `RateLimit` fields (draft-ietf-httpapi-ratelimit-headers-11); 503 with `Retry-After` for
 * load shedding and an unavailable store in fail-closed mode. A key's first rejection in a limit's
 * window emits the security event; later rejections in the same window set `quiet: true`
 * (the gateway sends them without an event). Dedup state lives in the store, so a cluster on
 * Redis emits one event per key and window.
 *
 * Workers: the memory store enforces 1 / RAMPART_WORKERS of each GCRA budget per worker;
 * concurrency limits are per process (each worker allows ⌊max / RAMPART_WORKERS⌋, at least 1).
 */
import { z } from 'zod';
import type { RequestContext } from '../../pipeline/context.ts';
import type { ControlEnv, ControlInstance } from '../../pipeline/control.ts';
import { defineControl } from '../../pipeline/control.ts';
import { Problem } from '../../pipeline/problem.ts';
import type { RequestOutcome, RequestPhase, RequestStage } from '../../pipeline/stage.ts';
import { deny, type Rejection, type Verdict } from '../../pipeline/verdict.ts';
import type { Severity } from '../../events/event.ts';
import { gcraLimit } from '../../state/gcra.ts';
import { workerCount } from '../../state/index.ts';
import type { FailMode } from '../../state/resilient.ts';
import type { GcraLimit, GcraResult } from '../../state/store.ts';
import { type CompiledKey, compileKey } from './keys.ts';
import { concurrencyTable, loadMonitor } from './load.ts';
import { parseRateSpec, policyItem, rateLimitItem } from './rate.ts';

export { parseRateSpec, type RateSpec } from './rate.ts';

const CONTROL = 'abuse';
const nameSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'letters, digits, _ . - only');
const keySchema = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);
const rateSchema = z.string().refine((s) => {
  try {
    parseRateSpec(s);
    return true;
  } catch {
    return false;
  }
}, 'expected COUNT/UNIT, e.g. 20/s, 600/min, 1000/h, 10000/day');
const prioritySchema = z.enum(['critical', 'normal', 'background']);
/** Which requests a limit counts: all, safe methods (GET, HEAD, OPTIONS, TRACE) or the others. */
const methodsSchema = z.enum(['all', 'read', 'write']).default('all');

export const rateLimitSchema = z.strictObject({
  /** Policy identifier, also shown in `RateLimit-Policy`. Unique per API. */
  name: nameSchema,
  /** `COUNT/UNIT`: `20/s`, `600/min`, `1000/h`, `10000/day`. */
  rate: rateSchema,
  /** Requests a fresh client may send at once (default: COUNT). */
  burst: z.number().int().positive().optional(),
  /** Who shares the budget (see keys.ts): one part or a list; default `identity_or_ip`. */
  key: keySchema.default('identity_or_ip'),
  /** Cells one request costs (default 1). */
  cost: z.number().int().positive().default(1),
  /** `read` (safe methods) or `write` budgets, or `all`. */
  methods: methodsSchema,
  /** Only requests whose path starts with this prefix. */
  path_prefix: z.string().startsWith('/').optional(),
  /** Only these OpenAPI operation ids (needs the contract control; runs in phase `abuse`). */
  operations: z.array(z.string().min(1)).min(1).optional(),
  /** Force the phase; by default identity-free keys run in `network`, the rest in `abuse`. */
  phase: z.enum(['network', 'abuse']).optional(),
});

export const concurrencySchema = z.strictObject({
  name: nameSchema,
  /** Maximum in-flight requests per key (per process; see the module docs for workers). */
  max: z.number().int().positive(),
  key: keySchema.default('identity_or_ip'),
  methods: methodsSchema,
  path_prefix: z.string().startsWith('/').optional(),
  operations: z.array(z.string().min(1)).min(1).optional(),
});

export const abuseSchema = z.strictObject({
  /**
   * On a store failure: `fail_open` admits (one `rate-limit-store-error` event per second),
   * `fail_closed` answers 503. Default: the store's own mode (`redis://…?fail=closed`), else open.
   */
  on_store_error: z.enum(['fail_open', 'fail_closed']).optional(),
  rate_limits: z.array(rateLimitSchema).default([]),
  concurrency: z.array(concurrencySchema).default([]),
  /** Send `RateLimit-Policy` / `RateLimit` on admitted responses too (always sent on 429). */
  headers: z.boolean().default(true),
  /** Priority classes for load shedding: by route (network phase) and by identity (abuse phase). */
  priority: z
    .strictObject({
      default: prioritySchema.default('normal'),
      routes: z
        .array(
          z.strictObject({
            path_prefix: z.string().startsWith('/'),
            methods: z.array(z.string().min(1)).optional(),
            priority: prioritySchema,
          }),
        )
        .default([]),
      identities: z
        .array(
          z.strictObject({
            subject: z.string().optional(),
            client_id: z.string().optional(),
            /** Matches when the identity has this scope. */
            scope: z.string().optional(),
            priority: prioritySchema,
          }),
        )
        .default([]),
    })
    .default({ default: 'normal', routes: [], identities: [] }),
  /**
   * Load shedding: load = max(event-loop delay / max_event_loop_delay_ms, in-flight / max_in_flight).
   * `background` is shed at load ≥ background_at, `normal` at load ≥ 1, `critical` never.
   */
  load_shedding: z
    .strictObject({
      enabled: z.boolean().default(false),
      max_event_loop_delay_ms: z.number().positive().default(200),
      max_in_flight: z.number().int().positive().default(1000),
      background_at: z.number().gt(0).lte(1).default(0.5),
      retry_after_s: z.number().int().positive().default(1),
    })
    .default({ enabled: false, max_event_loop_delay_ms: 200, max_in_flight: 1000, background_at: 0.5, retry_after_s: 1 }),
});
export type AbuseConfig = z.output<typeof abuseSchema>;

/**
 * The `abuse` configuration for the zero-config flag `--rate-limit SPEC` (e.g. `20/s`): one
 * limit named `default`, keyed by identity subject when known, else client IP, burst = COUNT.
 * @throws {Error} from {@link parseRateSpec} on a bad spec.
 */
export function zeroConfigAbuse(rateLimit: string): z.input<typeof abuseSchema> {
  parseRateSpec(rateLimit);
  return { rate_limits: [{ name: 'default', rate: rateLimit.trim(), key: 'identity_or_ip' }] };
}

interface Match {
  methods: 'all' | 'read' | 'write';
  pathPrefix: string | undefined;
  ops: Set<string> | undefined;
}

interface RateRule extends Match {
  name: string;
  limit: GcraLimit;
  cost: number;
  key: CompiledKey;
  storePrefix: string;
  dedupPrefix: string;
  policy: string;
  quota: number;
  windowS: number;
  windowMs: number;
}

interface ConcRule extends Match {
  name: string;
  max: number;
  key: CompiledKey;
  prefix: string;
}

function matches(m: Match, ctx: RequestContext): boolean {
  if (m.methods !== 'all' && ctx.isSafeMethod !== (m.methods === 'read')) return false;
  if (m.pathPrefix !== undefined && !ctx.path.startsWith(m.pathPrefix)) return false;
  if (m.ops !== undefined && (ctx.operation === undefined || !m.ops.has(ctx.operation.id))) return false;
  return true;
}

function quietly(r: Rejection, quiet: boolean): Rejection {
  return quiet ? { ...r, quiet: true } : r;
}

/** Last time (performance.now ms) a shedding event was emitted, per priority: one per second. */
const lastShedEvent = { critical: -Infinity, normal: -Infinity, background: -Infinity };

function build(cfg: AbuseConfig, env: ControlEnv): ControlInstance {
  const { store } = env;
  const api = env.apiName;
  const failMode: FailMode = cfg.on_store_error ?? (store as { failMode?: FailMode }).failMode ?? 'fail_open';
  const workers = workerCount();
  const names = new Set<string>();
  const unique = (n: string, where: string): void => {
    if (names.has(n)) throw new Error(`abuse.${where}: duplicate name "${n}"`);
    names.add(n);
  };
  const match = (c: { methods: Match['methods']; path_prefix?: string; operations?: string[] }): Match => ({
    methods: c.methods,
    pathPrefix: c.path_prefix,
    ops: c.operations ? new Set(c.operations) : undefined,
  });
  const phaseOf = (key: CompiledKey, ops: string[] | undefined, forced: RequestPhase | undefined, where: string): RequestPhase => {
    const natural: RequestPhase = ops ? 'abuse' : key.phase;
    if (forced === 'network' && natural !== 'network')
      throw new Error(`${where}: phase network needs an identity-free key (ip, client_cert, header:NAME, api) and no operations`);
    return forced ?? natural;
  };

  const rates: Record<'network' | 'abuse', RateRule[]> = { network: [], abuse: [] };
  cfg.rate_limits.forEach((l, i) => {
    const where = `abuse.rate_limits[${i}]`;
    unique(l.name, 'rate_limits');
    let key: CompiledKey;
    try {
      key = compileKey(l.key);
    } catch (e) {
      throw new Error(`${where}.key: ${(e as Error).message}`);
    }
    const { count, periodMs } = parseRateSpec(l.rate);
    const burst = l.burst ?? count;
    const limit = gcraLimit(count, periodMs, burst);
    const windowMs = burst * limit.emissionIntervalMs;
    const windowS = Math.max(1, Math.ceil(windowMs / 1000));
    const phase = phaseOf(key, l.operations, l.phase, where) as 'network' | 'abuse';
    rates[phase].push({
      ...match(l),
      name: l.name,
      limit,
      cost: l.cost,
      key,
      storePrefix: `rl:${api}:${l.name}:`,
      dedupPrefix: `rlx:${api}:${l.name}:`,
      policy: policyItem(l.name, burst, windowS),
      quota: burst,
      windowS,
      windowMs: Math.max(1000, windowMs),
    });
  });
  // Shortest window first: a request refused by a per-second limit does not eat the daily budget.
  for (const list of Object.values(rates)) list.sort((a, b) => a.windowMs - b.windowMs);

  const concs: Record<'network' | 'abuse', ConcRule[]> = { network: [], abuse: [] };
  cfg.concurrency.forEach((c, i) => {
    const where = `abuse.concurrency[${i}]`;
    unique(c.name, 'concurrency');
    let key: CompiledKey;
    try {
      key = compileKey(c.key);
    } catch (e) {
      throw new Error(`${where}.key: ${(e as Error).message}`);
    }
    const phase = phaseOf(key, c.operations, undefined, where) as 'network' | 'abuse';
    concs[phase].push({ ...match(c), name: c.name, max: Math.max(1, Math.floor(c.max / workers)), key, prefix: `cc:${api}:${c.name}:` });
  });

  const shed = cfg.load_shedding;
  const routes = cfg.priority.routes.map((r) => ({
    prefix: r.path_prefix,
    methods: r.methods ? new Set(r.methods.map((m) => m.toUpperCase())) : undefined,
    priority: r.priority,
  }));
  const identities = cfg.priority.identities;
  const defaultPriority = cfg.priority.default;
  if (shed.enabled) loadMonitor.acquire();
  let lastStoreError = -Infinity;

  /** 503 when the process is saturated for this request's priority class; `undefined` otherwise. */
  const shedCheck = (ctx: RequestContext): Verdict => {
    const p = ctx.priority;
    if (p === 'critical') return undefined;
    const delay = loadMonitor.delayMs();
    const load = Math.max(delay / shed.max_event_loop_delay_ms, loadMonitor.inFlight / shed.max_in_flight);
    if (load < (p === 'background' ? shed.background_at : 1)) return undefined;
    const now = performance.now();
    const quiet = now - lastShedEvent[p] < 1000;
    if (!quiet) lastShedEvent[p] = now;
    const problem = new Problem(503, 'load-shed', 'Service Unavailable', {
      detail: `The gateway is overloaded; ${p} requests are being shed.`,
      headers: { 'retry-after': String(shed.retry_after_s) },
    });
    return quietly(
      deny(problem, 'medium', { priority: p, event_loop_delay_ms: Math.round(delay), in_flight: loadMonitor.inFlight, load: Math.round(load * 100) / 100 }),
      quiet,
    );
  };

  const storeFailure = (ctx: RequestContext, rule: RateRule, err: unknown): Verdict => {
    const now = performance.now();
    const first = now - lastStoreError >= 1000;
    if (first) lastStoreError = now;
    const details = { limit: rule.name, store: store.kind, fail_mode: failMode, error: err instanceof Error ? err.message : String(err) };
    if (failMode === 'fail_open') {
      if (first) ctx.emit({ control: CONTROL, reason: 'rate-limit-store-error', action: 'allow', severity: 'high', details });
      return undefined;
    }
    const problem = new Problem(503, 'rate-limit-unavailable', 'Service Unavailable', {
      detail: 'The rate limiter is unavailable.',
      headers: { 'retry-after': '1' },
    });
    return quietly(deny(problem, 'high', details), !first);
  };

  const rateDeny = async (ctx: RequestContext, rule: RateRule, kv: string, res: GcraResult, policies: string, states: string): Promise<Rejection> => {
    const retryS = Math.max(1, Math.ceil(res.retryAfterMs / 1000));
    let first = true;
    try {
      first = await store.setIfAbsent(rule.dedupPrefix + kv, '1', rule.windowMs);
    } catch {
      // Without dedup state, err on the side of reporting.
    }
    const prevPolicy = ctx.responseHeaders.get('ratelimit-policy');
    const prevState = ctx.responseHeaders.get('ratelimit');
    const problem = new Problem(429, 'rate-limited', 'Too Many Requests', {
      detail: `Rate limit "${rule.name}" exceeded; retry after ${retryS} s.`,
      headers: {
        'retry-after': String(retryS),
        'ratelimit-policy': [prevPolicy, policies].filter((s) => s).join(', '),
        ratelimit: [prevState, states].filter((s) => s).join(', '),
      },
      extensions: { limit: rule.name },
    });
    const sev: Severity = 'low';
    return quietly(
      deny(problem, sev, { limit: rule.name, key: rule.key.kinds, quota: rule.quota, window_s: rule.windowS, retry_after_s: retryS, store: store.kind }),
      !first,
    );
  };

  function stage(phase: 'network' | 'abuse'): RequestStage | undefined {
    const rateRules = rates[phase];
    const concRules = concs[phase];
    const doShed = shed.enabled && phase === 'network';
    const setRoutePriority = phase === 'network' && (routes.length > 0 || defaultPriority !== 'normal');
    const setIdentityPriority = phase === 'abuse' && identities.length > 0;
    if (!doShed && !setRoutePriority && !setIdentityPriority && rateRules.length === 0 && concRules.length === 0) return undefined;
    const slots = new WeakMap<RequestContext, string[]>();
    const counted = new WeakSet<RequestContext>();

    return {
      control: CONTROL,
      phase,
      async run(ctx) {
        // 1. Priority and load shedding, before the request costs any work.
        if (setRoutePriority) {
          let p = defaultPriority;
          for (const r of routes) {
            if (ctx.path.startsWith(r.prefix) && (r.methods === undefined || r.methods.has(ctx.method))) {
              p = r.priority;
              break;
            }
          }
          ctx.priority = p;
        }
        if (setIdentityPriority && ctx.identity !== undefined) {
          const id = ctx.identity;
          for (const r of identities) {
            if (
              (r.subject === undefined || r.subject === id.subject) &&
              (r.client_id === undefined || r.client_id === id.clientId) &&
              (r.scope === undefined || id.scopes.includes(r.scope))
            ) {
              if (r.priority !== ctx.priority) {
                ctx.priority = r.priority;
                if (shed.enabled) {
                  const v = shedCheck(ctx);
                  if (v) return v;
                }
              }
              break;
            }
          }
        }
        if (doShed) {
          const v = shedCheck(ctx);
          if (v) return v;
          if (!ctx.signal.aborted) {
            counted.add(ctx);
            loadMonitor.inFlight++;
          }
        }

        // 2. GCRA rate limits, shortest window first.
        let policies = '';
        let states = '';
        for (const rule of rateRules) {
          if (!matches(rule, ctx)) continue;
          const kv = rule.key.value(ctx);
          if (kv === undefined) continue;
          let res: GcraResult;
          try {
            res = await store.gcra(rule.storePrefix + kv, rule.limit, rule.cost);
          } catch (err) {
            const v = storeFailure(ctx, rule, err);
            if (v) return v;
            continue;
          }
          policies = policies ? `${policies}, ${rule.policy}` : rule.policy;
          const item = rateLimitItem(rule.name, res.remaining, Math.ceil(res.resetAfterMs / 1000));
          states = states ? `${states}, ${item}` : item;
          if (!res.allowed) return rateDeny(ctx, rule, kv, res, policies, states);
        }
        if (cfg.headers && policies) {
          const pp = ctx.responseHeaders.get('ratelimit-policy');
          const ps = ctx.responseHeaders.get('ratelimit');
          ctx.responseHeaders.set('ratelimit-policy', pp ? `${pp}, ${policies}` : policies);
          ctx.responseHeaders.set('ratelimit', ps ? `${ps}, ${states}` : states);
        }

        // 3. Concurrency: slots are taken last, so nothing above has to give them back.
        if (concRules.length > 0 && !ctx.signal.aborted) {
          let taken: string[] | undefined;
          for (const c of concRules) {
            if (!matches(c, ctx)) continue;
            const kv = c.key.value(ctx);
            if (kv === undefined) continue;
            const key = c.prefix + kv;
            if (!concurrencyTable.tryAcquire(key, c.max)) {
              if (taken) for (const k of taken) concurrencyTable.release(k);
              let first = true;
              try {
                first = await store.setIfAbsent(`ccx:${api}:${c.name}:${kv}`, '1', 1000);
              } catch {
                // report when unsure
              }
              const problem = new Problem(429, 'concurrency-limited', 'Too Many Requests', {
                detail: `Too many concurrent requests (limit "${c.name}": ${c.max} in flight).`,
                headers: { 'retry-after': '1' },
                extensions: { limit: c.name },
              });
              return quietly(deny(problem, 'low', { limit: c.name, key: c.key.kinds, max: c.max }), !first);
            }
            (taken ??= []).push(key);
          }
          if (taken) slots.set(ctx, taken);
        }
        return undefined;
      },
      done(ctx: RequestContext, _outcome: RequestOutcome) {
        const taken = slots.get(ctx);
        if (taken !== undefined) {
          slots.delete(ctx);
          for (const k of taken) concurrencyTable.release(k);
        }
        if (counted.has(ctx)) {
          counted.delete(ctx);
          loadMonitor.inFlight--;
        }
      },
    };
  }

  const request: RequestStage[] = [];
  for (const p of ['network', 'abuse'] as const) {
    const s = stage(p);
    if (s) request.push(s);
  }
  let closed = false;
  return {
    request,
    close() {
      if (closed) return;
      closed = true;
      if (shed.enabled) loadMonitor.release();
    },
  };
}

export const abuseControl = defineControl({
  name: CONTROL,
  schema: abuseSchema,
  create(cfg, env) {
    return build(cfg, env);
  },
});
