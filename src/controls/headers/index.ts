/**
 * `headers` control: security response headers (OWASP REST Security Cheat Sheet, "Security
 * headers"; HSTS per RFC 6797) and removal of headers that fingerprint the upstream.
 * On by default.
 */
import { z } from 'zod';
import { defineControl } from '../../pipeline/control.ts';

export const headersSchema = z.strictObject({
  /** `Strict-Transport-Security`: sent on HTTPS requests (`https`), always, or never. */
  hsts: z
    .strictObject({
      mode: z.enum(['https', 'always', 'off']).default('https'),
      /** max-age in seconds (default one year). */
      max_age: z.number().int().nonnegative().default(31536000),
      include_subdomains: z.boolean().default(true),
    })
    .default({ mode: 'https', max_age: 31536000, include_subdomains: true }),
  /** Headers set on every response (override the defaults; an empty string removes a default). */
  set: z.record(z.string(), z.string()).default({}),
  /** Upstream response headers removed before the response reaches the client. */
  remove: z.array(z.string()).default(['server', 'x-powered-by', 'x-aspnet-version', 'x-aspnetmvc-version', 'x-runtime', 'x-generator']),
});
export type HeadersConfig = z.output<typeof headersSchema>;

/** Defaults recommended for JSON APIs by the OWASP REST Security Cheat Sheet. */
export const DEFAULT_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'same-origin',
};

export const headersControl = defineControl({
  name: 'headers',
  schema: headersSchema,
  defaultConfig: {},
  create(cfg) {
    const set: [string, string][] = [];
    const merged: Record<string, string> = { ...DEFAULT_SECURITY_HEADERS };
    for (const [k, v] of Object.entries(cfg.set)) merged[k.toLowerCase()] = v;
    for (const [k, v] of Object.entries(merged)) if (v !== '') set.push([k, v]);
    const remove = cfg.remove.map((h) => h.toLowerCase());
    const hsts = `max-age=${cfg.hsts.max_age}${cfg.hsts.include_subdomains ? '; includeSubDomains' : ''}`;
    return {
      response: [
        {
          control: 'headers',
          phase: 'headers',
          run(ctx, res) {
            for (const h of remove) delete res.headers[h];
            for (const [k, v] of set) res.headers[k] = v;
            if (cfg.hsts.mode === 'always' || (cfg.hsts.mode === 'https' && ctx.scheme === 'https')) {
              res.headers['strict-transport-security'] = hsts;
            }
            return undefined;
          },
        },
      ],
    };
  },
});
