/**
 * `dlp` control: egress data-loss prevention. Inspects response bodies (JSON, NDJSON, text, HTML,
 * CSV; `gzip`, `deflate`, `br` decoded) up to a size, finds sensitive values with validating
 * detectors and key-name context, and per route and detector redacts them (format-preserving
 * masks), blocks the response (problem details, not one byte of the body sent) or alerts.
 * A bulk-extraction guard caps records and distinct sensitive values per response and per
 * identity over a window (in the Store), optionally putting the identity on a temporary block list.
 *
 * On by default: cards, SSNs, IBANs and private keys are redacted; the bulk guard alerts.
 * OWASP API Security Top 10 2023 API3 (broken object property level authorization: excessive
 * data exposure) and API4 (unrestricted resource consumption: bulk extraction); PCI DSS 4.0
 * req. 3.4.1 (masking PAN when displayed).
 */
import { createHmac, randomBytes } from 'node:crypto';
import { Transform } from 'node:stream';
import { z } from 'zod';
import type { EventInput, Severity } from '../../events/event.ts';
import { defineControl, type ControlInstance } from '../../pipeline/control.ts';
import type { RequestContext } from '../../pipeline/context.ts';
import { Problem } from '../../pipeline/problem.ts';
import type { ResponseState } from '../../pipeline/stage.ts';
import { deny, type Verdict } from '../../pipeline/verdict.ts';
import type { Store } from '../../state/store.ts';
import { BUILTIN_DETECTORS, type BuiltinDetector } from './detectors.ts';
import { CorruptEncodingError, DecodedTooLargeError, decode, decoderFor, encode, encoderFor, parseCoding, type Coding } from '../../http/coding.ts';
import { Scanner, applyReplacementsToBuffer, compilePattern, type Finding, type PatternDetectorSpec, type ScanMode } from './scanner.ts';
import { StreamScanner, type StreamMode, type StreamStep } from './stream.ts';

export { isRampartApiKey, createRampartApiKey } from './apikey.ts';

/** What to do with a detector's findings. `off` does not run the detector. */
export const dlpActionSchema = z.enum(['redact', 'block', 'alert', 'off']);
export type DlpAction = z.output<typeof dlpActionSchema>;

const detector = (action: DlpAction) =>
  z
    .strictObject({
      action: dlpActionSchema.default(action),
      /** Minimum confidence (0–1) for a finding to count. */
      threshold: z.number().min(0).max(1).default(0.5),
    })
    .default({ action, threshold: 0.5 });

/** Defaults: redact cards, SSNs, IBANs and private keys; the rest is opt-in. */
const DEFAULT_ACTIONS: Record<BuiltinDetector, DlpAction> = {
  card: 'redact',
  ssn: 'redact',
  iban: 'redact',
  private_key: 'redact',
  email: 'off',
  phone: 'off',
  npi: 'off',
  icd10: 'off',
  mrn: 'off',
  jwt: 'off',
  aws_access_key: 'off',
  rampart_api_key: 'off',
  secret: 'off',
};

const detectorsShape = Object.fromEntries(BUILTIN_DETECTORS.map((d) => [d, detector(DEFAULT_ACTIONS[d])])) as {
  [K in BuiltinDetector]: ReturnType<typeof detector>;
};

const detectorName = z
  .string()
  .regex(/^[a-z][a-z0-9_]{0,39}$/, 'lower-case letters, digits and _')
  .refine((n) => !(BUILTIN_DETECTORS as readonly string[]).includes(n), 'this name belongs to a built-in detector');

const bulkSchema = z.strictObject({
  /** `alert` raises a high-severity event; `block` cuts the response off (no byte of it is sent) too. */
  action: z.enum(['alert', 'block']).default('alert'),
  /** Records per response (objects in the outermost arrays, NDJSON lines, CSV rows); 0 = no limit. */
  max_records: z.number().int().nonnegative().default(1000),
  /** Distinct sensitive values per response; 0 = no limit. */
  max_sensitive_values: z.number().int().nonnegative().default(100),
  /** Window of the per-identity counters, ms. */
  window_ms: z.number().int().positive().default(3_600_000),
  /** Records per identity per window; 0 = no limit. */
  identity_max_records: z.number().int().nonnegative().default(10_000),
  /** Distinct sensitive values per identity per window; 0 = no limit. */
  identity_max_sensitive_values: z.number().int().nonnegative().default(1000),
  /** When > 0 and action is `block`, the identity is refused for this many ms after a cut-off. */
  block_identity_ms: z.number().int().nonnegative().default(0),
});
const BULK_DEFAULTS = bulkSchema.parse({});

