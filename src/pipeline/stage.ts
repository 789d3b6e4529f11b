/**
 * The stage contract. A control contributes request stages (each in one fixed phase) and
 * response stages; the chain builder orders them by phase, never by user configuration.
 */
import type { Readable, Transform } from 'node:stream';
import type { RequestContext } from './context.ts';
import type { Verdict } from './verdict.ts';

/**
 * Request phases in the order the gateway runs them (ARCHITECTURE.md, "Stage order"):
 * cheap, identity-free checks first so an attacker cannot make the gateway do expensive work.
 */
export const REQUEST_PHASES = ['transport', 'limits', 'network', 'identity', 'contract', 'authz', 'inspection', 'abuse', 'behavior', 'passport'] as const;
export type RequestPhase = (typeof REQUEST_PHASES)[number];

/** Response phases in order: contract filtering, ownership checks, DLP, security headers. */
export const RESPONSE_PHASES = ['contract', 'authz', 'dlp', 'headers'] as const;
export type ResponsePhase = (typeof RESPONSE_PHASES)[number];

/** A request stage: reads the context, may add to it, answers continue (`undefined`) or a rejection. */
export interface RequestStage {
  /** Name of the control that owns the stage (event `control`). */
  readonly control: string;
  readonly phase: RequestPhase;
  /**
   * Runs for each request routed to the API. May throw a {@link Problem} (same as denying with it);
   * any other exception becomes a 500 `internal-error` problem and an event.
   */
  run(ctx: RequestContext): Verdict | Promise<Verdict>;
  /** Called once the response has ended, failed or been aborted (release concurrency slots etc.). */
  done?(ctx: RequestContext, outcome: RequestOutcome): void;
}

/** How a request ended, given to {@link RequestStage.done}. */
export interface RequestOutcome {
  status: number;
  /** True when the client went away or the response was cut off. */
  aborted: boolean;
  bytesIn: number;
  bytesOut: number;
}

/**
 * The upstream response as the response stages see it, before anything is sent to the client.
 * Header names are lower case; hop-by-hop headers are already removed.
 */
export interface ResponseState {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The current body stream (already transformed by earlier response stages). */
  readonly body: Readable;
  /**
   * Buffers the (still encoded) body if it is at most `maxBytes` bytes; returns `undefined` and
   * leaves the body streaming untouched when it is larger.
   * @throws when the upstream body fails mid-read (the gateway then aborts the response).
   */
  readBody(maxBytes: number): Promise<Buffer | undefined>;
  /** Replaces the body with `buf`; sets `content-length` and drops `transfer-encoding`. */
  setBody(buf: Buffer): void;
  /**
   * Pipes the body through `transform`; drops `content-length`. A transform that errors aborts the
   * response mid-stream: the client sees a cut connection, never the rest of the data.
   */
  pipeThrough(transform: Transform): void;
}

/** A response stage. Returning a rejection replaces the response with problem details (no byte of the body is sent). */
export interface ResponseStage {
  readonly control: string;
  readonly phase: ResponsePhase;
  run(ctx: RequestContext, res: ResponseState): Verdict | Promise<Verdict>;
}
