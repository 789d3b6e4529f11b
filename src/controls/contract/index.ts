/**
 * `contract` control: the OpenAPI document as the allow-list (OWASP API Security Top 10 2023
 * API9 improper inventory management, API3 broken object property level authorization).
 *
 * Request stage (phase `contract`): routes the request to its documented operation and sets
 * `ctx.operation`; refuses undocumented paths (404) and methods (405 with `Allow`, RFC 9110
 * §15.5.6), undeclared query parameters, missing or invalid parameters (deserialized per `style`/
 * `explode`), unsupported `Content-Type` (415, RFC 9110 §15.5.16), bodies that fail their schema,
 * and mass assignment (undeclared or `readOnly` properties). Every violation is listed with its
 * location in one RFC 9457 problem.
 *
 * Response stage (phase `contract`): JSON responses of documented operations are checked against
 * the declared response schema; undeclared and `writeOnly` properties are removed (or the
 * response is blocked), undeclared status codes and schema violations are reported.
 *
 * Modes: `enforce` blocks, `monitor` lets everything through and emits one event per finding;
 * the mode can be overridden per operation.
 */
import { z } from 'zod';
import type { ErrorObject } from 'ajv';
import { type CompiledDocument, type CompiledOperation, compileDocument, matchMedia, matchResponse } from '../../openapi/compile.ts';
import { decodeBody, requestFacts, responseFacts } from '../../openapi/http.ts';
import { loadOpenApi, resolveSource } from '../../openapi/load.ts';
import { deserializePath, deserializeQuery, deserializeSimple, ParamFormatError, parseCookies, parseFormBody, parseQuery } from '../../openapi/params.ts';
import { safeDecode } from '../../openapi/router.ts';
import { WRITEONLY_KEYWORD } from '../../openapi/schema.ts';
import type { RequestContext } from '../../pipeline/context.ts';
import { defineControl } from '../../pipeline/control.ts';
import { Problem } from '../../pipeline/problem.ts';
import type { ResponseState } from '../../pipeline/stage.ts';
import { deny, type Verdict } from '../../pipeline/verdict.ts';
import { bodyViolations, MAX_VIOLATIONS, paramViolations, pointerOf, type Violation } from './violations.ts';

const modeSchema = z.enum(['enforce', 'monitor']);