export const dlpSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** Largest body inspected, in bytes, both as received and once decoded (default 8 MiB). */
  max_body_bytes: z
    .number()
    .int()
    .positive()
    .default(8 * 1024 * 1024),
  /**
   * Larger bodies: `stream` (inspected as they stream: redacted, counted, cut off when a limit is
   * passed), `pass` (with an event) or `block` (502).
   */
  oversize: z.enum(['stream', 'pass', 'block']).default('stream'),
  /** Bodies of an unknown media type or content coding: `pass` (with an event) or `block` (502). */
  uninspectable: z.enum(['pass', 'block']).default('pass'),
  /** Media types passed without inspection and without an event (`type/*` wildcards allowed). */
  skip_types: z.array(z.string()).default(['image/*', 'audio/*', 'video/*', 'font/*']),
  /** Malformed or truncated JSON/compressed bodies: `pass` (scanned as text, truncated value cut, event) or `block` (502). */
  malformed: z.enum(['pass', 'block']).default('pass'),
  /** After redacting a compressed body: send it `reencode`d with the same coding, or as `identity`. */
  encoding: z.enum(['reencode', 'identity']).default('reencode'),
  /** Region for phone numbers written without `+` (ISO 3166-1 alpha-2). */
  phone_region: z
    .string()
    .regex(/^[A-Z]{2}$/)
    .default('US'),
  /** The API is a health API: ICD-10-CM codes are looked for everywhere, not only under diagnosis keys. */
  health_context: z.boolean().default(false),
  detectors: z
    .strictObject(detectorsShape)
    .default(Object.fromEntries(BUILTIN_DETECTORS.map((d) => [d, { action: DEFAULT_ACTIONS[d], threshold: 0.5 }])) as never),
  /** Medical record numbers: your pattern (linear-time regex), found with `mrn` key context. */
  mrn: z
    .strictObject({
      pattern: z.string().min(1),
      flags: z.string().default(''),
      keys: z.array(z.string()).default(['mrn', 'medical_record_number', 'patient_record']),
      /** Base confidence; key context adds 0.4 (default 0.3: matches count only under an MRN key). */
      confidence: z.number().min(0).max(1).default(0.3),
    })
    .optional(),
  /** Custom detectors: a linear-time regex (V8 `l` engine: no backreferences or lookaround). */
  custom: z
    .array(
      z.strictObject({
        name: detectorName,
        pattern: z.string().min(1),
        flags: z.string().default(''),
        keys: z.array(z.string()).default([]),
        confidence: z.number().min(0).max(1).default(0.9),
        action: dlpActionSchema.default('alert'),
        threshold: z.number().min(0).max(1).default(0.5),
      }),
    )
    .default([]),
  /** Per-route overrides; the first route whose path glob (`*` one segment, `**` any) and method match wins. */
  routes: z
    .array(
      z.strictObject({
        path: z.string().startsWith('/'),
        methods: z.array(z.string().toUpperCase()).optional(),
        /** Action per detector name (built-in or custom). */
        actions: z.record(z.string(), dlpActionSchema).default({}),
        bulk: bulkSchema.partial().optional(),
        health_context: z.boolean().optional(),
      }),
    )
    .default([]),
  bulk: bulkSchema.default(BULK_DEFAULTS),
  /**
   * Key for the HMAC that turns sensitive values into counter members (never stored in clear).
   * Set the same key on every node of a cluster sharing Redis; default: random per process.
   */
  hash_key: z.string().min(16).optional(),
});
export type DlpConfig = z.output<typeof dlpSchema>;
type BulkConfig = z.output<typeof bulkSchema>;

/** One compiled policy: the API-level one, or one per route. */
interface Policy {
  pathRe: RegExp | undefined;
  methods: ReadonlySet<string> | undefined;
  actions: ReadonlyMap<string, DlpAction>;
  redact: ReadonlySet<string>;
  scanner: Scanner | undefined;
  bulk: BulkConfig;
}

