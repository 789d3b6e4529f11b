/**
 * Scope and claim requirements: `require: { scopes: [...], claims: <CEL expression> }`.
 *
 * Scopes: every listed scope must be granted (RFC 6749 §3.3 scope tokens; read from `scope`, a
 * space-delimited string per RFC 9068 §2.2.3 / RFC 8693 §4.2, or `scp`, an array). Missing
 * scopes → 403 `insufficient-scope` with `scope="..."` (RFC 6750 §3.1).
 *
 * Claims: a CEL expression (https://cel.dev) compiled once at configuration load; it sees
 * `claims` (map), `scopes` (list of strings), `subject`, `client_id`, `issuer`, `methods` (list)
 * and `request` (`method`, `path`, `api`). Anything but `true`, including an evaluation error
 * (e.g. a missing claim), → 403 `claims-not-satisfied`.
 */
import { compileCel, isCelError } from '../../cel/index.ts';
import type { Identity, RequestContext } from '../../pipeline/context.ts';
import { IdentityError } from './errors.ts';

/** A compiled requirement. */
export interface CompiledRequirement {
  /** Space-separated required scopes (for the `scope` challenge parameter). */
  readonly scopeString: string;
  /** @throws {IdentityError} 403 when the identity does not satisfy the requirement. */
  check(identity: Identity, ctx: RequestContext): void;
}

/** Extracts the granted scopes from claims: `scope` (space-delimited) or `scp` (array or string). */
export function scopesOf(claims: Record<string, unknown>): string[] {
  const s = claims.scope ?? claims.scp;
  if (typeof s === 'string') return s.split(' ').filter((x) => x !== '');
  if (Array.isArray(s)) return s.filter((x): x is string => typeof x === 'string');
  return [];
}

/**
 * Compiles `require` once.
 * @throws {Error} on an invalid CEL expression (with its position).
 */
export function compileRequirement(req: { scopes: string[]; claims?: string }, where: string): CompiledRequirement {
  const scopes = [...new Set(req.scopes)];
  const cel = req.claims === undefined ? undefined : compileCel(req.claims, `${where}.claims`);
  const scopeString = scopes.join(' ');
  return {
    scopeString,
    check(identity, ctx) {
      for (const s of scopes) {
        if (!identity.scopes.includes(s)) {
          throw new IdentityError(403, 'insufficient-scope', 'Insufficient scope', `This API requires the scope(s): ${scopeString}.`, {
            bearerError: 'insufficient_scope',
            severity: 'low',
            details: { required: scopes, granted: identity.scopes.slice(0, 50) },
          });
        }
      }
      if (cel !== undefined) {
        const result = cel({
          claims: identity.claims,
          scopes: identity.scopes,
          subject: identity.subject,
          client_id: identity.clientId ?? '',
          issuer: identity.issuer ?? '',
          methods: identity.methods,
          request: { method: ctx.method, path: ctx.path, api: ctx.apiName },
        });
        if (result !== true) {
          throw new IdentityError(403, 'claims-not-satisfied', 'Forbidden', "The token's claims do not satisfy this API's policy.", {
            bearerError: 'insufficient_scope',
            severity: 'medium',
            details: isCelError(result) ? { cel_error: String((result as Error).message).slice(0, 200) } : undefined,
          });
        }
      }
    },
  };
}
