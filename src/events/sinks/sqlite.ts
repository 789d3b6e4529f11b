/**
 * SQLite sink: the embedded default event store (the console reads it), via `node:sqlite`.
 * Inserts are batched and flushed every 250 ms or every 200 events, off the request path.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { SecurityEvent } from '../event.ts';
import type { EventSink } from '../bus.ts';

/** Schema of the `security_events` table. */
export const SQLITE_EVENTS_DDL = `CREATE TABLE IF NOT EXISTS security_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  time TEXT NOT NULL, request_id TEXT, api TEXT, operation TEXT, client_ip TEXT, identity TEXT,
  method TEXT, path TEXT, control TEXT NOT NULL, reason TEXT NOT NULL, action TEXT NOT NULL,
  severity TEXT NOT NULL, status INTEGER, details TEXT)`;

export class SqliteSink implements EventSink {
  readonly name: string;
  private readonly db: DatabaseSync;
  private readonly insert: StatementSync;
  private queue: SecurityEvent[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** Events dropped because the queue was full (bounded at 10,000). */
  dropped = 0;

  /** @param path database file, created with its directory if missing. @throws when the file cannot be opened. */
  constructor(path: string) {
    this.name = `sqlite:${path}`;
    mkdirSync(dirname(path), { recursive: true });
    this.db = new DatabaseSync(path);
    this.db.exec('PRAGMA journal_mode=WAL; PRAGMA busy_timeout=2000;');
    this.db.exec(SQLITE_EVENTS_DDL);
    this.insert = this.db.prepare(
      'INSERT INTO security_events (time, request_id, api, operation, client_ip, identity, method, path, control, reason, action, severity, status, details) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)',
    );
  }

  write(event: SecurityEvent): void {
    if (this.queue.length >= 10_000) {
      this.dropped++;
      return;
    }
    this.queue.push(event);
    if (this.queue.length >= 200) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), 250).unref();
  }

  /** Writes queued events in one transaction. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.queue;
    if (batch.length === 0) return;
    this.queue = [];
    try {
      this.db.exec('BEGIN');
      for (const e of batch) {
        this.insert.run(
          e.time,
          e.request_id ?? null,
          e.api ?? null,
          e.operation ?? null,
          e.client_ip ?? null,
          e.identity ?? null,
          e.method ?? null,
          e.path ?? null,
          e.control,
          e.reason,
          e.action,
          e.severity,
          e.status ?? null,
          e.details === undefined ? null : JSON.stringify(e.details),
        );
      }
      this.db.exec('COMMIT');
    } catch {
      try {
        this.db.exec('ROLLBACK');
      } catch {
        /* nothing to roll back */
      }
      this.dropped += batch.length;
    }
  }

  async close(): Promise<void> {
    this.flush();
    this.db.close();
  }
}
