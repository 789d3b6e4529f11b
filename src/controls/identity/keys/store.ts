/**
 * The API key store: SQLite (`node:sqlite`), holding only an HMAC-SHA-256 of each key under a
 * server-side pepper (OWASP Password Storage Cheat Sheet, "Peppering"; keys carry 256 bits of
 * entropy, so a keyed hash is enough and no slow KDF is needed). A database leak alone reveals
 * no usable key; a pepper leak alone reveals nothing either.
 *
 * The database is shared by the gateway (lookups, last-used time) and the CLI (`rampart keys`).
 * It runs in WAL mode so that the CLI can write while gateways read.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { DatabaseSync as DatabaseSyncType, StatementSync } from 'node:sqlite';
import { createRequire } from 'node:module';
import { base62 } from '../../dlp/apikey.ts';
import { generateApiKey, type ApiKeyPrefix } from './format.ts';

/** Minimum pepper length in bytes (a 256-bit secret). */
export const MIN_PEPPER_BYTES = 32;

/** One stored key, as listed (never the key itself). */
export interface ApiKeyRecord {
  /** Public key id, e.g. `key_3fZ9...`; safe to log and show. */
  id: string;
  api: string;
  /** Who the key belongs to (becomes `identity.subject`); defaults to the key id. */
  subject: string;
  scopes: string[];
  /** `rk_live_` or `rk_test_`. */
  prefix: string;
  /** Last 4 characters of the key, for recognition in listings. */
  hint: string;
  /** Epoch milliseconds. */
  createdAt: number;
  expiresAt: number | null;
  revokedAt: number | null;
  lastUsedAt: number | null;
  /** Id of the key that replaced this one (rotation). */
  replacedBy: string | null;
}

/** Outcome of {@link ApiKeyStore.lookup}. */
export type LookupResult = { ok: true; record: ApiKeyRecord } | { ok: false; reason: 'unknown' | 'revoked' | 'expired'; record?: ApiKeyRecord };

/** Options for creating a key. */
export interface CreateKeyOptions {
  api: string;
  scopes?: string[];
  subject?: string;
  /** Lifetime in milliseconds; none when undefined. */
  ttlMs?: number;
  prefix?: ApiKeyPrefix;
}

interface Row {
  id: string;
  api: string;
  subject: string;
  scopes: string;
  prefix: string;
  hint: string;
  hash: Uint8Array;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
  last_used_at: number | null;
  replaced_by: string | null;
}

function toRecord(r: Row): ApiKeyRecord {
  return {
    id: r.id,
    api: r.api,
    subject: r.subject,
    scopes: JSON.parse(r.scopes) as string[],
    prefix: r.prefix,
    hint: r.hint,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    revokedAt: r.revoked_at,
    lastUsedAt: r.last_used_at,
    replacedBy: r.replaced_by,
  };
}

/**
 * Reads the pepper from an environment variable (base64, hex or raw text) or a file.
 * @throws {Error} when absent or shorter than {@link MIN_PEPPER_BYTES} bytes.
 */
export function loadPepper(source: { env?: string; file?: string }): Buffer {
  let raw: string | undefined;
  let where: string;
  if (source.file !== undefined) {
    raw = readFileSync(source.file, 'utf8').trim();
    where = `file ${source.file}`;
  } else {
    const name = source.env ?? 'RAMPART_API_KEY_PEPPER';
    raw = process.env[name];
    where = `environment variable ${name}`;
  }
  if (raw === undefined || raw === '')
    throw new Error(`API key pepper missing: set ${where} to at least ${MIN_PEPPER_BYTES} random bytes (e.g. \`openssl rand -base64 32\`)`);
  const buf = Buffer.from(raw, 'utf8');
  if (buf.length < MIN_PEPPER_BYTES) throw new Error(`API key pepper in ${where} is too short: at least ${MIN_PEPPER_BYTES} bytes required`);
  return buf;
}

const require = createRequire(import.meta.url);

/**
 * SQLite-backed API key store. All methods are synchronous (node:sqlite); the identity control
 * keeps them off the per-request path with a short-lived cache and batched last-used writes.
 */
export class ApiKeyStore {
  private readonly db: DatabaseSyncType;
  private readonly pepper: Buffer;
  private readonly byHash: StatementSync;
  private readonly touch: StatementSync;

  /**
   * Opens (and creates if needed) the database at `path` (`:memory:` for tests).
   * @throws when the file cannot be opened or the pepper is too short.
   */
  constructor(path: string, pepper: Buffer) {
    if (pepper.length < MIN_PEPPER_BYTES) throw new Error(`API key pepper too short: at least ${MIN_PEPPER_BYTES} bytes required`);
    this.pepper = pepper;
    // Loaded lazily so that Node versions where node:sqlite needs a flag only fail when used.
    const { DatabaseSync } = require('node:sqlite') as typeof import('node:sqlite');
    this.db = new DatabaseSync(path);
    this.db.exec(`
      PRAGMA journal_mode = WAL;
      PRAGMA busy_timeout = 2000;
      CREATE TABLE IF NOT EXISTS api_keys (
        id TEXT PRIMARY KEY,
        api TEXT NOT NULL,
        subject TEXT NOT NULL,
        scopes TEXT NOT NULL,
        prefix TEXT NOT NULL,
        hint TEXT NOT NULL,
        hash BLOB NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        expires_at INTEGER,
        revoked_at INTEGER,
        last_used_at INTEGER,
        replaced_by TEXT
      );
      CREATE INDEX IF NOT EXISTS api_keys_api ON api_keys(api);
    `);
    this.byHash = this.db.prepare('SELECT * FROM api_keys WHERE hash = ?');
    this.touch = this.db.prepare('UPDATE api_keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)');
  }

