/**
 * The configuration schema: the single source of the TypeScript configuration types and of the
 * JSON Schema printed by `rampart config schema`. Unknown keys are refused everywhere, so a typo
 * is an error, never a silently ignored setting.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { CONTROLS } from '../controls/index.ts';
import { gatewayNetworkSchema } from '../controls/network/index.ts';

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

/** Lowest severity a sink receives (default: every event). */
const minSeverity = z.enum(['info', 'low', 'medium', 'high', 'critical']).default('info');

const eventSinkSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('stdout'), min_severity: minSeverity }),
  z.strictObject({ type: z.literal('file'), path: z.string().min(1), min_severity: minSeverity }),
  z.strictObject({ type: z.literal('sqlite'), path: z.string().min(1), min_severity: minSeverity }),
  /** Alerting: JSON POST with an HMAC-SHA-256 signature header, retries with backoff, bounded queue. */
  z.strictObject({
    type: z.literal('webhook'),
    url: z.url({ protocol: /^https?$/ }),
    /** HMAC key shared with the receiver; use `${ENV_VAR}`. */
    secret: z.string().min(16),
    headers: z.record(z.string(), z.string()).default({}),
    timeout_ms: z.number().int().positive().default(5000),
    max_attempts: z.number().int().min(1).default(5),
    backoff_ms: z.number().int().positive().default(500),
    max_backoff_ms: z.number().int().positive().default(30000),
    max_queue: z.number().int().positive().default(1000),
    concurrency: z.number().int().min(1).default(2),
    min_severity: z.enum(['info', 'low', 'medium', 'high', 'critical']).default('high'),
  }),
  /** Alerting: RFC 5424 syslog over UDP or TCP (octet-counted framing). */
  z.strictObject({
    type: z.literal('syslog'),
    transport: z.enum(['udp', 'tcp']).default('udp'),
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535).default(514),
    facility: z.union([z.string(), z.number().int().min(0).max(23)]).default('authpriv'),
    app_name: z.string().default('rampart'),
    enterprise_id: z.number().int().positive().default(32473),
    max_message_bytes: z.number().int().positive().optional(),
    min_severity: minSeverity,
  }),
]);

const controlsShape: Record<string, z.ZodType> = {};
for (const c of CONTROLS) controlsShape[c.name] = z.union([z.literal(false), c.schema]).optional();
/** Per-API controls: each key a control name; `false` turns off a control that is on by default. */
export const controlsSchema = z.strictObject(controlsShape);

/**
 * TLS towards the upstream (`https://` targets): the upstream's certificate is always verified
 * (chain, validity, host name); `ca` replaces the public roots with a private CA, and `cert` +
 * `key` present a client certificate (mutual TLS to the upstream). Paths are relative to the
 * configuration file.
 */
export const upstreamTlsSchema = z
  .strictObject({
    /** PEM bundle of the CAs trusted for the upstream certificate (default: Node's public roots). */
    ca: z.array(z.string().min(1)).optional(),
    /** Client certificate chain (PEM) presented to the upstream. */
    cert: z.string().min(1).optional(),
    /** Its private key (PEM). */
    key: z.string().min(1).optional(),
    /** Name checked against the upstream certificate and sent as SNI (default: the target's host). */
    server_name: z.string().min(1).optional(),
    min_version: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
  })
  .refine((t) => (t.cert === undefined) === (t.key === undefined), { message: 'cert and key go together', path: ['cert'] });

