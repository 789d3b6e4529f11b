/**
 * `rampart keys`: issue and manage API keys (create, list, revoke, rotate).
 *
 * The key database and pepper come from the API's `controls.identity.providers.api_key` settings
 * when `--config FILE` is given, else from `--db` (default `./rampart-keys.db`) and
 * `--pepper-env` (default `RAMPART_API_KEY_PEPPER`) / `--pepper-file`. A new key is printed
 * exactly once: only its HMAC is stored.
 */
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { loadConfigFile } from '../config/load.ts';
import { ApiKeyStore, loadPepper, type ApiKeyRecord } from '../controls/identity/keys/store.ts';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/**
 * Parses a duration such as `90d`, `24h`, `30m`, `45s`, `500ms`, `2w` into milliseconds.
 * @throws {Error} on anything else.
 */
export function parseDuration(s: string): number {
  const m = /^(\d+)(ms|s|m|h|d|w)$/.exec(s.trim());
  if (!m) throw new Error(`invalid duration "${s}" (expected e.g. 90d, 24h, 30m, 45s)`);
  return Number(m[1]) * (UNITS[m[2] as string] as number);
}

/** Options shared by the `keys` subcommands. */
interface StoreOptions {
  config?: string;
  db?: string;
  pepperEnv?: string;
  pepperFile?: string;
  api?: string;
}

/**
 * Opens the key store named by the options.
 * @throws {Error} when the configuration has no api_key provider for the API, or the pepper is missing.
 */
export async function openKeyStore(o: StoreOptions): Promise<ApiKeyStore> {
  let db = o.db ?? 'rampart-keys.db';
  let pepperSource: { env?: string; file?: string } = o.pepperFile ? { file: o.pepperFile } : { env: o.pepperEnv ?? 'RAMPART_API_KEY_PEPPER' };
  if (o.config) {
    const { config } = await loadConfigFile(o.config);
    const dir = dirname(resolve(o.config));
    const apis = config.apis.filter((a) => {
      const id = (a.controls as Record<string, unknown>).identity as { providers?: { api_key?: unknown } } | false | undefined;
      return id && id.providers?.api_key !== undefined && (o.api === undefined || a.name === o.api);
    });
    const api = apis[0];
    if (api === undefined) throw new Error(`${o.config}: no API${o.api ? ` named "${o.api}"` : ''} uses identity.providers.api_key`);
    const pk = (
      (api.controls as Record<string, unknown>).identity as { providers: { api_key: { database?: string; pepper_env?: string; pepper_file?: string } } }
    ).providers.api_key;
    db = resolve(dir, pk.database ?? 'rampart-keys.db');
    pepperSource = pk.pepper_file ? { file: resolve(dir, pk.pepper_file) } : { env: pk.pepper_env ?? 'RAMPART_API_KEY_PEPPER' };
  }
  return new ApiKeyStore(db, loadPepper(pepperSource));
}

const iso = (ms: number | null): string => (ms === null ? '-' : new Date(ms).toISOString());

/** The status of a key at `now`: active, expired, revoked. */
function status(r: ApiKeyRecord, now: number): string {
  if (r.revokedAt !== null && r.revokedAt <= now) return 'revoked';
  if (r.expiresAt !== null && r.expiresAt <= now) return 'expired';
  return 'active';
}

function printNewKey(key: string, r: ApiKeyRecord, json: boolean): void {
  if (json) {
    process.stdout.write(
      `${JSON.stringify({ key, id: r.id, api: r.api, subject: r.subject, scopes: r.scopes, expires_at: r.expiresAt === null ? null : iso(r.expiresAt) })}\n`,
    );
    return;
  }
  process.stdout.write(
    `${key}\n\n` +
      `This key is shown once: store it now. Rampart keeps only an HMAC of it.\n` +
      `  id       ${r.id}\n  api      ${r.api}\n  subject  ${r.subject}\n  scopes   ${r.scopes.join(' ') || '-'}\n  expires  ${iso(r.expiresAt)}\n`,
  );
}

function withStoreOptions(c: Command): Command {
  return c
    .option('-c, --config <file>', "configuration file: use the API's identity.providers.api_key database and pepper")
    .option('--db <file>', 'key database (SQLite) when no --config is given', 'rampart-keys.db')
    .option('--pepper-env <name>', 'environment variable holding the pepper', 'RAMPART_API_KEY_PEPPER')
    .option('--pepper-file <file>', 'file holding the pepper');
}