const JSON_TYPE = /^(?:application\/(?:[\w.+-]+\+)?json|text\/json)$/;
const NDJSON_TYPE = /^application\/(?:x-)?(?:ndjson|jsonl|jsonlines|json-seq)$/;
const TEXT_TYPE = /^(?:text\/[\w.+-]+|application\/(?:[\w.+-]+\+)?xml|application\/x-www-form-urlencoded|application\/(?:x-)?javascript|application\/graphql)$/;
const NO_BODY_STATUS = new Set([204, 205, 304]);

/** `/users/*` → regex: `*` one path segment, `**` any number. */
function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        re += '.*';
        i++;
      } else re += '[^/]*';
    } else re += c.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

function mediaType(v: string | string[] | undefined): { type: string; charset: string | undefined } | undefined {
  if (v === undefined) return undefined;
  const s = Array.isArray(v) ? (v[0] ?? '') : v;
  const [t, ...params] = s.split(';');
  let charset: string | undefined;
  for (const p of params) {
    const [k, val] = p.split('=');
    if (k?.trim().toLowerCase() === 'charset' && val) charset = val.trim().replace(/^"|"$/g, '').toLowerCase();
  }
  return { type: (t ?? '').trim().toLowerCase(), charset };
}

function matchesType(type: string, patterns: readonly string[]): boolean {
  for (const p of patterns) {
    const l = p.toLowerCase();
    if (l.endsWith('/*') ? type.startsWith(l.slice(0, -1)) : type === l) return true;
  }
  return false;
}

/** Counts and (bounded) paths per detector, for event details: never the values. */
function summarize(findings: readonly Finding[]): { counts: Record<string, number>; paths: string[] } {
  const counts: Record<string, number> = {};
  const paths = new Set<string>();
  for (const f of findings) {
    counts[f.detector] = (counts[f.detector] ?? 0) + 1;
    if (f.path !== '' && paths.size < 20) paths.add(f.path);
  }
  return { counts, paths: [...paths] };
}

/** Headers describing the exact bytes of a representation, wrong once the body changes. */
const REPRESENTATION_HEADERS = ['etag', 'content-md5', 'digest', 'content-digest', 'repr-digest', 'accept-ranges'];

