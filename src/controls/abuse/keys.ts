/**
 * Limiter keys: who shares one budget. A key is one part or a list of parts joined together:
 *
 * | part             | value                                                        | phase    |
 * |------------------|--------------------------------------------------------------|----------|
 * | `ip`             | client IP (after the trusted-proxy rule)                     | network  |
 * | `client_cert`    | `x5t#S256` thumbprint of the client certificate (RFC 8705)   | network  |
 * | `header:NAME`    | value of request header NAME (hashed)                        | network  |
 * | `api`            | the API name (one budget for the whole API)                  | network  |
 * | `identity`       | identity subject                                             | abuse    |
 * | `identity_or_ip` | identity subject when known, else `ip:` + client IP          | abuse    |
 * | `api_key`        | API key id (identity authenticated by `api_key`)             | abuse    |
 * | `client_id`      | OAuth client id of the identity                              | abuse    |
 * | `operation`      | matched OpenAPI operation id                                 | abuse    |
 * | `cel:EXPR`       | a CEL expression's string/int result (hashed)                | abuse    |
 *
 * When any part has no value for a request (no identity, header absent, CEL error or empty
 * result), the limit does not apply to that request. Values that may carry secrets (headers,
 * CEL results) and long values are replaced by a SHA-256 digest before they reach the store.
 */
import { createHash } from 'node:crypto';
import { type CelProgram, compileCel, isCelError } from '../../cel/index.ts';
import type { RequestContext } from '../../pipeline/context.ts';
import type { RequestPhase } from '../../pipeline/stage.ts';

/** A compiled key: a function from the context to the key string, or `undefined` (limit skipped). */
export interface CompiledKey {
  /** Key parts as configured, for event details (never the values). */
  readonly kinds: string[];
  /** Earliest phase in which every part is known. */
  readonly phase: RequestPhase;
  value(ctx: RequestContext): string | undefined;
}

type Part = (ctx: RequestContext) => string | undefined;

const NETWORK_PARTS = new Set(['ip', 'client_cert', 'api']);

function digest(v: string): string {
  return createHash('sha256').update(v).digest('base64url').slice(0, 22);
}

function bounded(v: string): string {
  return v.length > 128 ? `h:${digest(v)}` : v;
}

/**
 * Variables seen by a `cel:` key: `request` {ip, method, path, host, api, headers (map of
 * lower-case names to strings)}, `identity` {subject, client_id, scopes, claims} or null,
 * `operation` (id string or null).
 */
function celActivation(ctx: RequestContext): Record<string, unknown> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(ctx.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
  const id = ctx.identity;
  return {
    request: { ip: ctx.clientIp, method: ctx.method, path: ctx.path, host: ctx.host, api: ctx.apiName, headers },
    identity: id ? { subject: id.subject, client_id: id.clientId ?? '', scopes: id.scopes, claims: id.claims } : null,
    operation: ctx.operation?.id ?? null,
  };
}

function compilePart(spec: string): Part {
  switch (spec) {
    case 'ip':
      return (ctx) => ctx.clientIp;
    case 'client_cert':
      return (ctx) => ctx.tls?.peerCertificate?.x5tS256;
    case 'api':
      return (ctx) => ctx.apiName;
    case 'identity':
      return (ctx) => (ctx.identity ? bounded(ctx.identity.subject) : undefined);
    case 'identity_or_ip':
      return (ctx) => (ctx.identity ? `sub:${bounded(ctx.identity.subject)}` : `ip:${ctx.clientIp}`);
    case 'api_key':
      return (ctx) => (ctx.identity?.methods.includes('api_key') && ctx.identity.tokenId ? bounded(ctx.identity.tokenId) : undefined);
    case 'client_id':
      return (ctx) => (ctx.identity?.clientId ? bounded(ctx.identity.clientId) : undefined);
    case 'operation':
      return (ctx) => ctx.operation?.id;
  }
  if (spec.startsWith('header:')) {
    const name = spec.slice(7).toLowerCase();
    if (!/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(name)) throw new Error(`invalid key "${spec}": not a header name`);
    return (ctx) => {
      const v = ctx.headers[name];
      const s = Array.isArray(v) ? v.join(', ') : v;
      return s ? digest(s) : undefined;
    };
  }
  if (spec.startsWith('cel:')) {
    const src = spec.slice(4);
    let run: CelProgram;
    try {
      run = compileCel(src, `key "${spec}"`);
    } catch (e) {
      throw new Error(`invalid key "${spec}": ${(e as Error).message}`);
    }
    return (ctx) => {
      let r: unknown;
      try {
        r = run(celActivation(ctx));
      } catch {
        return undefined;
      }
      if (isCelError(r)) return undefined;
      if (typeof r === 'string') return r === '' ? undefined : digest(r);
      if (typeof r === 'bigint' || typeof r === 'number') return digest(String(r));
      return undefined;
    };
  }
  throw new Error(`invalid key "${spec}": expected ip, identity, identity_or_ip, api_key, client_id, client_cert, api, operation, header:NAME or cel:EXPR`);
}

/**
 * Compiles a key specification (one part or a list of parts).
 * @throws {Error} naming the bad part (unknown kind, bad header name, CEL syntax error).
 */
export function compileKey(spec: string | string[]): CompiledKey {
  const kinds = Array.isArray(spec) ? spec : [spec];
  const parts = kinds.map(compilePart);
  const phase: RequestPhase = kinds.every((k) => NETWORK_PARTS.has(k) || k.startsWith('header:')) ? 'network' : 'abuse';
  if (parts.length === 1) {
    const p = parts[0] as Part;
    return { kinds, phase, value: p };
  }
  return {
    kinds,
    phase,
    value(ctx) {
      let out = '';
      for (let i = 0; i < parts.length; i++) {
        const v = (parts[i] as Part)(ctx);
        if (v === undefined) return undefined;
        out = i === 0 ? v : `${out}|${v}`;
      }
      return out;
    },
  };
}