async function run(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    process.stderr.write(`rampart keys: ${(e as Error).message}\n`);
    process.exitCode = 1;
  }
}

/** Registers `keys create|list|revoke|rotate`. */
export function register(program: Command): void {
  const keys = program.command('keys').description('issue and manage API keys (only an HMAC of each key is stored)');

  withStoreOptions(keys.command('create').description('create an API key and print it once'))
    .requiredOption('--api <name>', 'API the key is for')
    .option('--scopes <list>', 'comma-separated scopes', '')
    .option('--expires <duration>', 'lifetime, e.g. 90d, 24h (default: no expiry)')
    .option('--subject <name>', 'owner of the key (default: the key id)')
    .option('--test', 'create an rk_test_ key instead of rk_live_')
    .option('--json', 'print JSON')
    .action((o: StoreOptions & { api: string; scopes: string; expires?: string; subject?: string; test?: boolean; json?: boolean }) =>
      run(async () => {
        const ttlMs = o.expires === undefined ? undefined : parseDuration(o.expires);
        const store = await openKeyStore(o);
        try {
          const scopes = o.scopes
            .split(',')
            .map((s) => s.trim())
            .filter((s) => s !== '');
          const { key, record } = store.create({ api: o.api, scopes, subject: o.subject, ttlMs, prefix: o.test ? 'rk_test_' : 'rk_live_' });
          printNewKey(key, record, o.json === true);
        } finally {
          store.close();
        }
      }),
    );

  withStoreOptions(keys.command('list').description('list keys (never the keys themselves)'))
    .option('--api <name>', 'only keys of this API')
    .option('--json', 'print JSON')
    .action((o: StoreOptions & { json?: boolean }) =>
      run(async () => {
        const store = await openKeyStore(o);
        try {
          const now = Date.now();
          const rows = store.list(o.api);
          if (o.json) {
            process.stdout.write(`${JSON.stringify(rows.map((r) => ({ ...r, status: status(r, now) })))}\n`);
            return;
          }
          const table = [['ID', 'API', 'SUBJECT', 'SCOPES', 'KEY', 'STATUS', 'CREATED', 'EXPIRES', 'LAST USED']];
          for (const r of rows)
            table.push([
              r.id,
              r.api,
              r.subject,
              r.scopes.join(',') || '-',
              `${r.prefix}…${r.hint}`,
              status(r, now),
              iso(r.createdAt),
              iso(r.expiresAt),
              iso(r.lastUsedAt),
            ]);
          const widths = table[0]?.map((_, i) => Math.max(...table.map((row) => (row[i] ?? '').length))) ?? [];
          for (const row of table)
            process.stdout.write(
              `${row
                .map((c, i) => c.padEnd(widths[i] ?? 0))
                .join('  ')
                .trimEnd()}\n`,
            );
        } finally {
          store.close();
        }
      }),
    );

  withStoreOptions(keys.command('revoke').description('revoke a key now').argument('<id>', 'key id (key_...)'))
    .option('--api <name>', 'API whose settings to use with --config')
    .action((id: string, o: StoreOptions) =>
      run(async () => {
        const store = await openKeyStore(o);
        try {
          if (!store.revoke(id)) throw new Error(`no active key with id ${id}`);
          process.stdout.write(`revoked ${id} (gateways stop accepting it within their api_key.cache_ttl_ms)\n`);
        } finally {
          store.close();
        }
      }),
    );

  withStoreOptions(
    keys.command('rotate').description('replace a key: print a new one, let the old one live on for --grace').argument('<id>', 'key id (key_...)'),
  )
    .option('--api <name>', 'API whose settings to use with --config')
    .option('--grace <duration>', 'how long the old key keeps working, e.g. 24h', '0s')
    .option('--expires <duration>', 'lifetime of the new key (default: no expiry)')
    .option('--json', 'print JSON')
    .action((id: string, o: StoreOptions & { grace: string; expires?: string; json?: boolean }) =>
      run(async () => {
        const graceMs = parseDuration(o.grace);
        const ttlMs = o.expires === undefined ? undefined : parseDuration(o.expires);
        const store = await openKeyStore(o);
        try {
          const { key, record } = store.rotate(id, { graceMs, ttlMs });
          printNewKey(key, record, o.json === true);
          if (!o.json) process.stdout.write(`  replaces ${id} (valid until ${iso(Date.now() + graceMs)})\n`);
        } finally {
          store.close();
        }
      }),
    );
}
