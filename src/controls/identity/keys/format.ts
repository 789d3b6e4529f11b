/**
 * Rampart API key format, as the identity control uses it (Stripe / GitHub style: prefixed,
 * high entropy, self-checking):
 *
 *     rk_live_<43 base62 chars: 32 random bytes><6 base62 chars: CRC32 of everything before>
 *
 * The one definition lives in `src/controls/dlp/apikey.ts` (the DLP detector recognises leaked
 * keys with the same code), and this module only adapts it; the two can never disagree. A key is
 * 8 + 43 + 6 = 57 characters, base62 alphabet `0-9A-Za-z`, CRC-32 as in zlib.
 */
import { createRampartApiKey, isRampartApiKey, RAMPART_KEY_LENGTH } from '../../dlp/apikey.ts';

/** Key prefixes: live and test environments. */
export const API_KEY_PREFIXES = ['rk_live_', 'rk_test_'] as const;
export type ApiKeyPrefix = (typeof API_KEY_PREFIXES)[number];
/** Total length of a key in characters (57). */
export const API_KEY_LENGTH = RAMPART_KEY_LENGTH;

/**
 * Generates a new API key from 32 bytes of CSPRNG output (`crypto.randomBytes`).
 * @param prefix `rk_live_` (default) or `rk_test_`.
 */
export function generateApiKey(prefix: ApiKeyPrefix = 'rk_live_'): string {
  return createRampartApiKey(prefix === 'rk_test_' ? 'test' : 'live');
}

/**
 * Whether `s` is a well-formed Rampart API key (prefix, length, alphabet, CRC-32 checksum).
 * Never throws; does no lookup.
 */
export { isRampartApiKey };
