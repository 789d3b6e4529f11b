/**
 * Identity failures: one stable reason code each, mapped to the RFC 6750 §3 challenge.
 *
 * - 401 + `WWW-Authenticate: Bearer error="invalid_token"` for a token that is expired, revoked,
 *   malformed or invalid for other reasons (§3.1);
 * - 401 + `WWW-Authenticate: Bearer realm=...` without an error code when the request carries
 *   no credentials at all (§3.1: "SHOULD NOT include an error code");
 * - 400 + `error="invalid_request"` for ambiguous credentials (§3.1);
 * - 403 + `error="insufficient_scope", scope="..."` when scopes or claims do not suffice (§3.1);
 * - 503 when the identity provider's keys or introspection endpoint are unavailable (fail closed).
 */
import { Problem, wwwAuthenticate } from '../../pipeline/problem.ts';
import type { Severity } from '../../events/event.ts';

/** A classified identity failure, before it becomes a {@link Problem}. */
export class IdentityError extends Error {
  readonly status: number;
  readonly code: string;
  readonly title: string;
  /** RFC 6750 error code, or undefined for "no credentials". */
  readonly bearerError: 'invalid_token' | 'invalid_request' | 'insufficient_scope' | undefined;
  readonly severity: Severity;
  /** Extra event details; never secrets. */
  readonly details: Record<string, unknown> | undefined;

  constructor(
    status: number,
    code: string,
    title: string,
    detail: string,
    opts: { bearerError?: IdentityError['bearerError']; severity?: Severity; details?: Record<string, unknown> } = {},
  ) {
    super(detail);
    this.name = 'IdentityError';
    this.status = status;
    this.code = code;
    this.title = title;
    this.bearerError = opts.bearerError;
    this.severity = opts.severity ?? 'medium';
    this.details = opts.details;
  }
}

/** A 401 `invalid_token` failure with a stable `code`. */
export function invalidToken(code: string, detail: string, severity: Severity = 'medium', details?: Record<string, unknown>): IdentityError {
  return new IdentityError(401, code, 'Invalid access token', detail, { bearerError: 'invalid_token', severity, details });
}

/** Where an API key is read: a request header (lower-case name) or a query parameter. */
export interface KeyLocation {
  in: 'header' | 'query';
  name: string;
}

/**
 * The challenges of a 401: `Bearer` when access tokens are accepted (RFC 6750 §3), one
 * `ApiKey realm="..", header="NAME"` (or `query="NAME"`) per accepted API key location, and `DPoP`
 * first when the request used the DPoP scheme (RFC 9449 §7.1).
 */
export interface Challenge {
  realm: string;
  bearer: boolean;
  apiKeys?: readonly KeyLocation[];
  /** Required scopes (space-separated) for the `scope` parameter of an `insufficient_scope` challenge. */
  scope?: string;
  dpop?: boolean;
}

/**
 * Builds the problem for `err`, with the `WWW-Authenticate` challenge(s) for the schemes the
 * operation (or API) accepts: `Bearer` for JWT/introspection; `ApiKey` with the header or query
 * name for API keys (401 only); `DPoP` first when the request used the DPoP scheme (RFC 9449 §7.1).
 * `dpopAlgs` (space-separated) are the DPoP proof algorithms the API accepts: given, they become
 * the `algs` parameter, and a 401 without credentials offers `DPoP` after `Bearer`.
 * A 401 always carries at least one challenge (RFC 9110 §11.6.1) when any scheme applies.
 */
export function toProblem(err: IdentityError, challenge: Challenge, dpopAlgs?: string): Problem {
  const headers: Record<string, string | string[]> = {};
  if (err.status === 401 || err.status === 403 || err.status === 400) {
    const values: string[] = [];
    if (challenge.dpop) {
      // The token came with the DPoP scheme: answer with a DPoP challenge first (RFC 9449 §7.1).
      values.push(
        wwwAuthenticate('DPoP', {
          realm: challenge.realm,
          error: err.bearerError,
          error_description: err.bearerError ? err.message : undefined,
          algs: dpopAlgs,
        }),
      );
    }
    if (challenge.bearer) {
      values.push(
        wwwAuthenticate('Bearer', {
          realm: challenge.realm,
          error: err.bearerError,
          error_description: err.bearerError ? err.message : undefined,
          scope: err.bearerError === 'insufficient_scope' ? challenge.scope : undefined,
        }),
      );
    }
    if (!challenge.dpop && challenge.bearer && dpopAlgs !== undefined && err.status === 401 && err.bearerError === undefined) {
      // No credentials at all and the API also takes DPoP-bound tokens: offer that scheme and its
      // proof algorithms too (RFC 9449 §7.1, Figure 14).
      values.push(wwwAuthenticate('DPoP', { realm: challenge.realm, algs: dpopAlgs }));
    }
    if (challenge.apiKeys !== undefined && err.status === 401) {
      for (const k of challenge.apiKeys) values.push(wwwAuthenticate('ApiKey', { realm: challenge.realm, [k.in]: k.name }));
    }
    if (values.length === 1) headers['www-authenticate'] = values[0] as string;
    else if (values.length > 1) headers['www-authenticate'] = values;
  }
  if (err.status === 503) headers['retry-after'] = '5';
  return new Problem(err.status, err.code, err.title, { detail: err.message, headers });
}
