/**
 * Log sinks: security events as JSON lines via pino, on stdout (default) or appended to a file.
 */
import pino from 'pino';
import type { SecurityEvent } from '../event.ts';
import type { EventSink } from '../bus.ts';

/** JSON-lines sink. `dest` is 1 for stdout or a file path (created, appended to). */
export class PinoSink implements EventSink {
  readonly name: string;
  private readonly logger: pino.Logger;
  private readonly dest: pino.DestinationStream & { flushSync?: () => void; end?: () => void };

  constructor(dest: 1 | string) {
    this.name = dest === 1 ? 'stdout' : `file:${dest}`;
    this.dest = pino.destination({ dest, sync: false, mkdir: true, minLength: 0 });
    this.logger = pino({ base: undefined, timestamp: false, messageKey: 'msg' }, this.dest);
  }

  write(event: SecurityEvent): void {
    this.logger.warn({ type: 'security_event', ...event });
  }

  async close(): Promise<void> {
    try {
      this.dest.flushSync?.();
    } catch {
      /* not yet open */
    }
  }
}
