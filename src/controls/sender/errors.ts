/**
 * Sender-constraint failures and their challenges.
 *
 * - DPoP (RFC 9449 §7.1): 401 with `WWW-Authenticate: DPoP error="invalid_dpop_proof"` for a
 *   missing or invalid proof, `error="invalid_token"` for a token that is not bound to the proof
 *   key, `error="use_dpop_nonce"` plus a `DPoP-Nonce` header when a (fresh) server nonce is
 *   required (§9); every DPoP challenge carries `algs` with the accepted proof algorithms.
 * - Certificate-bound tokens (RFC 8705 §3): 401 with `WWW-Authenticate: Bearer
 *   error="invalid_token"` when the TLS client certificate is missing or has another thumbprint.
 */
import type { Severity } from '../../events/event.ts';
import { Problem, wwwAuthenticate } from '../../pipeline/problem.ts';

/** Which challenge(s) a failure answers with. */
export type ChallengeKind = 'dpop' | 'bearer' | 'both';

/** A classified sender-constraint failure, before it becomes a {@link Problem}. */
export class SenderError extends Error {
  readonly status: number;
  /** Stable reason code (problem `type` suffix and event `reason`). */
  readonly code: string;
  readonly title: string;
  /** OAuth error code of the challenge (RFC 6750 §3.1, RFC 9449 §7.1, §12.2); none for "no credentials". */
  readonly oauthError: 'invalid_token' | 'invalid_dpop_proof' | 'use_dpop_nonce' | 'invalid_request' | undefined;
  readonly challenge: ChallengeKind;
  readonly severity: Severity;
  /** Extra event details; never secrets. */
  readonly details: Record<string, unknown> | undefined;
  /** Extra response headers (e.g. `DPoP-Nonce`). */
  readonly headers: Record<string, string> | undefined;

  constructor(
    status: number,
    code: string,
    title: string,
    detail: string,
    opts: {
      oauthError?: SenderError['oauthError'];
      challenge: ChallengeKind;
      severity?: Severity;
      details?: Record<string, unknown>;
      headers?: Record<string, string>;
    },
  ) {
    super(detail);
    this.name = 'SenderError';
    this.status = status;
    this.code = code;
    this.title = title;
    this.oauthError = opts.oauthError;
    this.challenge = opts.challenge;
    this.severity = opts.severity ?? 'medium';
    this.details = opts.details;
    this.headers = opts.headers;
  }
}

/** A 401 `invalid_dpop_proof` failure (RFC 9449 §7.1) with a stable `code`. */
export function invalidProof(code: string, detail: string, severity: Severity = 'medium', details?: Record<string, unknown>): SenderError {
  return new SenderError(401, code, 'Invalid DPoP proof', detail, { oauthError: 'invalid_dpop_proof', challenge: 'dpop', severity, details });
}

/** A 401 `invalid_token` failure answered with the given challenge. */
export function invalidBinding(
  code: string,
  detail: string,
  challenge: ChallengeKind,
  severity: Severity = 'high',
  details?: Record<string, unknown>,
): SenderError {
  return new SenderError(401, code, 'Invalid access token', detail, { oauthError: 'invalid_token', challenge, severity, details });
}

/** What the challenges need to know about the API. */
export interface ChallengeInfo {
  realm: string;
  /** Space-separated accepted DPoP proof algorithms (the `algs` parameter, RFC 9449 §7.1). */
  algs: string;
}

/** Builds the problem for `err` with its `WWW-Authenticate` challenge(s) and extra headers. */
export function toProblem(err: SenderError, info: ChallengeInfo): Problem {
  const headers: Record<string, string | string[]> = { ...(err.headers ?? {}) };
  const values: string[] = [];
  const params = { realm: info.realm, error: err.oauthError, error_description: err.oauthError ? err.message : undefined };
  if (err.challenge === 'dpop' || err.challenge === 'both') values.push(wwwAuthenticate('DPoP', { ...params, algs: info.algs }));
  if (err.challenge === 'bearer' || err.challenge === 'both') values.push(wwwAuthenticate('Bearer', params));
  if (err.status === 401 || err.status === 400) headers['www-authenticate'] = values.length === 1 ? (values[0] as string) : values;
  if (err.status === 503) headers['retry-after'] = '5';
  return new Problem(err.status, err.code, err.title, { detail: err.message, headers });
}
