/**
 * RFC 9457 problem details: the only shape in which Rampart rejects a request.
 *
 * Every rejection carries a stable `type` URI under {@link PROBLEM_TYPE_BASE}; the last path
 * segment of that URI is the reason code that the matching security event carries too.
 */

/** Namespace of every problem `type` URI Rampart emits (RFC 9457 §3.1.1). */
export const PROBLEM_TYPE_BASE = 'https://rampart.dev/problems/';

/** Media type of problem-details bodies (RFC 9457 §3). */
export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** The JSON body of a problem-details response (RFC 9457 §3.1), with extension members. */
export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  [extension: string]: unknown;
}

/** Options of a {@link Problem}. */
export interface ProblemInit {
  /** Human-readable explanation specific to this occurrence (RFC 9457 §3.1.4). Never a secret. */
  detail?: string;
  /** Response headers to send with the problem, e.g. `WWW-Authenticate`, `Allow`, `Retry-After`. */
  headers?: Record<string, string | string[]>;
  /** Extension members (RFC 9457 §3.2), e.g. `errors` with one entry per violation. */
  extensions?: Record<string, unknown>;
}

/**
 * A problem to answer a client with.
 *
 * `code` is the stable reason code, e.g. `token-expired`; the `type` URI is
 * `PROBLEM_TYPE_BASE + code`. Throwing a Problem from a stage is the same as returning a deny
 * verdict with it.
 */
export class Problem extends Error {
  readonly status: number;
  readonly code: string;
  readonly title: string;
  readonly detail: string | undefined;
  readonly headers: Record<string, string | string[]>;
  readonly extensions: Record<string, unknown>;

  /**
   * @param status HTTP status code (4xx or 5xx).
   * @param code stable reason code: lower-case words joined by `-`.
   * @param title short summary that does not change between occurrences (RFC 9457 §3.1.3).
   */
  constructor(status: number, code: string, title: string, init: ProblemInit = {}) {
    super(init.detail ?? title);
    this.name = 'Problem';
    this.status = status;
    this.code = code;
    this.title = title;
    this.detail = init.detail;
    this.headers = init.headers ?? {};
    this.extensions = init.extensions ?? {};
  }

  /** The `type` URI of this problem. */
  get type(): string {
    return PROBLEM_TYPE_BASE + this.code;
  }

  /** The JSON body, with `instance` set to the request id when given. */
  toBody(requestId?: string): ProblemBody {
    const body: ProblemBody = { type: this.type, title: this.title, status: this.status };
    if (this.detail !== undefined) body.detail = this.detail;
    if (requestId !== undefined) body.instance = `urn:rampart:request:${requestId}`;
    for (const [k, v] of Object.entries(this.extensions)) {
      if (!(k in body)) body[k] = v;
    }
    return body;
  }
}

/** Builds the `WWW-Authenticate` value of RFC 6750 §3 / RFC 9449 §7.1 from a scheme and parameters. */
export function wwwAuthenticate(scheme: string, params: Record<string, string | undefined>): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined) continue;
    parts.push(`${k}="${v.replace(/["\\]/g, '\\$&')}"`);
  }
  return parts.length ? `${scheme} ${parts.join(', ')}` : scheme;
}