export const dlpControl = defineControl({
  name: 'dlp',
  schema: dlpSchema,
  defaultConfig: {},
  create(cfg, env): ControlInstance {
    if (!cfg.enabled) return {};
    const hashKey = cfg.hash_key ?? randomBytes(32).toString('hex');
    const patterns: PatternDetectorSpec[] = [];
    if (cfg.mrn) patterns.push({ name: 'mrn', pattern: cfg.mrn.pattern, flags: cfg.mrn.flags, keys: cfg.mrn.keys, confidence: cfg.mrn.confidence });
    for (const c of cfg.custom) patterns.push({ name: c.name, pattern: c.pattern, flags: c.flags, keys: c.keys, confidence: c.confidence });
    // Validate patterns once, with the offending detector named.
    for (const p of patterns) compilePattern(p.name, p.pattern, p.flags);
    const known = new Set<string>([...BUILTIN_DETECTORS, ...cfg.custom.map((c) => c.name)]);
    const baseActions = new Map<string, DlpAction>();
    const thresholds: Record<string, number> = {};
    for (const d of BUILTIN_DETECTORS) {
      baseActions.set(d, d === 'mrn' && !cfg.mrn ? 'off' : cfg.detectors[d].action);
      thresholds[d] = cfg.detectors[d].threshold;
    }
    for (const c of cfg.custom) {
      baseActions.set(c.name, c.action);
      thresholds[c.name] = c.threshold;
    }

    const compile = (actions: Map<string, DlpAction>, bulk: BulkConfig, health: boolean, pathRe?: RegExp, methods?: string[]): Policy => {
      const on = new Set<string>();
      const redact = new Set<string>();
      for (const [d, a] of actions) {
        if (a !== 'off') on.add(d);
        if (a === 'redact') redact.add(d);
      }
      const bulkOn = bulk.max_sensitive_values > 0 || bulk.identity_max_sensitive_values > 0;
      const scanner =
        on.size > 0 || bulk.max_records > 0 || bulk.identity_max_records > 0 || bulkOn
          ? new Scanner({ detectors: on, thresholds, phoneRegion: cfg.phone_region, healthContext: health, patterns })
          : undefined;
      return { pathRe, methods: methods ? new Set(methods) : undefined, actions, redact, scanner, bulk };
    };

    const routes: Policy[] = cfg.routes.map((r, i) => {
      const actions = new Map(baseActions);
      for (const [d, a] of Object.entries(r.actions)) {
        if (!known.has(d)) throw new Error(`dlp.routes[${i}].actions: unknown detector "${d}"`);
        if (d === 'mrn' && !cfg.mrn && a !== 'off') throw new Error(`dlp.routes[${i}].actions.mrn: configure dlp.mrn.pattern first`);
        actions.set(d, a);
      }
      return compile(actions, { ...cfg.bulk, ...r.bulk }, r.health_context ?? cfg.health_context, globToRegExp(r.path), r.methods);
    });
    const base = compile(baseActions, cfg.bulk, cfg.health_context);

    const pick = (ctx: RequestContext): Policy => {
      for (const r of routes) {
        if (r.methods !== undefined && !r.methods.has(ctx.method)) continue;
        if (r.pathRe?.test(ctx.path)) return r;
      }
      return base;
    };

    const who = (ctx: RequestContext): string => (ctx.identity ? `sub:${ctx.identity.subject}` : `ip:${ctx.clientIp}`);
    const blockKey = (ctx: RequestContext) => `dlp:${env.apiName}:blocked:${who(ctx)}`;
    const anyBlockList = [base, ...routes].some((p) => p.bulk.action === 'block' && p.bulk.block_identity_ms > 0);
    const store: Store = env.store;

    const inspect = async (ctx: RequestContext, res: ResponseState): Promise<Verdict> => {
      if (ctx.method === 'HEAD' || res.status < 200 || NO_BODY_STATUS.has(res.status)) return undefined;
      const policy = pick(ctx);
      if (policy.scanner === undefined) return undefined;
      const mt = mediaType(res.headers['content-type']);
      let mode: ScanMode | 'sniff' | undefined;
      if (mt === undefined || mt.type === '') mode = 'sniff';
      else if (matchesType(mt.type, cfg.skip_types)) return undefined;
      else if (mt.charset?.startsWith('utf-16')) mode = undefined;
      else if (JSON_TYPE.test(mt.type)) mode = 'json';
      else if (NDJSON_TYPE.test(mt.type)) mode = 'ndjson';
      else if (TEXT_TYPE.test(mt.type)) mode = 'text';
      const coding = parseCoding(res.headers['content-encoding']);
      if (mode === undefined || coding === undefined) {
        const details = {
          reason: mode === undefined ? 'media-type' : 'content-coding',
          content_type: mt?.type,
          content_encoding: res.headers['content-encoding'],
        };
        if (cfg.uninspectable === 'block') {
          return deny(
            new Problem(502, 'response-not-inspectable', 'Bad Gateway', {
              detail: 'The upstream response could not be inspected and this API does not pass such responses.',
            }),
            'medium',
            details,
          );
        }
        ctx.emit({ control: 'dlp', reason: 'response-not-inspected', action: 'allow', severity: 'low', details });
        return undefined;
      }
      if (res.status === 206) mode = 'text'; // a byte range is not a whole JSON document
      const streamMode = (): StreamMode => (mode === 'json' || mode === 'ndjson' ? mode : mt?.type === 'text/csv' ? 'csv' : 'text');
      // An NDJSON stream of unknown length is inspected as it streams, never held back whole.
      if (mode === 'ndjson' && res.headers['content-length'] === undefined && cfg.oversize === 'stream') {
        return streamInspect(ctx, res, policy, 'ndjson', coding);
      }

      let raw: Buffer | undefined;
      try {
        raw = await res.readBody(cfg.max_body_bytes);
      } catch {
        return deny(
          new Problem(502, 'upstream-body-incomplete', 'Bad Gateway', { detail: 'The upstream response body could not be read completely.' }),
          'medium',
        );
      }
      let decoded = raw;
      let corrupt = false;
      if (raw !== undefined && coding !== null) {
        try {
          decoded = await decode(raw, coding, cfg.max_body_bytes);
        } catch (e) {
          if (e instanceof DecodedTooLargeError) decoded = undefined;
          else if (e instanceof CorruptEncodingError) {
            if (cfg.malformed === 'block') {
              return deny(new Problem(502, 'upstream-body-malformed', 'Bad Gateway', { detail: 'The upstream response body is malformed.' }), 'medium', {
                reason: 'content-coding',
              });
            }
            decoded = e.partial;
            corrupt = true;
          } else throw e;
        }
      }
      if (decoded === undefined) {
        if (cfg.oversize === 'stream') return streamInspect(ctx, res, policy, streamMode(), coding);
        const details = { limit: cfg.max_body_bytes, content_type: mt?.type };
        if (cfg.oversize === 'block') {
          return deny(
            new Problem(502, 'response-too-large', 'Bad Gateway', { detail: 'The upstream response is larger than this API inspects.' }),
            'medium',
            details,
          );
        }
        ctx.emit({ control: 'dlp', reason: 'response-not-inspected', action: 'allow', severity: 'low', details: { ...details, reason: 'too-large' } });
        return undefined;
      }

      const body = decoded.toString('latin1');
      if (mode === 'sniff') {
        const m = /^(?:\u00ef\u00bb\u00bf)?\s*([[{])/.exec(body.slice(0, 64));
        mode = m ? 'json' : 'text';
      }
      const result = policy.scanner.scan(body, mode, policy.redact);
      if (mt?.type === 'text/csv') result.records = Math.max(0, body.split('\n').filter((l) => l.trim() !== '').length - 1);

      let cutAt: number | undefined;
      if (result.malformed !== undefined || corrupt) {
        const details = { reason: corrupt ? 'content-coding' : result.malformed?.reason, offset: result.malformed?.offset };
        if (cfg.malformed === 'block') {
          return deny(new Problem(502, 'upstream-body-malformed', 'Bad Gateway', { detail: 'The upstream response body is malformed.' }), 'medium', details);
        }
        cutAt = result.malformed?.tailStart;
        ctx.emit({
          control: 'dlp',
          reason: 'response-body-malformed',
          action: 'allow',
          severity: 'low',
          details: { ...details, truncated_value_removed: cutAt !== undefined },
        });
      }

      // Actions per detector.
      const blocked: Finding[] = [];
      const redacted: Finding[] = [];
      const alerted: Finding[] = [];
      for (const f of result.findings) {
        const a = policy.actions.get(f.detector);
        if (a === 'block') blocked.push(f);
        else if (a === 'redact') redacted.push(f);
        else if (a === 'alert') alerted.push(f);
      }
      if (blocked.length > 0) {
        const s = summarize(blocked);
        return deny(new Problem(403, 'sensitive-data-blocked', 'Forbidden', { detail: 'The response contained data that this API may not return.' }), 'high', {
          ...s,
          types: Object.keys(s.counts),
        });
      }

      // Bulk-extraction guard.
      const bulk = await bulkCheck(ctx, policy.bulk, result.records, result.findings);
      if (bulk !== undefined) {
        if (policy.bulk.action === 'block') {
          if (policy.bulk.block_identity_ms > 0) {
            await store
              .set(blockKey(ctx), '1', policy.bulk.block_identity_ms)
              .catch((e: unknown) => env.log.warn('dlp: block list write failed', { error: (e as Error).message }));
          }
          return deny(
            new Problem(403, 'bulk-extraction', 'Forbidden', { detail: 'The response exceeded the amount of data this API returns to one caller.' }),
            'high',
            { ...bulk, identity_blocked_ms: policy.bulk.block_identity_ms || undefined },
          );
        }
        ctx.emit({ control: 'dlp', reason: 'bulk-extraction', action: 'alert', severity: 'high', details: bulk });
      }

      if (result.replacements.length > 0 || cutAt !== undefined || corrupt) {
        let out: Buffer = applyReplacementsToBuffer(decoded, result.replacements, cutAt);
        if (coding !== null && cfg.encoding === 'reencode' && !corrupt) out = await encode(out, coding as Coding);
        else delete res.headers['content-encoding'];
        for (const h of REPRESENTATION_HEADERS) delete res.headers[h];
        res.setBody(out);
      }
      if (redacted.length > 0) emitFindings(ctx, 'sensitive-data-redacted', 'redact', 'medium', redacted, result.records);
      if (alerted.length > 0) emitFindings(ctx, 'sensitive-data-detected', 'alert', 'medium', alerted, result.records);
      return undefined;
    };

    /** Per-response and per-identity limits; returns event details when a limit is exceeded. */
    const bulkCheck = async (
      ctx: RequestContext,
      b: BulkConfig,
      records: number,
      findings: readonly Finding[],
    ): Promise<Record<string, unknown> | undefined> => {
      const distinct = new Set<string>();
      for (const f of findings) distinct.add(`${f.detector}:${f.value}`);
      const exceeded: string[] = [];
      if (b.max_records > 0 && records > b.max_records) exceeded.push('records');
      if (b.max_sensitive_values > 0 && distinct.size > b.max_sensitive_values) exceeded.push('sensitive_values');
      let identityRecords: number | undefined;
      let identityValues: number | undefined;
      const id = who(ctx);
      try {
        if (b.identity_max_records > 0 && records > 0) {
          identityRecords = await store.incr(`dlp:${env.apiName}:rec:${id}`, records, b.window_ms);
          if (identityRecords > b.identity_max_records) exceeded.push('identity_records');
        }
        if (b.identity_max_sensitive_values > 0 && distinct.size > 0) {
          const key = `dlp:${env.apiName}:val:${id}`;
          // Only as many members as can still change the verdict are written.
          const members = [...distinct].slice(0, b.identity_max_sensitive_values + 1);
          const sizes = await Promise.all(
            members.map((m) =>
              store.addToSet(key, createHmac('sha256', hashKey).update(m).digest('base64url').slice(0, 22), b.window_ms, b.identity_max_sensitive_values + 1),
            ),
          );
          identityValues = Math.max(...sizes);
          if (identityValues > b.identity_max_sensitive_values) exceeded.push('identity_sensitive_values');
        }
      } catch (e) {
        env.log.warn('dlp: bulk counters unavailable', { error: (e as Error).message });
      }
      if (exceeded.length === 0) return undefined;
      return {
        exceeded,
        records,
        sensitive_values: distinct.size,
        identity_records: identityRecords,
        identity_sensitive_values: identityValues,
        limits: {
          max_records: b.max_records,
          max_sensitive_values: b.max_sensitive_values,
          identity_max_records: b.identity_max_records,
          identity_max_sensitive_values: b.identity_max_sensitive_values,
          window_ms: b.window_ms,
        },
      };
    };

    /**
     * The streaming path: decode (when coded), scan and redact segment by segment, count records,
     * and cut the response off (the transform errors, the gateway destroys the connection) when
     * a bulk limit is passed (action `block`), a `block` detector fires, or the body is malformed
     * and `malformed: block`. Nothing is held beyond a segment, so memory stays bounded.
     */
    const streamInspect = async (ctx: RequestContext, res: ResponseState, policy: Policy, mode: StreamMode, coding: Coding | null): Promise<Verdict> => {
      const scanner = policy.scanner as Scanner;
      const b = policy.bulk;
      const cut = b.action === 'block';
      const id = who(ctx);
      const recKey = `dlp:${env.apiName}:rec:${id}`;
      const valKey = `dlp:${env.apiName}:val:${id}`;
      let identityBase = 0;
      if (b.identity_max_records > 0) {
        try {
          identityBase = await store.incr(recKey, 0, b.window_ms);
        } catch (e) {
          env.log.warn('dlp: bulk counters unavailable', { error: (e as Error).message });
        }
      }
      const inf = Number.POSITIVE_INFINITY;
      const maxRecords = Math.min(
        b.max_records > 0 ? b.max_records : inf,
        b.identity_max_records > 0 ? Math.max(0, b.identity_max_records - identityBase) : inf,
      );
      const blockSet = new Set<string>();
      for (const [d, a] of policy.actions) if (a === 'block') blockSet.add(d);
      const ss = new StreamScanner(scanner, mode, policy.redact, blockSet, {
        maxRecords: cut ? maxRecords : inf,
        maxSensitiveValues: cut && b.max_sensitive_values > 0 ? b.max_sensitive_values : inf,
        distinctCap: Math.max(b.max_sensitive_values, b.identity_max_sensitive_values, 100) + 1,
      });
      const redacted: Finding[] = [];
      const alerted: Finding[] = [];
      let stored = 0; // distinct values already written to the identity's set
      let identityValues: number | undefined;
      let alertSent = false;
      let bytesOut = 0;
      let finished = false;

      const exceeded = (): string[] => {
        const x: string[] = [];
        const records = ss.recordCount;
        if (b.max_records > 0 && records > b.max_records) x.push('records');
        if (b.max_sensitive_values > 0 && ss.distinct.size > b.max_sensitive_values) x.push('sensitive_values');
        if (b.identity_max_records > 0 && identityBase + records > b.identity_max_records) x.push('identity_records');
        if (b.identity_max_sensitive_values > 0 && identityValues !== undefined && identityValues > b.identity_max_sensitive_values) {
          x.push('identity_sensitive_values');
        }
        return x;
      };
      const bulkDetails = (x: string[]) => ({
        exceeded: x,
        records: ss.recordCount,
        sensitive_values: ss.distinct.size,
        identity_records: b.identity_max_records > 0 ? identityBase + ss.recordCount : undefined,
        identity_sensitive_values: identityValues,
        limits: {
          max_records: b.max_records,
          max_sensitive_values: b.max_sensitive_values,
          identity_max_records: b.identity_max_records,
          identity_max_sensitive_values: b.identity_max_sensitive_values,
          window_ms: b.window_ms,
        },
        streamed: true,
        bytes_received: ss.bytesReceived,
        bytes_sent: bytesOut,
      });
      /** Writes the records to the identity's window counter once, when the stream ends or is cut. */
      const finish = async (): Promise<void> => {
        if (finished) return;
        finished = true;
        if (b.identity_max_records > 0 && ss.recordCount > 0) {
          await store
            .incr(recKey, ss.recordCount, b.window_ms)
            .catch((e: unknown) => env.log.warn('dlp: bulk counters unavailable', { error: (e as Error).message }));
        }
        if (redacted.length > 0) emitFindings(ctx, 'sensitive-data-redacted', 'redact', 'medium', redacted, ss.recordCount);
        if (alerted.length > 0) emitFindings(ctx, 'sensitive-data-detected', 'alert', 'medium', alerted, ss.recordCount);
      };
      const abort = async (why: string): Promise<Error> => {
        if (why === 'blocked') {
          const blocked = [...redacted, ...alerted].filter((f) => blockSet.has(f.detector));
          const s = summarize(blocked);
          ctx.emit({
            control: 'dlp',
            reason: 'sensitive-data-blocked',
            action: 'abort',
            severity: 'high',
            details: { ...s, types: Object.keys(s.counts), streamed: true, bytes_sent: bytesOut },
          });
        } else if (why === 'malformed') {
          ctx.emit({
            control: 'dlp',
            reason: 'response-body-malformed',
            action: 'abort',
            severity: 'medium',
            details: { reason: ss.malformed, streamed: true, bytes_sent: bytesOut },
          });
        } else {
          ctx.emit({
            control: 'dlp',
            reason: 'bulk-extraction',
            action: 'abort',
            severity: 'high',
            details: { ...bulkDetails(exceeded()), identity_blocked_ms: b.block_identity_ms || undefined },
          });
          if (b.block_identity_ms > 0) {
            await store
              .set(blockKey(ctx), '1', b.block_identity_ms)
              .catch((e: unknown) => env.log.warn('dlp: block list write failed', { error: (e as Error).message }));
          }
        }
        await finish();
        return new Error(`dlp: response cut off (${why})`);
      };
      const onStep = async (step: StreamStep): Promise<Buffer | undefined> => {
        for (const f of step.findings) {
          const a = policy.actions.get(f.detector);
          if (a === 'redact') redacted.push(f);
          else if (a === 'alert' || a === 'block') alerted.push(f);
        }
        if (step.stop !== undefined) throw new StopError(await abort(step.stop), join(step.out));
        if (ss.malformed !== undefined && cfg.malformed === 'block') throw await abort('malformed');
        // Distinct values per identity (keyed HMACs), as they appear; only as many as can change the verdict.
        if (b.identity_max_sensitive_values > 0 && ss.distinct.size > stored && stored <= b.identity_max_sensitive_values) {
          const fresh = [...ss.distinct].slice(stored, b.identity_max_sensitive_values + 1);
          stored = ss.distinct.size;
          try {
            const sizes = await Promise.all(
              fresh.map((m) =>
                store.addToSet(
                  valKey,
                  createHmac('sha256', hashKey).update(m).digest('base64url').slice(0, 22),
                  b.window_ms,
                  b.identity_max_sensitive_values + 1,
                ),
              ),
            );
            identityValues = Math.max(identityValues ?? 0, ...sizes);
          } catch (e) {
            env.log.warn('dlp: bulk counters unavailable', { error: (e as Error).message });
          }
        }
        const x = exceeded();
        if (x.length > 0) {
          if (cut) throw await abort('bulk');
          if (!alertSent) {
            alertSent = true;
            ctx.emit({ control: 'dlp', reason: 'bulk-extraction', action: 'alert', severity: 'high', details: bulkDetails(x) });
          }
        }
        return join(step.out);
      };
      const join = (parts: Buffer[]): Buffer | undefined => {
        if (parts.length === 0) return undefined;
        const out = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
        bytesOut += out.length;
        return out;
      };
      /** Fails the transform; what was released before the limit is sent first. */
      const fail = (t: Transform, e: unknown, cb: (err: Error) => void): void => {
        if (e instanceof StopError && e.released !== undefined) {
          t.push(e.released);
          // Let the released bytes reach the socket before the connection is cut.
          setTimeout(() => cb(e.cause as Error), 20);
        } else cb(e as Error);
      };
      const transform = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          onStep(ss.write(chunk)).then(
            (out) => cb(null, out),
            (e: unknown) => fail(this, e, cb),
          );
        },
        flush(cb) {
          const last = ss.end();
          if (last.truncated && cfg.malformed === 'pass') {
            ctx.emit({
              control: 'dlp',
              reason: 'response-body-malformed',
              action: 'allow',
              severity: 'low',
              details: { reason: ss.malformed, streamed: true, truncated_value_removed: true },
            });
          }
          onStep(last)
            .then(async (out) => {
              await finish();
              cb(null, out);
            })
            .catch((e: unknown) => fail(this, e, cb));
        },
      });
      if (coding !== null) res.pipeThrough(decoderFor(coding));
      res.pipeThrough(transform);
      if (coding !== null && cfg.encoding === 'reencode') res.pipeThrough(encoderFor(coding));
      else delete res.headers['content-encoding'];
      for (const h of REPRESENTATION_HEADERS) delete res.headers[h];
      ctx.emit({ control: 'dlp', reason: 'response-streamed', action: 'allow', severity: 'info', details: { mode, content_encoding: coding ?? undefined } });
      return undefined;
    };

    const instance: ControlInstance = {
      response: [
        {
          control: 'dlp',
          phase: 'dlp',
          async run(ctx, res) {
            try {
              return await inspect(ctx, res);
            } catch (e) {
              // Fail closed: a response that could not be inspected is not sent.
              env.log.error('dlp: inspection failed', { error: (e as Error).message });
              return deny(
                new Problem(502, 'response-inspection-failed', 'Bad Gateway', { detail: 'The gateway could not inspect the upstream response.' }),
                'high',
              );
            }
          },
        },
      ],
    };
    if (anyBlockList) {
      instance.request = [
        {
          control: 'dlp',
          phase: 'abuse',
          async run(ctx) {
            let v: string | null = null;
            try {
              v = await store.get(blockKey(ctx));
            } catch (e) {
              env.log.warn('dlp: block list unavailable', { error: (e as Error).message });
            }
            if (v === null) return undefined;
            return deny(new Problem(403, 'identity-blocked', 'Forbidden', { detail: 'This caller is temporarily blocked after a bulk extraction.' }), 'medium');
          },
        },
      ];
    }
    return instance;
  },
});

/** A stop of the streaming path, carrying the bytes released before the limit was passed. */
class StopError extends Error {
  readonly released: Buffer | undefined;
  constructor(cause: Error, released: Buffer | undefined) {
    super(cause.message, { cause });
    this.released = released;
  }
}

function emitFindings(
  ctx: RequestContext,
  reason: string,
  action: EventInput['action'],
  severity: Severity,
  findings: readonly Finding[],
  records: number,
): void {
  const s = summarize(findings);
  ctx.emit({ control: 'dlp', reason, action, severity, details: { counts: s.counts, types: Object.keys(s.counts), paths: s.paths, records } });
}