  /** HMAC-SHA-256(pepper, key): the only form in which a key is stored. */
  hash(key: string): Buffer {
    return createHmac('sha256', this.pepper).update(key, 'utf8').digest();
  }

  /**
   * Creates a key and returns it with its record. The key itself is returned only here: print it
   * once and never store it.
   */
  create(opts: CreateKeyOptions, now = Date.now()): { key: string; record: ApiKeyRecord } {
    const key = generateApiKey(opts.prefix ?? 'rk_live_');
    const id = `key_${base62(randomBytes(12), 17)}`;
    const row: Row = {
      id,
      api: opts.api,
      subject: opts.subject ?? id,
      scopes: JSON.stringify(opts.scopes ?? []),
      prefix: key.slice(0, 8),
      hint: key.slice(-4),
      hash: this.hash(key),
      created_at: now,
      expires_at: opts.ttlMs === undefined ? null : now + opts.ttlMs,
      revoked_at: null,
      last_used_at: null,
      replaced_by: null,
    };
    this.db
      .prepare('INSERT INTO api_keys (id, api, subject, scopes, prefix, hint, hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(row.id, row.api, row.subject, row.scopes, row.prefix, row.hint, row.hash, row.created_at, row.expires_at);
    return { key, record: toRecord(row) };
  }

  /**
   * Finds the record of `key` (whose format the caller has already checked). The stored hash is
   * compared to the computed one with `crypto.timingSafeEqual`.
   */
  lookup(key: string, now = Date.now()): LookupResult {
    const h = this.hash(key);
    const row = this.byHash.get(h) as Row | undefined;
    if (row === undefined || !timingSafeEqual(Buffer.from(row.hash), h)) return { ok: false, reason: 'unknown' };
    const record = toRecord(row);
    if (record.revokedAt !== null && record.revokedAt <= now) return { ok: false, reason: 'revoked', record };
    if (record.expiresAt !== null && record.expiresAt <= now) return { ok: false, reason: 'expired', record };
    return { ok: true, record };
  }

  /** Lists keys (of one API when given), newest first. */
  list(api?: string): ApiKeyRecord[] {
    const rows = (api === undefined
      ? this.db.prepare('SELECT * FROM api_keys ORDER BY created_at DESC, id').all()
      : this.db.prepare('SELECT * FROM api_keys WHERE api = ? ORDER BY created_at DESC, id').all(api)) as unknown as Row[];
    return rows.map(toRecord);
  }

  /** One record by id, `undefined` when unknown. */
  get(id: string): ApiKeyRecord | undefined {
    const row = this.db.prepare('SELECT * FROM api_keys WHERE id = ?').get(id) as Row | undefined;
    return row === undefined ? undefined : toRecord(row);
  }

  /** Revokes a key now; returns false when the id is unknown or already revoked. */
  revoke(id: string, now = Date.now()): boolean {
    return this.db.prepare('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(now, id).changes > 0;
  }

  /**
   * Rotates a key: creates a successor with the same API, subject (so ownership survives) and scopes, and lets the old
   * key live on for `graceMs` (default 0: it stops working at once) so clients can switch over.
   * @throws {Error} when `id` is unknown or revoked.
   */
  rotate(id: string, opts: { graceMs?: number; ttlMs?: number } = {}, now = Date.now()): { key: string; record: ApiKeyRecord } {
    const old = this.get(id);
    if (old === undefined) throw new Error(`unknown API key id ${id}`);
    if (old.revokedAt !== null) throw new Error(`API key ${id} is revoked`);
    const next = this.create({ api: old.api, subject: old.subject, scopes: old.scopes, prefix: old.prefix as ApiKeyPrefix, ttlMs: opts.ttlMs }, now);
    const end = now + (opts.graceMs ?? 0);
    const expires = old.expiresAt === null ? end : Math.min(old.expiresAt, end);
    this.db.prepare('UPDATE api_keys SET expires_at = ?, replaced_by = ? WHERE id = ?').run(expires, next.record.id, id);
    return next;
  }

  /** Records last-used times (epoch ms), e.g. a batch collected by the gateway. */
  recordUse(uses: Iterable<[id: string, at: number]>): void {
    this.db.exec('BEGIN');
    try {
      for (const [id, at] of uses) this.touch.run(at, id, at);
      this.db.exec('COMMIT');
    } catch (err) {
      this.db.exec('ROLLBACK');
      throw err;
    }
  }

  close(): void {
    if (this.db.isOpen) this.db.close();
  }
}
