/**
 * Passport signing keys: a key file shared by every gateway process (cluster workers, the
 * primary serving the JWKS), loaded or generated once.
 *
 * File formats accepted:
 * - a JWK Set `{"keys": [...]}` of private keys (RFC 7517 §5): the first key signs, every key is
 *   published (older keys stay verifiable after a rotation);
 * - a single private JWK;
 * - a PEM PKCS #8 private key (`-----BEGIN PRIVATE KEY-----`), P-256 (ES256) or Ed25519 (EdDSA).
 * A key without `kid` gets its RFC 7638 thumbprint as `kid`.
 *
 * Generation writes a temporary file and hard-links it to the final name (`link` fails with
 * EEXIST when another process got there first), so concurrent workers agree on one key set and
 * nobody ever reads a half-written file. Rotation replaces the file atomically (`rename`).
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, randomBytes } from 'node:crypto';
import { link, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { calculateJwkThumbprint, type JWK } from 'jose';

/** Passport signature algorithms: ECDSA P-256 SHA-256 (RFC 7518 §3.4) or Ed25519 (RFC 8037). */
export const PASSPORT_ALGORITHMS = ['ES256', 'EdDSA'] as const;
export type PassportAlgorithm = (typeof PASSPORT_ALGORITHMS)[number];

/** One loaded signing key. */
export interface PassportKey {
  kid: string;
  alg: PassportAlgorithm;
  privateKey: KeyObject;
  /** Public JWK as published (`kty`, curve members, `kid`, `alg`, `use: sig`). */
  publicJwk: JWK;
}

/** A loaded key set: `keys[0]` signs. */
export interface PassportKeySet {
  keys: PassportKey[];
}

/** Generates a private JWK for `alg` with its thumbprint as `kid`. */
export async function generatePassportJwk(alg: PassportAlgorithm): Promise<JWK> {
  const { privateKey } = alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519');
  const jwk = privateKey.export({ format: 'jwk' }) as JWK;
  const kid = await calculateJwkThumbprint(jwk, 'sha256');
  return { ...jwk, kid, alg, use: 'sig' };
}

function algOf(key: KeyObject, declared: unknown, where: string): PassportAlgorithm {
  const t = key.asymmetricKeyType;
  const curve = key.asymmetricKeyDetails?.namedCurve;
  const inferred: PassportAlgorithm | undefined = t === 'ed25519' ? 'EdDSA' : t === 'ec' && curve === 'prime256v1' ? 'ES256' : undefined;
  if (inferred === undefined) throw new Error(`${where}: passport keys must be EC P-256 (ES256) or Ed25519 (EdDSA)`);
  if (declared !== undefined && declared !== inferred && !(inferred === 'EdDSA' && declared === 'Ed25519')) {
    throw new Error(`${where}: key "alg" ${String(declared)} does not fit its key type (${inferred})`);
  }
  return inferred;
}

async function fromJwk(jwk: JWK, where: string): Promise<PassportKey> {
  if (typeof jwk.d !== 'string') throw new Error(`${where}: a passport signing key must be a private JWK (no "d")`);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' });
  } catch (e) {
    throw new Error(`${where}: ${(e as Error).message}`);
  }
  const alg = algOf(privateKey, jwk.alg, where);
  const pub = createPublicKey(privateKey).export({ format: 'jwk' }) as JWK;
  const kid = typeof jwk.kid === 'string' && jwk.kid !== '' ? jwk.kid : await calculateJwkThumbprint(pub, 'sha256');
  return { kid, alg, privateKey, publicJwk: { ...pub, kid, alg, use: 'sig' } };
}

/**
 * Parses a key file's content (JWK Set, JWK or PEM).
 * @throws {Error} naming `where` when the content holds no usable private key.
 */
export async function parsePassportKeys(text: string, where: string): Promise<PassportKeySet> {
  const t = text.trim();
  if (t.startsWith('-----BEGIN')) {
    let privateKey: KeyObject;
    try {
      privateKey = createPrivateKey(t);
    } catch (e) {
      throw new Error(`${where}: ${(e as Error).message}`);
    }
    const alg = algOf(privateKey, undefined, where);
    const pub = createPublicKey(privateKey).export({ format: 'jwk' }) as JWK;
    const kid = await calculateJwkThumbprint(pub, 'sha256');
    return { keys: [{ kid, alg, privateKey, publicJwk: { ...pub, kid, alg, use: 'sig' } }] };
  }
  let json: unknown;
  try {
    json = JSON.parse(t);
  } catch {
    throw new Error(`${where}: expected a JWK Set, a JWK or a PEM private key`);
  }
  const list =
    json !== null && typeof json === 'object' && Array.isArray((json as { keys?: unknown }).keys)
      ? ((json as { keys: unknown[] }).keys as JWK[])
      : [json as JWK];
  if (list.length === 0) throw new Error(`${where}: the key set is empty`);
  const keys: PassportKey[] = [];
  for (const [i, k] of list.entries()) keys.push(await fromJwk(k, `${where} key ${i}`));
  return { keys };
}

/**
 * Reads the key file at `file`; when it is missing and `generate` is true, creates it (mode
 * 0600, directory 0700) with one new `alg` key, race-free across processes.
 * @throws {Error} when the file is missing and `generate` is false, or it cannot be parsed/written.
 */
export async function loadPassportKeys(file: string, alg: PassportAlgorithm, generate: boolean): Promise<PassportKeySet> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || !generate) throw new Error(`passport key file ${file}: ${(e as Error).message}`);
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
    await writeFile(tmp, `${JSON.stringify({ keys: [await generatePassportJwk(alg)] }, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    try {
      await link(tmp, file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // Another process created it first: use theirs.
    } finally {
      await unlink(tmp).catch(() => {});
    }
    text = await readFile(file, 'utf8');
  }
  return parsePassportKeys(text, `passport key file ${file}`);
}

/**
 * Rotates the key set in `file` (a JWK Set): a new `alg` key becomes the signing key and the
 * previous keys stay published, at most `keep` of them (default 2), so passports signed just
 * before the rotation still verify. Gateways pick the new file up within their key reload
 * interval (or on a configuration reload).
 * @returns the new key's `kid`.
 * @throws {Error} when the file is not a JWK Set or cannot be written.
 */
export async function rotatePassportKeys(file: string, alg: PassportAlgorithm = 'ES256', keep = 2): Promise<string> {
  const text = await readFile(file, 'utf8');
  await parsePassportKeys(text, `passport key file ${file}`); // validate before touching it
  const json = JSON.parse(text) as { keys?: JWK[] };
  if (!Array.isArray(json.keys)) throw new Error(`passport key file ${file}: rotation needs a JWK Set file`);
  const next = await generatePassportJwk(alg);
  const out = { keys: [next, ...json.keys.slice(0, keep)] };
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(tmp, `${JSON.stringify(out, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  await rename(tmp, file);
  return next.kid as string;
}

/** The public JWK Set of `sets` (keys deduplicated by `kid`), as served at `/.well-known/jwks.json`. */
export function publicJwks(sets: Iterable<PassportKeySet>): { keys: JWK[] } {
  const seen = new Map<string, JWK>();
  for (const s of sets) for (const k of s.keys) if (!seen.has(k.kid)) seen.set(k.kid, k.publicJwk);
  return { keys: [...seen.values()] };
}
