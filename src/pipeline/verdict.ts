/**
 * Verdicts: what a request stage answers. `undefined` means continue; a {@link Rejection} stops
 * the chain, is sent to the client as problem details and emits exactly one security event.
 */
import type { Problem } from './problem.ts';
import type { Severity } from '../events/event.ts';

/** Stop the chain: `deny` refuses the request, `challenge` asks the client to authenticate again (step-up). */
export interface Rejection {
  readonly action: 'deny' | 'challenge';
  readonly problem: Problem;
  readonly severity: Severity;
  /** Extra event details. Never secrets: they are redacted centrally but should not be put here. */
  readonly details?: Record<string, unknown>;
  /**
   * When true the gateway sends the problem but emits no event: for repeated rejections of a key
   * that already produced its event in the current window (rate limiting's "one event per window").
   */
  readonly quiet?: boolean;
}

/** Continue (`undefined`) or stop with a rejection. */
export type Verdict = Rejection | undefined;

/** Deny the request with `problem`. */
export function deny(problem: Problem, severity: Severity = 'medium', details?: Record<string, unknown>): Rejection {
  return { action: 'deny', problem, severity, details };
}

/** Challenge the client (step-up authentication, e.g. RFC 9470 `insufficient_user_authentication`). */
export function challenge(problem: Problem, severity: Severity = 'medium', details?: Record<string, unknown>): Rejection {
  return { action: 'challenge', problem, severity, details };
}
