/**
 * `authz` control: authorization after identity and contract (OWASP API Security Top 10 2023
 * API1 broken object level authorization (BOLA), API5 broken function level authorization (BFLA)).
 *
 * Request stage (phase `authz`), in this order:
 * 1. the operation's OpenAPI security requirements (OAS 3.1 §4.8.30: alternatives, each a set of
 *    schemes with scopes) against the identity's authentication method and scopes; missing scopes
 *    → 403 `insufficient-scope` with `WWW-Authenticate: Bearer error="insufficient_scope",
 *    scope="..."` (RFC 6750 §3.1); no identity → 401 `authentication-required`;
 * 2. function-level rules (`kind: function`), CEL expressions that must be true → 403 `function-denied`;
 * 3. the BOLA enumeration signal: one identity reading many distinct object ids of one operation
 *    within a window (counted in the state store) → an event, or 429 `bola-enumeration` with `block`;
 * 4. object-level rules (`kind: object`) → 403 `object-denied`.
 *
 * Response stage (phase `authz`): response rules, CEL over `response` (status, headers, JSON body),
 * e.g. every item's owner is the caller; a false result → 403 `response-object-denied` and nothing
 * of the upstream body is sent.
 *
 * CEL (https://cel.dev, `@bufbuild/cel`) expressions are compiled at configuration load; they see
 * `request` (`method`, `path` (path parameters, strings), `query` (first value per name),
 * `headers`, `body` (parsed JSON or form, else null), `operation`, `template`), `identity`
 * (`sub`/`subject`, `scopes`, `claims`, `client_id`, `issuer`, `methods`, `authenticated`) and, in
 * response rules, `response`. Anything but `true`, evaluation errors included, denies (fail closed).
 */
import { createHash } from 'node:crypto';
import { type CelProgram as Program, compileCel, isCelError } from '../../cel/index.ts';
import { z } from 'zod';
import { type CompiledDocument, compileDocument, type SecurityRequirement } from '../../openapi/compile.ts';
import { decodeBody, requestFacts, responseFacts } from '../../openapi/http.ts';
import { loadOpenApi, resolveSource } from '../../openapi/load.ts';
import { parseQuery } from '../../openapi/params.ts';
import type { Identity, RequestContext } from '../../pipeline/context.ts';
import { type ControlEnv, defineControl } from '../../pipeline/control.ts';
import { Problem, wwwAuthenticate } from '../../pipeline/problem.ts';
import type { ResponseState } from '../../pipeline/stage.ts';
import { deny, type Verdict } from '../../pipeline/verdict.ts';

const selector = {
  /** Name used in events and errors (default `rules[i]`). */
  name: z.string().min(1).optional(),
  /** `operationId`s the rule applies to (with `tags`: either matches). Neither: every operation. */
  operations: z.array(z.string().min(1)).optional(),
  /** OpenAPI tags the rule applies to (needs `openapi`). */
  tags: z.array(z.string().min(1)).optional(),
  /** CEL expression that must evaluate to `true`. */
  allow: z.string().min(1),
};

export const authzSchema = z.strictObject({
  /** The OpenAPI document (same file as the `contract` control): security requirements and tags. */
  openapi: z.string().min(1).optional(),
  /** Enforce each operation's OpenAPI security requirements (`openapi`) or not (`off`). */
  scopes: z.enum(['openapi', 'off']).default('openapi'),
  /** Override of the required scopes per `operationId` (the configuration may override the document). */
  operation_scopes: z.record(z.string(), z.array(z.string())).default({}),
  /**
   * Identity methods that satisfy a security scheme, by scheme name. Defaults by scheme type:
   * oauth2, openIdConnect, http bearer → `jwt`, `introspection`; apiKey → `api_key`;
   * mutualTLS → `mtls`; http basic → `basic`.
   */
  scheme_methods: z.record(z.string(), z.array(z.string().min(1)).min(1)).default({}),
  /** `realm` of the challenges (default: the API name). */
  realm: z.string().optional(),
  rules: z.array(z.strictObject({ ...selector, kind: z.enum(['function', 'object']).default('object') })).default([]),
  response_rules: z.array(z.strictObject(selector)).default([]),
  response: z
    .strictObject({
      /** Largest (decoded) response body evaluated, bytes; larger responses of ruled operations are refused (502). */
      max_body_bytes: z
        .number()
        .int()
        .positive()
        .default(4 * 1024 * 1024),
    })
    .prefault({}),
  enumeration: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** Window in milliseconds. */
      window_ms: z.number().int().positive().default(60_000),
      /** Distinct object ids of one operation one identity may touch per window. */
      max_distinct: z.number().int().positive().default(50),
      /** `alert` (one event per window) or `block` (429 until the window ends). */
      action: z.enum(['alert', 'block']).default('alert'),
      /** Operations watched (default: every operation with path parameters). */
      operations: z.array(z.string().min(1)).optional(),
    })
    .prefault({}),
});
export type AuthzConfig = z.output<typeof authzSchema>;
export type AuthzConfigInput = z.input<typeof authzSchema>;

