/**
 * EventBus: receives security events from the gateway and controls, redacts them centrally,
 * counts them in metrics and hands them to every configured sink. Sinks never throw into the
 * request path: a failing sink logs once and keeps going.
 */
import type { EventInput, SecurityEvent } from './event.ts';
import type { Redactor } from './redact.ts';

/** A destination for security events. `write` must not block or throw. */
export interface EventSink {
  readonly name: string;
  write(event: SecurityEvent): void;
  close(): Promise<void>;
}

export class EventBus {
  private sinks: EventSink[];
  private readonly redactor: Redactor;
  private readonly onEvent: ((e: SecurityEvent) => void) | undefined;

  /**
   * @param sinks destinations (already opened).
   * @param redactor central secret redaction applied before any sink.
   * @param onEvent called with each redacted event (metrics, tests).
   */
  constructor(sinks: EventSink[], redactor: Redactor, onEvent?: (e: SecurityEvent) => void) {
    this.sinks = sinks;
    this.redactor = redactor;
    this.onEvent = onEvent;
  }

  /** Completes, redacts and dispatches one event. */
  emit(input: EventInput): void {
    const e: SecurityEvent = { time: new Date().toISOString(), ...input };
    if (e.path !== undefined) e.path = this.redactor.path(e.path);
    if (e.details !== undefined) e.details = this.redactor.value(e.details) as Record<string, unknown>;
    this.onEvent?.(e);
    for (const s of this.sinks) {
      try {
        s.write(e);
      } catch {
        /* a sink must not break the request path */
      }
    }
  }

  /** Flushes and closes every sink. */
  async close(): Promise<void> {
    const sinks = this.sinks;
    this.sinks = [];
    await Promise.allSettled(sinks.map((s) => s.close()));
  }
}
