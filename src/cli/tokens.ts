/**
 * `rampart tokens revoke JTI`: adds an access token's `jti` to the deny list in the shared state
 * store; every gateway using that store refuses the token on its next request (the identity
 * control checks the list on every request, cached verification or not).
 *
 * The state store is the configuration's `state.store` (`--config FILE`) or `--store URL`. It
 * must be shared (Redis): the in-memory store lives inside each gateway process.
 */
import type { Command } from 'commander';
import { loadConfigFile } from '../config/load.ts';
import { revokedJtiKey } from '../controls/identity/index.ts';
import { createStore } from '../state/index.ts';
import { parseDuration } from './keys.ts';

/**
 * Revokes `jti` in the store at `url` for `ttlMs` (at least the token's remaining lifetime).
 * @throws {Error} for the memory store or when the store cannot be written.
 */
export async function revokeJti(url: string, jti: string, ttlMs: number): Promise<void> {
  if (url === 'memory' || url === '' || url.startsWith('memory:')) {
    throw new Error(
      'the state store is "memory", which lives inside each gateway process; configure a shared store (state.store: redis://HOST:PORT) to revoke tokens from the command line',
    );
  }
  const store = createStore(url, { failMode: 'fail_closed', timeoutMs: 5000 });
  try {
    await store.set(revokedJtiKey(jti), '1', ttlMs);
  } finally {
    await store.close();
  }
}

/** Registers `tokens revoke`. */
export function register(program: Command): void {
  const tokens = program.command('tokens').description('manage access tokens accepted by the identity control');
  tokens
    .command('revoke')
    .description('deny an access token by its jti on every gateway sharing the state store')
    .argument('<jti>', 'the token\'s "jti" claim')
    .option('-c, --config <file>', 'configuration file (uses its state.store)')
    .option('--store <url>', 'state store URL, e.g. redis://127.0.0.1:6379')
    .option('--ttl <duration>', 'how long the entry is kept: at least the token lifetime', '7d')
    .action(async (jti: string, o: { config?: string; store?: string; ttl: string }) => {
      try {
        if (jti.length === 0 || jti.length > 512) throw new Error('jti must be 1 to 512 characters');
        const ttlMs = parseDuration(o.ttl);
        let url = o.store;
        if (url === undefined && o.config) url = (await loadConfigFile(o.config)).config.state.store;
        if (url === undefined) throw new Error('give --store URL or --config FILE');
        await revokeJti(url, jti, ttlMs);
        process.stdout.write(`revoked jti ${jti} for ${o.ttl}\n`);
      } catch (e) {
        process.stderr.write(`rampart tokens: ${(e as Error).message}\n`);
        process.exitCode = 1;
      }
    });
}
