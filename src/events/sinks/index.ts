/** Opens the event sinks named in the configuration, each behind its severity filter. */
import { resolve } from 'node:path';
import type { EventSinkConfig } from '../../config/schema.ts';
import type { EventSink } from '../bus.ts';
import type { SecurityEvent, Severity } from '../event.ts';
import { PinoSink } from './log.ts';
import { SqliteSink } from './sqlite.ts';
import { SyslogSink } from './syslog.ts';
import { WebhookSink } from './webhook.ts';

/** Severity order, lowest first. */
export const SEVERITY_RANK: Readonly<Record<Severity, number>> = { info: 0, low: 1, medium: 2, high: 3, critical: 4 };

/** Passes only events at or above `min` to `sink`. */
export class SeverityFilter implements EventSink {
  readonly name: string;
  private readonly sink: EventSink;
  private readonly min: number;

  constructor(sink: EventSink, min: Severity) {
    this.sink = sink;
    this.name = sink.name;
    this.min = SEVERITY_RANK[min];
  }

  write(event: SecurityEvent): void {
    if (SEVERITY_RANK[event.severity] >= this.min) this.sink.write(event);
  }

  close(): Promise<void> {
    return this.sink.close();
  }
}

/** Operational problems of a sink (drops, delivery failures); never event contents. */
export type SinkErrorLog = (msg: string, data?: object) => void;

function open(c: EventSinkConfig, baseDir: string, onError: SinkErrorLog): EventSink {
  switch (c.type) {
    case 'file':
      return new PinoSink(resolve(baseDir, c.path));
    case 'sqlite':
      return new SqliteSink(resolve(baseDir, c.path));
    case 'webhook':
      return new WebhookSink({
        url: c.url,
        secret: c.secret,
        headers: c.headers,
        timeoutMs: c.timeout_ms,
        maxAttempts: c.max_attempts,
        backoffMs: c.backoff_ms,
        maxBackoffMs: c.max_backoff_ms,
        maxQueue: c.max_queue,
        concurrency: c.concurrency,
        onError,
      });
    case 'syslog':
      return new SyslogSink({
        transport: c.transport,
        host: c.host,
        port: c.port,
        facility: c.facility,
        appName: c.app_name,
        enterpriseId: c.enterprise_id,
        maxMessageBytes: c.max_message_bytes,
        onError,
      });
    default:
      return new PinoSink(1);
  }
}

/**
 * Opens one sink per configuration entry; relative paths resolve against `baseDir`.
 * @throws when a file or database cannot be opened (a configuration error).
 */
export function openSinks(configs: readonly EventSinkConfig[], baseDir: string, onError: SinkErrorLog = () => {}): EventSink[] {
  return configs.map((c) => {
    const sink = open(c, baseDir, onError);
    return c.min_severity === 'info' ? sink : new SeverityFilter(sink, c.min_severity);
  });
}
