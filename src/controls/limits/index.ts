/**
 * `limits` control: URL length, header count and size, and the request body cap per API.
 * On by default. The body cap is enforced by the gateway on the bytes actually received
 * (a chunked body without `Content-Length` cannot slip past it); this stage sets the cap and
 * refuses a declared `Content-Length` over it before any byte is read.
 * OWASP API Security Top 10 2023 API4 (unrestricted resource consumption).
 */
import { z } from 'zod';
import { defineControl } from '../../pipeline/control.ts';
import { Problem } from '../../pipeline/problem.ts';
import { deny } from '../../pipeline/verdict.ts';

export const limitsSchema = z.strictObject({
  /** Maximum request-target length in bytes (path and query). */
  url_bytes: z.number().int().positive().default(8192),
  /** Maximum number of request header fields. */
  header_count: z.number().int().positive().default(100),
  /** Maximum total size of request header names and values in bytes. */
  header_bytes: z.number().int().positive().default(32768),
  /** Maximum request body size in bytes (default 10 MiB). */
  body_bytes: z
    .number()
    .int()
    .nonnegative()
    .default(10 * 1024 * 1024),
});
export type LimitsConfig = z.output<typeof limitsSchema>;

export const limitsControl = defineControl({
  name: 'limits',
  schema: limitsSchema,
  defaultConfig: {},
  create(cfg) {
    return {
      request: [
        {
          control: 'limits',
          phase: 'limits',
          run(ctx) {
            ctx.maxBodyBytes = cfg.body_bytes;
            if (ctx.target.length > cfg.url_bytes) {
              return deny(new Problem(414, 'uri-too-long', 'URI Too Long', { detail: `The request target exceeds ${cfg.url_bytes} bytes.` }), 'low', {
                length: ctx.target.length,
                limit: cfg.url_bytes,
              });
            }
            const raw = ctx.req.rawHeaders;
            const count = raw.length / 2;
            if (count > cfg.header_count) {
              return deny(
                new Problem(431, 'too-many-headers', 'Request Header Fields Too Large', { detail: `More than ${cfg.header_count} header fields.` }),
                'low',
                { count, limit: cfg.header_count },
              );
            }
            let bytes = 0;
            for (let i = 0; i < raw.length; i++) bytes += (raw[i] as string).length;
            if (bytes > cfg.header_bytes) {
              return deny(
                new Problem(431, 'headers-too-large', 'Request Header Fields Too Large', { detail: `Header fields exceed ${cfg.header_bytes} bytes.` }),
                'low',
                { bytes, limit: cfg.header_bytes },
              );
            }
            const cl = ctx.headers['content-length'];
            if (cl !== undefined && Number(cl) > cfg.body_bytes) {
              return deny(new Problem(413, 'body-too-large', 'Content Too Large', { detail: `The request body exceeds ${cfg.body_bytes} bytes.` }), 'low', {
                declared: Number(cl),
                limit: cfg.body_bytes,
              });
            }
            return undefined;
          },
        },
      ],
    };
  },
});