export const upstreamSchema = z.strictObject({
  /** One or more target base URLs (http or https), used round-robin. */
  targets: z.array(z.url({ protocol: /^https?$/ })).min(1),
  /** TLS settings for `https://` targets. */
  tls: upstreamTlsSchema.optional(),
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

const tlsVersionSchema = z.enum(['TLSv1.2', 'TLSv1.3']);
const certKeySchema = z.strictObject({
  /** Certificate chain file (PEM: leaf first, then intermediates). */
  cert: z.string().min(1),
  /** Private key file (PEM). */
  key: z.string().min(1),
  /** Names this certificate serves by SNI (default: the DNS names of its SAN; `*.example.com` allowed). */
  server_names: z.array(z.string().min(1)).optional(),
});

/** Mutual TLS at the listener (every API inherits it; an API's `transport` control may be stricter). */
export const clientAuthSchema = z.strictObject({
  /** `off`: no client certificate requested; `optional`: requested, checked when sent; `require`: refused without one. */
  mode: z.enum(['off', 'optional', 'require']).default('off'),
  /** PEM bundles of the CAs trusted for client certificates (chain and validity checked in the handshake). */
  ca: z.array(z.string().min(1)).default([]),
  /** CRL files (PEM or DER), each signed by one of the trusted CAs; revoked certificates are refused. */
  crl: z.array(z.string().min(1)).default([]),
  /** Serial numbers (hex, colons allowed) refused whatever the CRL says. */
  deny_serials: z.array(z.string().min(1)).default([]),
});

/**
 * The HTTPS listener: TLS 1.2/1.3, certificates by SNI, HTTP/2 by ALPN (with HTTP/1.1 fallback),
 * certificate files reloaded on change. Paths are relative to the configuration file.
 */
export const tlsSchema = z
  .strictObject({
    /** Default certificate chain file (PEM), served when no SNI name matches. */
    cert: z.string().min(1).optional(),
    /** Its private key file (PEM). */
    key: z.string().min(1).optional(),
    /** Further certificates, chosen by the SNI name the client sends. */
    certificates: z.array(certKeySchema).default([]),
    min_version: tlsVersionSchema.default('TLSv1.2'),
    max_version: tlsVersionSchema.default('TLSv1.3'),
    /** Offer HTTP/2 by ALPN (`h2`, then `http/1.1`). */
    http2: z.boolean().default(true),
    /** Re-read certificate, key and CA files when they change, without dropping connections. */
    watch: z.boolean().default(true),
    client_auth: clientAuthSchema.default({ mode: 'off', ca: [], crl: [], deny_serials: [] }),
  })
  .refine((t) => (t.cert === undefined) === (t.key === undefined), { message: 'cert and key go together', path: ['cert'] })
  .refine((t) => t.cert !== undefined || t.certificates.length > 0, { message: 'a certificate is required (cert and key, or certificates)', path: ['cert'] })
  .refine((t) => t.min_version <= t.max_version, { message: 'min_version is above max_version', path: ['min_version'] });

export const configSchema = z.strictObject({
  /** Address of the API listener. */
  listen: addressSchema.default('127.0.0.1:8080'),
  /** Serve HTTPS (and HTTP/2) on `listen` instead of plain HTTP. */
  tls: tlsSchema.optional(),
  admin: z
    .strictObject({
      /** Address of the admin listener (`/metrics`, `/healthz`, `/readyz`). Never expose it publicly. */
      listen: addressSchema.default('127.0.0.1:9901'),
    })
    .default({ listen: '127.0.0.1:9901' }),
  /** Peers whose `X-Forwarded-For` / `Forwarded` headers are believed. Everything else is ignored. */
  trusted_proxies: z.array(cidrSchema).default([]),
  /** Gateway-wide IP and country rules, a floor for every API (the `network` control's lists; see README). */
  network: gatewayNetworkSchema.optional(),
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
      sinks: z.array(eventSinkSchema).prefault([{ type: 'stdout' }]),
      /** Extra header names whose values are redacted in events and logs (API-key headers). */
      redact_headers: z.array(z.string()).default([]),
    })
    .prefault({}),
  /** One access-log line per request on stdout. */
  access_log: z.boolean().default(true),
  apis: z.array(apiSchema).min(1),
});

export type RampartConfig = z.output<typeof configSchema>;
export type ApiConfig = z.output<typeof apiSchema>;
export type UpstreamConfig = z.output<typeof upstreamSchema>;
export type UpstreamTlsConfig = z.output<typeof upstreamTlsSchema>;
export type TlsConfig = z.output<typeof tlsSchema>;
export type ClientAuthConfig = z.output<typeof clientAuthSchema>;
export type EventSinkConfig = z.output<typeof eventSinkSchema>;

/** The JSON Schema (2020-12) of the configuration file, for editors. */
export function configJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}
