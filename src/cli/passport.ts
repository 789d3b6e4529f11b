/**
 * `rampart passport rotate [--file F] [--alg ES256|EdDSA] [--keep N]`: puts a new passport
 * signing key first in the key file (it signs from the next reload, within `key_reload_ms`) and
 * keeps the previous `--keep` keys published in the JWKS so that passports already minted still
 * verify. `rampart passport jwks [--file F]` prints the public JWK Set.
 */
import type { Command } from 'commander';
import { DEFAULT_PASSPORT_KEY_FILE } from '../controls/passport/index.ts';
import { loadPassportKeys, PASSPORT_ALGORITHMS, type PassportAlgorithm, publicJwks, rotatePassportKeys } from '../controls/passport/keys.ts';

/** Registers `passport rotate` and `passport jwks`. */
export function register(program: Command): void {
  const cmd = program.command('passport').description('manage the signing keys of the passports minted for upstream services');
  cmd
    .command('rotate')
    .description('generate a new signing key (it signs next; older keys stay published)')
    .option('--file <file>', 'passport key file (JWK Set)', DEFAULT_PASSPORT_KEY_FILE)
    .option('--alg <alg>', `signing algorithm (${PASSPORT_ALGORITHMS.join(', ')})`, 'ES256')
    .option('--keep <n>', 'previous keys kept published', '2')
    .action(async (o: { file: string; alg: string; keep: string }) => {
      if (!(PASSPORT_ALGORITHMS as readonly string[]).includes(o.alg)) {
        process.stderr.write(`rampart passport rotate: --alg must be one of ${PASSPORT_ALGORITHMS.join(', ')}\n`);
        process.exitCode = 2;
        return;
      }
      const keep = Number(o.keep);
      if (!Number.isInteger(keep) || keep < 0) {
        process.stderr.write('rampart passport rotate: --keep must be a whole number\n');
        process.exitCode = 2;
        return;
      }
      try {
        // Create the file on first use, so rotation also works before the gateway ever ran.
        await loadPassportKeys(o.file, o.alg as PassportAlgorithm, true);
        const kid = await rotatePassportKeys(o.file, o.alg as PassportAlgorithm, keep);
        process.stdout.write(`${o.file}: new signing key ${kid}\n`);
      } catch (e) {
        process.stderr.write(`rampart passport rotate: ${(e as Error).message}\n`);
        process.exitCode = 1;
      }
    });
  cmd
    .command('jwks')
    .description('print the public JWK Set of the passport key file')
    .option('--file <file>', 'passport key file (JWK Set)', DEFAULT_PASSPORT_KEY_FILE)
    .action(async (o: { file: string }) => {
      try {
        const set = await loadPassportKeys(o.file, 'ES256', false);
        process.stdout.write(`${JSON.stringify(publicJwks([set]), null, 2)}\n`);
      } catch (e) {
        process.stderr.write(`rampart passport jwks: ${(e as Error).message}\n`);
        process.exitCode = 1;
      }
    });
}
