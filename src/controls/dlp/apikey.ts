/**
 * Rampart API key format: the one definition shared by the DLP detector (which finds leaked keys
 * in responses) and the identity control (which issues and verifies them).
 *
 * Format (57 ASCII characters):
 *
 *     rk_live_ | rk_test_          prefix, 8 characters: environment
 *     base62(32 random bytes)      43 characters, fixed width (left-padded with `0`)
 *     base62(CRC32(prefix+body))   6 characters, fixed width (left-padded with `0`)
 *
 * base62 alphabet `0-9A-Za-z` (digit value order), big-endian. CRC32 is ISO-HDLC / zlib
 * (`zlib.crc32`) over the ASCII bytes of the preceding 51 characters (prefix and body). The checksum lets scanners
 * recognise a key with no false positives worth mentioning (1 in 2^32) and without a lookup,
 * the same idea as GitHub's token format.
 */
import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';

/** The base62 alphabet: digits, upper case, lower case. */
export const BASE62_ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Length of the base62 body encoding 32 random bytes. */
export const RAMPART_KEY_BODY_CHARS = 43;
/** Length of the base62 CRC32 checksum. */
export const RAMPART_KEY_CHECKSUM_CHARS = 6;
/** Total key length: 8 + 43 + 6. */
export const RAMPART_KEY_LENGTH = 8 + RAMPART_KEY_BODY_CHARS + RAMPART_KEY_CHECKSUM_CHARS;

const KEY_SHAPE = /^rk_(?:live|test)_[0-9A-Za-z]{49}$/;

/**
 * Big-endian base62 of an unsigned integer given as bytes, left-padded with `0` to `width`.
 * @throws {RangeError} when the value needs more than `width` characters.
 */
export function base62(bytes: Uint8Array, width: number): string {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  let out = '';
  while (n > 0n) {
    out = BASE62_ALPHABET[Number(n % 62n)] + out;
    n /= 62n;
  }
  if (out.length > width) throw new RangeError(`value needs ${out.length} base62 characters, more than ${width}`);
  return out.padStart(width, '0');
}

/** base62 of a CRC32 value, fixed width 6. */
function checksum(s: string): string {
  const c = crc32(s);
  return base62(new Uint8Array([c >>> 24, (c >>> 16) & 255, (c >>> 8) & 255, c & 255]), RAMPART_KEY_CHECKSUM_CHARS);
}

/**
 * Whether `s` is a well-formed Rampart API key: prefix `rk_live_` or `rk_test_`, 43 base62
 * characters, and a 6-character base62 CRC32 of everything before it that matches.
 * Does not say whether the key is issued or revoked (that is the identity control's job).
 */
export function isRampartApiKey(s: string): boolean {
  if (s.length !== RAMPART_KEY_LENGTH || !KEY_SHAPE.test(s)) return false;
  const head = s.slice(0, RAMPART_KEY_LENGTH - RAMPART_KEY_CHECKSUM_CHARS);
  return checksum(head) === s.slice(RAMPART_KEY_LENGTH - RAMPART_KEY_CHECKSUM_CHARS);
}

/**
 * Creates a Rampart API key in the format above.
 * @param env `live` or `test` (the prefix).
 * @param random 32 bytes of key material; defaults to `crypto.randomBytes(32)`.
 * @throws {RangeError} when `random` is not 32 bytes.
 */
export function createRampartApiKey(env: 'live' | 'test' = 'live', random: Uint8Array = randomBytes(32)): string {
  if (random.length !== 32) throw new RangeError('a Rampart API key needs exactly 32 random bytes');
  const head = `rk_${env}_${base62(random, RAMPART_KEY_BODY_CHARS)}`;
  return head + checksum(head);
}