export const contractSchema = z.strictObject({
  /** The OpenAPI 3.0/3.1 document: a file (relative to the configuration file) or an http(s) URL. */
  openapi: z.string().min(1),
  /** `enforce` blocks violations; `monitor` lets them through and emits events. */
  mode: modeSchema.default('enforce'),
  /** Prefix of the document's paths in request paths (e.g. `/api` when `/users` is served at `/api/users`). */
  base_path: z
    .string()
    .regex(/^\/([^?#]*[^/?#])?$/, 'a path starting with "/" and not ending with "/"')
    .default('/'),
  /** Per-operation overrides by `operationId`. */
  operations: z.record(z.string(), z.strictObject({ mode: modeSchema })).default({}),
  request: z
    .strictObject({
      /** Query parameters the operation does not declare: `reject` (400) or `allow`. */
      undeclared_query: z.enum(['reject', 'allow']).default('reject'),
      /** Body properties the schema does not declare (mass assignment): `reject` or `allow`. */
      undeclared_properties: z.enum(['reject', 'allow']).default('reject'),
      /** `readOnly` properties sent in a request body: `reject` or `allow`. */
      read_only_properties: z.enum(['reject', 'allow']).default('reject'),
      /** A body sent to an operation that documents none: `reject` or `allow`. */
      undeclared_body: z.enum(['reject', 'allow']).default('reject'),
      /** Largest body read for validation, bytes (the API's body cap applies too). */
      max_body_bytes: z
        .number()
        .int()
        .positive()
        .default(1024 * 1024),
    })
    .prefault({}),
  response: z
    .strictObject({
      /**
       * Undeclared (and `writeOnly`) properties in JSON responses: `strip` them, `block` the
       * response (502), `report` them (event only), or `off` (no response checks).
       */
      filter: z.enum(['strip', 'block', 'report', 'off']).default('strip'),
      /** Status codes the operation does not document: `report`, `block` (502) or `allow`. */
      undeclared_status: z.enum(['report', 'block', 'allow']).default('report'),
      /** Other schema violations (types, required...): `report` or `block` (502). */
      schema_violations: z.enum(['report', 'block']).default('report'),
      /** Largest (decoded) response body inspected, bytes. */
      max_body_bytes: z
        .number()
        .int()
        .positive()
        .default(4 * 1024 * 1024),
      /** A JSON response too large (or in an unknown encoding) to inspect: `block` (502) or `pass`. */
      uninspectable: z.enum(['block', 'pass']).default('block'),
    })
    .prefault({}),
});
export type ContractConfig = z.output<typeof contractSchema>;
export type ContractConfigInput = z.input<typeof contractSchema>;

/**
 * Zero-config: `rampart serve --upstream URL --openapi FILE` enforces the document with response
 * filtering on. Returns the `contract` control configuration (input form); a relative path is
 * resolved against the working directory.
 * @throws {Error} when `file` is empty.
 */
export function contractZeroConfig(file: string): ContractConfigInput {
  if (!file) throw new Error('--openapi needs a file or URL');
  return { openapi: resolveSource(file, process.cwd()), mode: 'enforce', response: { filter: 'strip' } };
}

type Mode = 'enforce' | 'monitor';

interface Finding {
  problem: Problem;
  severity: 'low' | 'medium' | 'high';
  details?: Record<string, unknown>;
}

const NO_BODY_STATUS = new Set([204, 205, 304]);

function hasBody(ctx: RequestContext): boolean {
  const te = ctx.headers['transfer-encoding'];
  if (te !== undefined) return true;
  const cl = ctx.headers['content-length'];
  return cl !== undefined && cl !== '0';
}

function problemFor(violations: Violation[]): Finding {
  const extensions = { errors: violations };
  const has = (k: Violation['kind'], loc?: Violation['location']) => violations.some((v) => v.kind === k && (loc === undefined || v.location === loc));
  const details = { errors: violations.map((v) => ({ location: v.location, kind: v.kind, name: v.name, pointer: v.pointer, keyword: v.keyword })) };
  if (has('undeclared', 'body') || has('read-only', 'body')) {
    return {
      problem: new Problem(400, 'mass-assignment', 'Bad Request', { detail: 'The request body sets properties the API contract does not allow.', extensions }),
      severity: 'high',
      details,
    };
  }
  if (has('undeclared', 'query')) {
    return {
      problem: new Problem(400, 'parameter-undeclared', 'Bad Request', {
        detail: 'The request has query parameters the API contract does not declare.',
        extensions,
      }),
      severity: 'medium',
      details,
    };
  }
  if (violations.some((v) => v.location === 'body')) {
    const missing = violations.length === 1 && violations[0]?.kind === 'missing' && violations[0].pointer === undefined;
    return {
      problem: new Problem(400, missing ? 'body-missing' : 'body-invalid', 'Bad Request', {
        detail: missing ? 'The operation requires a request body.' : 'The request body does not match the API contract.',
        extensions,
      }),
      severity: 'low',
      details,
    };
  }
  return {
    problem: new Problem(400, 'parameter-invalid', 'Bad Request', { detail: 'The request parameters do not match the API contract.', extensions }),
    severity: 'low',
    details,
  };
}

function deletePointer(root: unknown, pointer: string): boolean {
  const toks = pointer
    .split('/')
    .slice(1)
    .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
  let cur: unknown = root;
  for (let i = 0; i < toks.length - 1; i++) {
    if (cur === null || typeof cur !== 'object') return false;
    cur = (cur as Record<string, unknown>)[toks[i] as string];
  }
  const last = toks[toks.length - 1];
  if (cur === null || typeof cur !== 'object' || Array.isArray(cur) || last === undefined || !Object.hasOwn(cur, last)) return false;
  delete (cur as Record<string, unknown>)[last];
  return true;
}

/** The compiled contract of one API: the request and response checks, usable without the gateway. */
export interface ContractEngine {
  readonly doc: CompiledDocument;
  /** The request check (what the request stage runs). */
  checkRequest(ctx: RequestContext): Promise<Verdict>;
  /** The response check (what the response stage runs). */
  checkResponse(ctx: RequestContext, res: ResponseState): Promise<Verdict>;
}

/**
 * Loads and compiles the document and builds the checks.
 * @throws {Error} `openapi: FILE: at POINTER: REASON` for a document that cannot be loaded or
 *   compiled, or `operations.ID: ...` for an override naming an unknown operation.
 */
export async function createContract(cfg: ContractConfig, configDir: string): Promise<ContractEngine> {
  let doc: CompiledDocument;
  try {
    const loaded = await loadOpenApi(cfg.openapi, configDir);
    doc = compileDocument(loaded, {
      validators: true,
      closeRequest: cfg.request.undeclared_properties === 'reject',
      rejectReadOnly: cfg.request.read_only_properties === 'reject',
      closeResponse: cfg.response.filter !== 'off',
    });
  } catch (e) {
    throw new Error(`openapi: ${(e as Error).message}`);
  }
  for (const id of Object.keys(cfg.operations)) {
    if (!doc.byId.has(id)) throw new Error(`operations.${id}: no operation with this operationId in ${cfg.openapi}`);
  }
  const base = cfg.base_path === '/' ? '' : cfg.base_path;
  const modeOf = (op: CompiledOperation | undefined): Mode => (op ? (cfg.operations[op.id]?.mode ?? cfg.mode) : cfg.mode);
  const rq = cfg.request;
  const rs = cfg.response;

  /** Enforce: deny. Monitor: emit the same finding as an event and continue. */
  function verdict(ctx: RequestContext, mode: Mode, f: Finding): Verdict {
    if (mode === 'enforce') return deny(f.problem, f.severity, f.details);
    ctx.emit({ control: 'contract', reason: f.problem.code, action: 'monitor', severity: f.severity, details: f.details });
    return undefined;
  }

  async function checkRequest(ctx: RequestContext): Promise<Verdict> {
    let path = ctx.path;
    if (base !== '') path = path === base ? '/' : path.startsWith(`${base}/`) ? path.slice(base.length) : '';
    const route = path === '' ? undefined : doc.router.match(path);
    if (route === undefined) {
      return verdict(ctx, cfg.mode, {
        problem: new Problem(404, 'operation-undocumented', 'Not Found', { detail: 'No operation of the API contract matches this path.' }),
        severity: 'low',
      });
    }
    const method = ctx.method;
    const op = route.methods.get(method) ?? (method === 'HEAD' ? route.methods.get('GET') : undefined);
    if (op === undefined) {
      const allow = [...route.methods.keys()];
      if (allow.includes('GET') && !allow.includes('HEAD')) allow.push('HEAD');
      return verdict(ctx, cfg.mode, {
        problem: new Problem(405, 'method-undocumented', 'Method Not Allowed', {
          detail: `The API contract documents ${allow.join(', ')} for this path.`,
          headers: { allow: allow.join(', ') },
        }),
        severity: 'medium',
        details: { template: route.template, allowed: allow },
      });
    }
    const decoded: Record<string, string> = {};
    for (const k in route.raw) decoded[k] = safeDecode(route.raw[k] as string);
    ctx.operation = { id: op.id, template: op.template, params: decoded };
    const mode = modeOf(op);

    // Parameters.
    const violations: Violation[] = [];
    const values: Record<string, Record<string, unknown>> = { path: {}, query: {}, header: {}, cookie: {} };
    const query = parseQuery(ctx.rawQuery);
    const claimed = new Set<string>();
    let cookies: Map<string, string> | undefined;
    for (const p of op.params) {
      try {
        let v: unknown;
        if (p.in === 'path') v = deserializePath(route.raw[p.name] ?? '', p);
        else if (p.in === 'query') v = deserializeQuery(query, p, claimed);
        else if (p.in === 'header') {
          const h = ctx.headers[p.name];
          v = h === undefined ? undefined : deserializeSimple(Array.isArray(h) ? h.join(', ') : h, p);
        } else {
          cookies ??= parseCookies(ctx.headers.cookie);
          const c = cookies.get(p.name);
          v = c === undefined ? undefined : deserializeSimple(c, p);
        }
        if (v === '' && p.in === 'query' && p.allowEmptyValue) continue;
        if (v !== undefined) (values[p.in] as Record<string, unknown>)[p.name] = v;
      } catch (e) {
        if (!(e instanceof ParamFormatError)) throw e;
        violations.push({ location: p.in, kind: 'malformed', name: p.name, message: e.message });
      }
    }
    if (rq.undeclared_query === 'reject' && !op.openQuery) {
      for (const name of query.keys()) {
        if (claimed.has(name) || op.queryNames.has(name)) continue;
        violations.push({ location: 'query', kind: 'undeclared', name, message: 'is not declared by the operation' });
        if (violations.length >= MAX_VIOLATIONS) break;
      }
    }
    if (op.validateParams && !op.validateParams(values)) violations.push(...paramViolations(op.validateParams.errors as ErrorObject[]));

    // Body.
    const sent = hasBody(ctx);
    let parsed: unknown;
    if (op.body === undefined) {
      if (sent && rq.undeclared_body === 'reject') violations.push({ location: 'body', kind: 'undeclared', message: 'the operation takes no request body' });
    } else if (!sent) {
      if (op.body.required) violations.push({ location: 'body', kind: 'missing', message: 'is required' });
    } else {
      const ct = ctx.headers['content-type'];
      const media = matchMedia(op.body.media, ct);
      if (media === undefined) {
        const supported = op.body.media.map((m) => m.range);
        return verdict(ctx, mode, {
          problem: new Problem(415, 'media-type-unsupported', 'Unsupported Media Type', {
            detail: `The operation accepts ${supported.join(', ')}.`,
            headers: ctx.method === 'PATCH' ? { 'accept-patch': supported.join(', ') } : {},
            extensions: { supported },
          }),
          severity: 'low',
          details: { content_type: typeof ct === 'string' ? ct.slice(0, 100) : undefined, supported },
        });
      }
      if (media.kind === 'json' || media.kind === 'form') {
        const buf = await ctx.body.read(rq.max_body_bytes);
        if (buf.length === 0) {
          if (op.body.required) violations.push({ location: 'body', kind: 'missing', message: 'is required' });
        } else {
          let ok = true;
          if (media.kind === 'json') {
            try {
              parsed = JSON.parse(buf.toString('utf8'));
            } catch {
              ok = false;
              violations.push({ location: 'body', kind: 'malformed', message: 'is not valid JSON' });
            }
          } else {
            try {
              parsed = parseFormBody(buf.toString('latin1'));
            } catch (e) {
              ok = false;
              violations.push({ location: 'body', kind: 'malformed', message: (e as Error).message });
            }
          }
          if (ok && media.validate && !media.validate(parsed)) violations.push(...bodyViolations(media.validate.errors as ErrorObject[]));
        }
      }
    }
    requestFacts.set(ctx, { params: values, body: parsed });
    if (violations.length) return verdict(ctx, mode, problemFor(violations.slice(0, MAX_VIOLATIONS)));
    return undefined;
  }

  function responseVerdict(
    ctx: RequestContext,
    mode: Mode,
    policy: 'block' | 'report',
    reason: string,
    detail: string,
    severity: 'low' | 'medium' | 'high',
    details: Record<string, unknown>,
  ): Verdict {
    if (mode === 'enforce' && policy === 'block') return deny(new Problem(502, reason, 'Bad Gateway', { detail }), severity, details);
    ctx.emit({ control: 'contract', reason, action: mode === 'monitor' ? 'monitor' : 'alert', severity, details });
    return undefined;
  }

  async function checkResponse(ctx: RequestContext, res: ResponseState): Promise<Verdict> {
    const id = ctx.operation?.id;
    const op = id === undefined ? undefined : doc.byId.get(id);
    if (op === undefined) return undefined;
    const mode = modeOf(op);
    const declared = matchResponse(op.responses, res.status);
    if (declared === undefined) {
      if (rs.undeclared_status === 'allow') return undefined;
      return responseVerdict(
        ctx,
        mode,
        rs.undeclared_status,
        'response-status-undeclared',
        'The upstream answered with a status code the API contract does not document.',
        'low',
        { status: res.status },
      );
    }
    if (rs.filter === 'off' || ctx.method === 'HEAD' || NO_BODY_STATUS.has(res.status)) return undefined;
    const ct = res.headers['content-type'];
    const media = matchMedia(declared.media, typeof ct === 'string' ? ct : undefined);
    if (media === undefined || media.kind !== 'json' || media.validate === undefined) return undefined;
    const validate = media.validate;

    const raw = await res.readBody(rs.max_body_bytes);
    let buf: Buffer | undefined;
    if (raw !== undefined) {
      try {
        buf = await decodeBody(raw, res.headers['content-encoding'], rs.max_body_bytes);
      } catch {
        buf = undefined;
      }
    }
    const strict = rs.filter === 'strip' || rs.filter === 'block';
    if (buf === undefined) {
      if (rs.uninspectable === 'pass' || !strict) {
        ctx.emit({
          control: 'contract',
          reason: 'response-uninspectable',
          action: mode === 'monitor' ? 'monitor' : 'alert',
          severity: 'medium',
          details: { status: res.status },
        });
        return undefined;
      }
      return responseVerdict(
        ctx,
        mode,
        'block',
        'response-uninspectable',
        'The upstream response is too large or encoded in a way the gateway cannot inspect.',
        'medium',
        { status: res.status, limit: rs.max_body_bytes },
      );
    }
    if (buf.length === 0) return undefined;
    let json: unknown;
    try {
      json = JSON.parse(buf.toString('utf8'));
    } catch {
      return responseVerdict(ctx, mode, rs.schema_violations, 'response-schema-violation', 'The upstream response is not valid JSON.', 'medium', {
        status: res.status,
        errors: [{ kind: 'malformed' }],
      });
    }
    if (validate(json)) {
      responseFacts.set(ctx, { buf: raw as Buffer, json });
      return undefined;
    }
    let errors = validate.errors as ErrorObject[];
    const isExtra = (e: ErrorObject) => e.keyword === 'additionalProperties' || e.keyword === 'unevaluatedProperties' || e.keyword === WRITEONLY_KEYWORD;
    const extras = errors.filter(isExtra);
    const removed: string[] = [];
    if (extras.length) {
      const pointers = [...new Set(extras.map((e) => (e.keyword === WRITEONLY_KEYWORD ? e.instancePath : pointerOf(e))))];
      if (mode === 'monitor' || rs.filter === 'report') {
        ctx.emit({
          control: 'contract',
          reason: 'response-properties-undeclared',
          action: mode === 'monitor' ? 'monitor' : 'alert',
          severity: 'high',
          details: { status: res.status, pointers: pointers.slice(0, MAX_VIOLATIONS), count: pointers.length },
        });
        errors = errors.filter((e) => !isExtra(e));
      } else if (rs.filter === 'block') {
        return deny(
          new Problem(502, 'response-properties-undeclared', 'Bad Gateway', {
            detail: 'The upstream response carries properties the API contract does not declare.',
          }),
          'high',
          {
            status: res.status,
            pointers: pointers.slice(0, MAX_VIOLATIONS),
            count: pointers.length,
          },
        );
      } else {
        // strip: remove, then validate again (a removal can settle a failed alternative).
        for (let round = 0; round < 4; round++) {
          const ptrs = [...new Set(errors.filter(isExtra).map((e) => (e.keyword === WRITEONLY_KEYWORD ? e.instancePath : pointerOf(e))))];
          if (ptrs.length === 0) break;
          // Deepest first, so parents are still there.
          ptrs.sort((a, b) => b.length - a.length);
          let any = false;
          for (const p of ptrs) {
            if (!deletePointer(json, p)) continue;
            removed.push(p);
            any = true;
          }
          if (!any) break;
          errors = validate(json) ? [] : (validate.errors as ErrorObject[]);
        }
        errors = errors.filter((e) => !isExtra(e));
        if (removed.length) {
          removed.sort();
          const out = Buffer.from(JSON.stringify(json));
          delete res.headers['content-encoding'];
          delete res.headers.etag;
          res.setBody(out);
          responseFacts.set(ctx, { buf: out, json });
          ctx.emit({
            control: 'contract',
            reason: 'response-properties-stripped',
            action: 'redact',
            severity: 'high',
            details: { status: res.status, pointers: removed.slice(0, MAX_VIOLATIONS), count: removed.length },
          });
        }
      }
    }
    if (errors.length) {
      const list = bodyViolations(errors).map((v) => ({ kind: v.kind, pointer: v.pointer, keyword: v.keyword, message: v.message }));
      return responseVerdict(ctx, mode, rs.schema_violations, 'response-schema-violation', 'The upstream response does not match the API contract.', 'medium', {
        status: res.status,
        errors: list,
      });
    }
    if (removed.length === 0) responseFacts.set(ctx, { buf: raw as Buffer, json });
    return undefined;
  }

  return { doc, checkRequest, checkResponse };
}

export const contractControl = defineControl({
  name: 'contract',
  schema: contractSchema,
  async create(cfg, env) {
    const engine = await createContract(cfg, env.configDir);
    return {
      request: [{ control: 'contract', phase: 'contract', run: (ctx) => engine.checkRequest(ctx) }],
      response: [{ control: 'contract', phase: 'contract', run: (ctx, res) => engine.checkResponse(ctx, res) }],
    };
  },
});
