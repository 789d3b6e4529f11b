/**
 * The configuration schema: the single source of the TypeScript configuration types and of the
 * JSON Schema printed by `rampart config schema`. Unknown keys are refused everywhere, so a typo
 * is an error, never a silently ignored setting.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { CONTROLS } from '../controls/index.ts';

/** `host:port` or `[v6]:port`. */
export const addressSchema = z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:]+):\d{1,5}$/, 'expected host:port, e.g. 127.0.0.1:8080');

/** An IPv4/IPv6 address or CIDR block. */
export const cidrSchema = z.string().refine((s) => {
  const [ip, bits, extra] = s.split('/');
  if (extra !== undefined || ip === undefined) return false;
  const v = isIP(ip);
  if (v === 0) return false;
  if (bits === undefined) return true;
  const n = Number(bits);
  return /^\d+$/.test(bits) && n >= 0 && n <= (v === 4 ? 32 : 128);
}, 'expected an IP address or CIDR block, e.g. 10.0.0.0/8');

const eventSinkSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('stdout') }),
  z.strictObject({ type: z.literal('file'), path: z.string().min(1) }),
  z.strictObject({ type: z.literal('sqlite'), path: z.string().min(1) }),
]);

const controlsShape: Record<string, z.ZodType> = {};
for (const c of CONTROLS) controlsShape[c.name] = z.union([z.literal(false), c.schema]).optional();
/** Per-API controls: each key a control name; `false` turns off a control that is on by default. */
export const controlsSchema = z.strictObject(controlsShape);

export const upstreamSchema = z.strictObject({
  /** One or more target base URLs (http or https), used round-robin. */
  targets: z.array(z.url({ protocol: /^https?$/ })).min(1),
  /** Remove the API's `match.path_prefix` before forwarding. */
  strip_prefix: z.boolean().default(false),
  timeouts: z
    .strictObject({
      connect_ms: z.number().int().positive().default(5000),
      headers_ms: z.number().int().positive().default(30000),
      body_idle_ms: z.number().int().positive().default(30000),
    })
    .default({ connect_ms: 5000, headers_ms: 30000, body_idle_ms: 30000 }),
  /** Passive health: a target failing `failures` times in a row is skipped for `cooldown_ms`. */
  health: z
    .strictObject({
      failures: z.number().int().positive().default(3),
      cooldown_ms: z.number().int().positive().default(10000),
    })
    .default({ failures: 3, cooldown_ms: 10000 }),
  /** Maximum connections per target. */
  connections: z.number().int().positive().default(256),
});

export const apiSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'letters, digits, _ . - only'),
  match: z
    .strictObject({
      /** Host header to match (exact, case-insensitive, port ignored); any host when absent. */
      host: z.string().optional(),
      path_prefix: z.string().startsWith('/').default('/'),
    })
    .default({ path_prefix: '/' }),
  upstream: upstreamSchema,
  controls: controlsSchema.default({}),
});

export const configSchema = z.strictObject({
  /** Address of the API listener. */
  listen: addressSchema.default('127.0.0.1:8080'),
  admin: z
    .strictObject({
      /** Address of the admin listener (`/metrics`, `/healthz`, `/readyz`). Never expose it publicly. */
      listen: addressSchema.default('127.0.0.1:9901'),
    })
    .default({ listen: '127.0.0.1:9901' }),
  /** Peers whose `X-Forwarded-For` / `Forwarded` headers are believed. Everything else is ignored. */
  trusted_proxies: z.array(cidrSchema).default([]),
  /** Worker processes (`auto` = CPU count). */
  workers: z.union([z.number().int().min(1).max(64), z.literal('auto')]).default(1),
  /** How long SIGTERM waits for in-flight requests before closing them, in ms. */
  drain_timeout_ms: z.number().int().nonnegative().default(10000),
  state: z
    .strictObject({
      /** `memory` (default, one process) or a `redis://host:port` URL shared by a cluster. */
      store: z.string().default('memory'),
      /** Bound of the memory store in keys. */
      memory_max_keys: z.number().int().positive().default(100000),
    })
    .default({ store: 'memory', memory_max_keys: 100000 }),
  events: z
    .strictObject({
      sinks: z.array(eventSinkSchema).default([{ type: 'stdout' }]),
      /** Extra header names whose values are redacted in events and logs (API-key headers). */
      redact_headers: z.array(z.string()).default([]),
    })
    .default({ sinks: [{ type: 'stdout' }], redact_headers: [] }),
  /** One access-log line per request on stdout. */
  access_log: z.boolean().default(true),
  apis: z.array(apiSchema).min(1),
});

export type RampartConfig = z.output<typeof configSchema>;
export type ApiConfig = z.output<typeof apiSchema>;
export type UpstreamConfig = z.output<typeof upstreamSchema>;
export type EventSinkConfig = z.output<typeof eventSinkSchema>;

/** The JSON Schema (2020-12) of the configuration file, for editors. */
export function configJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}