/**
 * Zero-config (`--openapi FILE` with `--issuer`): enforce the document's security requirements
 * (scopes per operation), with the default enumeration signal (alert). A relative path is resolved
 * against the working directory.
 */
export function authzZeroConfig(file: string): AuthzConfigInput {
  return { openapi: resolveSource(file, process.cwd()), scopes: 'openapi' };
}

interface CompiledRule {
  name: string;
  kind: 'function' | 'object' | 'response';
  /** Operation ids it applies to; `undefined` = all. */
  ops: Set<string> | undefined;
  program: Program;
}

const ANON: Record<string, unknown> = { sub: '', subject: '', scopes: [], claims: {}, client_id: '', issuer: '', methods: [], authenticated: false };

function identityVars(i: Identity | undefined): Record<string, unknown> {
  if (i === undefined) return ANON;
  return {
    sub: i.subject,
    subject: i.subject,
    scopes: i.scopes,
    claims: i.claims,
    client_id: i.clientId ?? '',
    issuer: i.issuer ?? '',
    methods: i.methods,
    authenticated: true,
  };
}

function headerVars(h: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k in h) {
    const v = h[k];
    if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

/** The default identity methods of a Security Scheme Object (OAS 3.1 §4.8.27). */
function defaultMethods(scheme: Record<string, unknown> | undefined): string[] {
  if (scheme === undefined) return [];
  switch (scheme.type) {
    case 'oauth2':
    case 'openIdConnect':
      return ['jwt', 'introspection'];
    case 'http':
      return String(scheme.scheme).toLowerCase() === 'bearer' ? ['jwt', 'introspection'] : String(scheme.scheme).toLowerCase() === 'basic' ? ['basic'] : [];
    case 'apiKey':
      return ['api_key'];
    case 'mutualTLS':
      return ['mtls'];
    default:
      return [];
  }
}

/** The authorization engine of one API, usable without the gateway. */
export interface AuthzEngine {
  checkRequest(ctx: RequestContext): Promise<Verdict>;
  checkResponse(ctx: RequestContext, res: ResponseState): Promise<Verdict>;
}

/**
 * Builds the engine: loads the document (when given), compiles every CEL expression.
 * @throws {Error} naming the setting: an invalid CEL expression (with its position), an unknown
 *   operation or tag, a document that cannot be loaded, or rules by tag without `openapi`.
 */
export async function createAuthz(cfg: AuthzConfig, env: Pick<ControlEnv, 'apiName' | 'configDir' | 'store'>): Promise<AuthzEngine> {
  let doc: CompiledDocument | undefined;
  if (cfg.openapi !== undefined) {
    try {
      doc = compileDocument(await loadOpenApi(cfg.openapi, env.configDir), {
        validators: false,
        closeRequest: false,
        closeResponse: false,
        rejectReadOnly: false,
      });
    } catch (e) {
      throw new Error(`openapi: ${(e as Error).message}`);
    }
  }
  const known = (id: string, where: string) => {
    if (doc !== undefined && !doc.byId.has(id)) throw new Error(`${where}: no operation "${id}" in ${cfg.openapi}`);
  };
  const select = (r: { operations?: string[]; tags?: string[] }, where: string): Set<string> | undefined => {
    if (r.operations === undefined && r.tags === undefined) return undefined;
    const ids = new Set<string>();
    for (const id of r.operations ?? []) {
      known(id, `${where}.operations`);
      ids.add(id);
    }
    if (r.tags !== undefined) {
      if (doc === undefined) throw new Error(`${where}.tags: selecting by tag needs "openapi"`);
      for (const t of r.tags) {
        const ops = doc.operations.filter((o) => o.tags.includes(t));
        if (ops.length === 0) throw new Error(`${where}.tags: no operation is tagged "${t}"`);
        for (const o of ops) ids.add(o.id);
      }
    }
    return ids;
  };
  const rules: CompiledRule[] = cfg.rules.map((r, i) => ({
    name: r.name ?? `rules[${i}]`,
    kind: r.kind,
    ops: select(r, `rules[${i}]`),
    program: compileCel(r.allow, `rules[${i}].allow`),
  }));
  const functionRules = rules.filter((r) => r.kind === 'function');
  const objectRules = rules.filter((r) => r.kind === 'object');
  const responseRules: CompiledRule[] = cfg.response_rules.map((r, i) => ({
    name: r.name ?? `response_rules[${i}]`,
    kind: 'response',
    ops: select(r, `response_rules[${i}]`),
    program: compileCel(r.allow, `response_rules[${i}].allow`),
  }));
  for (const id of Object.keys(cfg.operation_scopes)) known(id, `operation_scopes.${id}`);
  const enumOps = cfg.enumeration.operations === undefined ? undefined : new Set(cfg.enumeration.operations);
  for (const id of cfg.enumeration.operations ?? []) known(id, 'enumeration.operations');
  const realm = cfg.realm ?? env.apiName;
  const schemes = doc?.securitySchemes ?? {};
  const methodsOf = (name: string): string[] => cfg.scheme_methods[name] ?? defaultMethods(schemes[name]);

  function requirementsOf(opId: string | undefined): SecurityRequirement[] {
    if (opId === undefined) return [];
    const override = cfg.operation_scopes[opId];
    if (override !== undefined) return [{ '': override }];
    if (cfg.scopes === 'off' || doc === undefined) return [];
    return doc.byId.get(opId)?.security ?? [];
  }

  function checkScopes(ctx: RequestContext): Verdict {
    const reqs = requirementsOf(ctx.operation?.id);
    if (reqs.length === 0 || reqs.some((r) => Object.keys(r).length === 0)) return undefined;
    const id = ctx.identity;
    if (id === undefined) {
      return deny(
        new Problem(401, 'authentication-required', 'Authentication required', {
          detail: 'This operation requires authentication.',
          headers: { 'www-authenticate': wwwAuthenticate('Bearer', { realm }) },
        }),
        'low',
      );
    }
    let missingFor: string[] | undefined;
    for (const r of reqs) {
      let methodsOk = true;
      const need: string[] = [];
      for (const [scheme, scopes] of Object.entries(r)) {
        if (scheme !== '' && !methodsOf(scheme).some((m) => id.methods.includes(m))) methodsOk = false;
        for (const s of scopes ?? []) if (!need.includes(s)) need.push(s);
      }
      if (!methodsOk) continue;
      const missing = need.filter((s) => !id.scopes.includes(s));
      if (missing.length === 0) return undefined;
      missingFor ??= need;
    }
    if (missingFor === undefined) {
      return deny(
        new Problem(401, 'authentication-method-not-accepted', 'Authentication required', {
          detail: 'This operation does not accept the way the caller authenticated.',
          headers: { 'www-authenticate': wwwAuthenticate('Bearer', { realm }) },
        }),
        'medium',
        { methods: id.methods, schemes: reqs.map((r) => Object.keys(r)) },
      );
    }
    const scope = missingFor.join(' ');
    return deny(
      new Problem(403, 'insufficient-scope', 'Insufficient scope', {
        detail: `This operation requires the scope(s): ${scope}.`,
        headers: {
          'www-authenticate': wwwAuthenticate('Bearer', {
            realm,
            error: 'insufficient_scope',
            error_description: 'The access token lacks a required scope',
            scope,
          }),
        },
      }),
      'medium',
      { required: missingFor, granted: id.scopes.slice(0, 50) },
    );
  }

  function requestVars(ctx: RequestContext): Record<string, unknown> {
    const facts = requestFacts.get(ctx);
    let body: unknown = facts?.body ?? null;
    if (facts === undefined && ctx.body.buffered !== undefined && /json/i.test(String(ctx.headers['content-type'] ?? ''))) {
      try {
        body = JSON.parse(ctx.body.buffered.toString('utf8'));
      } catch {
        body = null;
      }
    }
    const query: Record<string, string> = {};
    for (const [k, v] of parseQuery(ctx.rawQuery)) query[k] = v[0] as string;
    return {
      method: ctx.method,
      path: ctx.operation?.params ?? {},
      query,
      headers: headerVars(ctx.headers as Record<string, string | string[] | undefined>),
      body,
      operation: ctx.operation?.id ?? '',
      template: ctx.operation?.template ?? '',
      api: ctx.apiName,
    };
  }

  function evaluate(list: CompiledRule[], ctx: RequestContext, vars: Record<string, unknown>): { rule: CompiledRule; error?: string } | undefined {
    const opId = ctx.operation?.id;
    for (const r of list) {
      if (r.ops !== undefined && (opId === undefined || !r.ops.has(opId))) continue;
      const out = r.program(vars);
      if (out === true) continue;
      return { rule: r, error: isCelError(out) ? String((out as Error).message).slice(0, 200) : undefined };
    }
    return undefined;
  }

  async function enumeration(ctx: RequestContext): Promise<Verdict> {
    const e = cfg.enumeration;
    const op = ctx.operation;
    if (!e.enabled || op === undefined) return undefined;
    const values = Object.values(op.params);
    if (values.length === 0 || (enumOps !== undefined && !enumOps.has(op.id))) return undefined;
    const who = ctx.identity?.subject ?? `ip:${ctx.clientIp}`;
    const key = `authz:enum:${env.apiName}:${op.id}:${createHash('sha256').update(who).digest('base64url').slice(0, 22)}`;
    let n: number;
    try {
      n = await env.store.addToSet(key, values.join('\u0000').slice(0, 256), e.window_ms, e.max_distinct + 1);
    } catch {
      return undefined; // a signal, not a gate: fail open when the store is down
    }
    if (n <= e.max_distinct) return undefined;
    let first = true;
    try {
      first = await env.store.setIfAbsent(`${key}:flag`, '1', e.window_ms);
    } catch {
      /* emit anyway */
    }
    const details = { operation: op.id, distinct: n, max_distinct: e.max_distinct, window_ms: e.window_ms };
    if (e.action === 'block') {
      return {
        ...deny(
          new Problem(429, 'bola-enumeration', 'Too Many Requests', {
            detail: 'Too many distinct objects requested in a short time.',
            headers: { 'retry-after': String(Math.ceil(e.window_ms / 1000)) },
          }),
          'high',
          details,
        ),
        quiet: !first,
      };
    }
    if (first) ctx.emit({ control: 'authz', reason: 'bola-enumeration', action: 'alert', severity: 'high', details });
    return undefined;
  }

  async function checkRequest(ctx: RequestContext): Promise<Verdict> {
    const s = checkScopes(ctx);
    if (s !== undefined) return s;
    let vars: Record<string, unknown> | undefined;
    if (functionRules.length) {
      vars = { request: requestVars(ctx), identity: identityVars(ctx.identity) };
      const f = evaluate(functionRules, ctx, vars);
      if (f !== undefined) {
        return deny(new Problem(403, 'function-denied', 'Forbidden', { detail: 'The caller may not use this operation.' }), 'high', {
          rule: f.rule.name,
          cel_error: f.error,
        });
      }
    }
    const en = await enumeration(ctx);
    if (en !== undefined) return en;
    if (objectRules.length) {
      vars ??= { request: requestVars(ctx), identity: identityVars(ctx.identity) };
      const f = evaluate(objectRules, ctx, vars);
      if (f !== undefined) {
        return deny(new Problem(403, 'object-denied', 'Forbidden', { detail: 'The caller may not access this object.' }), 'high', {
          rule: f.rule.name,
          cel_error: f.error,
          params: ctx.operation?.params,
        });
      }
    }
    return undefined;
  }

  async function checkResponse(ctx: RequestContext, res: ResponseState): Promise<Verdict> {
    if (responseRules.length === 0 || res.status < 200 || res.status > 299) return undefined;
    const opId = ctx.operation?.id;
    if (!responseRules.some((r) => r.ops === undefined || (opId !== undefined && r.ops.has(opId)))) return undefined;
    const max = cfg.response.max_body_bytes;
    const failClosed = (reason: string, detail: string) => deny(new Problem(502, reason, 'Bad Gateway', { detail }), 'high', { status: res.status });
    const raw = await res.readBody(max);
    if (raw === undefined) return failClosed('response-unauthorizable', 'The upstream response is too large to authorize.');
    let body: unknown = null;
    const facts = responseFacts.get(ctx);
    if (facts !== undefined && facts.buf === raw) body = facts.json;
    else if (raw.length > 0) {
      let buf: Buffer | undefined;
      try {
        buf = await decodeBody(raw, res.headers['content-encoding'], max);
      } catch {
        buf = undefined;
      }
      if (buf === undefined) return failClosed('response-unauthorizable', 'The upstream response cannot be decoded to authorize it.');
      try {
        body = JSON.parse(buf.toString('utf8'));
      } catch {
        return failClosed('response-unauthorizable', 'The upstream response is not JSON; it cannot be authorized.');
      }
    }
    const vars = {
      request: requestVars(ctx),
      identity: identityVars(ctx.identity),
      response: { status: res.status, headers: headerVars(res.headers), body },
    };
    const f = evaluate(responseRules, ctx, vars);
    if (f === undefined) return undefined;
    return deny(new Problem(403, 'response-object-denied', 'Forbidden', { detail: 'The caller may not access this object.' }), 'high', {
      rule: f.rule.name,
      cel_error: f.error,
      status: res.status,
    });
  }

  return { checkRequest, checkResponse };
}

export const authzControl = defineControl({
  name: 'authz',
  schema: authzSchema,
  async create(cfg, env) {
    const engine = await createAuthz(cfg, env);
    return {
      request: [{ control: 'authz', phase: 'authz', run: (ctx) => engine.checkRequest(ctx) }],
      response: [{ control: 'authz', phase: 'authz', run: (ctx, res) => engine.checkResponse(ctx, res) }],
    };
  },
});
