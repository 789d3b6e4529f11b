/**
 * DPoP proof verification at a resource server (RFC 9449 §4.3 and §7.1), with `jose`.
 *
 * Checks, in order (cheap and structural first, the signature next, the state store last so
 * that invalid proofs never fill the replay cache):
 *  1. exactly one `DPoP` header holding one compact JWS of at most `maxProofBytes` bytes;
 *  2. header: `typ` is `dpop+jwt`, `alg` is an accepted asymmetric algorithm, `jwk` is a public
 *     key (no private members) of a key type that fits `alg`; no `crit`;
 *  3. the signature verifies with that `jwk` (node:crypto, synchronous: about 4x faster than a
 *     WebCrypto round trip per proof);
 *  4. claims: `jti` (string), `htm` equals the request method, `htu` equals the request URI
 *     (§4.3 items 9-10: query and fragment ignored, RFC 3986 §6.2.2/§6.2.3 normalisation),
 *     `iat` within [now − maxAge − skew, now + skew], `ath` = base64url(SHA-256(access token));
 *  5. the RFC 7638 thumbprint of `jwk` equals the token's `cnf.jkt` (§6.1);
 *  6. the server nonce, when required (§9: `use_dpop_nonce`);
 *  7. the `jti` was not seen before within the acceptance window (§11.1), via `Store.setIfAbsent`.
 */
import { constants, createHash, createPublicKey, type JsonWebKey, type KeyObject, timingSafeEqual, verify } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Store } from '../../state/store.ts';
import { SenderError, invalidBinding, invalidProof } from './errors.ts';
import type { DpopNonces } from './nonce.ts';

/** Asymmetric JWS algorithms accepted for proofs (RFC 7518 §3, RFC 8037, RFC 9864 `Ed25519`). */
export const DPOP_ALGORITHMS = ['ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519', 'PS256', 'PS384', 'PS512', 'RS256', 'RS384', 'RS512'] as const;
export type DpopAlgorithm = (typeof DPOP_ALGORITHMS)[number];

/** JWK members that only private (or symmetric) keys have (RFC 7517 §9.2, RFC 7518 §6). */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;

/** What each accepted algorithm needs: digest, key type, curve (RFC 7518 §3, RFC 8037 §3.1). */
interface AlgSpec {
  hash: string | null;
  kty: 'EC' | 'OKP' | 'RSA';
  crv?: string;
  pss?: boolean;
}
const ALG_SPECS: Record<DpopAlgorithm, AlgSpec> = {
  ES256: { hash: 'sha256', kty: 'EC', crv: 'P-256' },
  ES384: { hash: 'sha384', kty: 'EC', crv: 'P-384' },
  ES512: { hash: 'sha512', kty: 'EC', crv: 'P-521' },
  EdDSA: { hash: null, kty: 'OKP', crv: 'Ed25519' },
  Ed25519: { hash: null, kty: 'OKP', crv: 'Ed25519' },
  PS256: { hash: 'sha256', kty: 'RSA', pss: true },
  PS384: { hash: 'sha384', kty: 'RSA', pss: true },
  PS512: { hash: 'sha512', kty: 'RSA', pss: true },
  RS256: { hash: 'sha256', kty: 'RSA' },
  RS384: { hash: 'sha384', kty: 'RSA' },
  RS512: { hash: 'sha512', kty: 'RSA' },
};

/** Minimum RSA modulus for proof keys, bits (RFC 7518 §3.3, §3.5). */
const MIN_RSA_BITS = 2048;

/**
 * RFC 7638 JWK thumbprint (SHA-256, base64url) of a public EC, OKP or RSA key: the required
 * members in lexicographic order, no whitespace (§3.2, §3.3).
 * @returns `undefined` when a required member is missing or not a string.
 */
export function jwkThumbprint(jwk: Record<string, unknown>): string | undefined {
  let members: Record<string, unknown>;
  if (jwk.kty === 'EC') members = { crv: jwk.crv, kty: 'EC', x: jwk.x, y: jwk.y };
  else if (jwk.kty === 'OKP') members = { crv: jwk.crv, kty: 'OKP', x: jwk.x };
  else if (jwk.kty === 'RSA') members = { e: jwk.e, kty: 'RSA', n: jwk.n };
  else return undefined;
  for (const v of Object.values(members)) if (typeof v !== 'string') return undefined;
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}

/**
 * Verifies a compact JWS signature with node:crypto (synchronous, no WebCrypto round trip).
 * @returns false for a wrong signature or a signature of the wrong shape.
 */
function verifySignature(spec: AlgSpec, key: KeyObject, signingInput: string, signature: Buffer): boolean {
  try {
    const data = Buffer.from(signingInput);
    if (spec.kty === 'EC') return verify(spec.hash, data, { key, dsaEncoding: 'ieee-p1363' }, signature);
    if (spec.kty === 'OKP') return verify(null, data, key, signature);
    if (spec.pss) return verify(spec.hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }, signature);
    return verify(spec.hash, data, key, signature);
  } catch {
    return false;
  }
}

const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const UNRESERVED = /[A-Za-z0-9\-._~]/;

/**
 * Normalises an absolute http(s) URI for the `htu` comparison of RFC 9449 §4.3: scheme and host
 * lower-cased, default port removed, dot segments removed, empty path as `/`, percent-encoded
 * unreserved characters decoded and other percent-encodings upper-cased (RFC 3986 §6.2.2,
 * §6.2.3); query and fragment dropped.
 * @returns `scheme://host[:port]/path`, or `undefined` when `uri` is not an absolute http(s) URI
 *   or carries user information.
 */
export function normalizeHtu(uri: string): string | undefined {
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    return undefined;
  }
  if ((u.protocol !== 'https:' && u.protocol !== 'http:') || u.username !== '' || u.password !== '') return undefined;
  const path = u.pathname.replace(/%[0-9A-Fa-f]{2}/g, (m) => {
    const ch = String.fromCharCode(Number.parseInt(m.slice(1), 16));
    return UNRESERVED.test(ch) ? ch : m.toUpperCase();
  });
  return `${u.protocol}//${u.host}${path}`;
}

/** base64url(SHA-256(ASCII(access token))): the `ath` claim (RFC 9449 §4.2). */
export function accessTokenHash(token: string): string {
  return createHash('sha256').update(token, 'ascii').digest('base64url');
}

/** Constant-time comparison of two base64url strings. */
export function sameThumbprint(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Options of {@link DpopVerifier}. */
export interface DpopVerifierOptions {
  algorithms: readonly string[];
  /** Maximum age of a proof (`iat` in the past), seconds. */
  maxAgeSeconds: number;
  /** Clock tolerance for `iat` in either direction, seconds. */
  clockSkewSeconds: number;
  /** Maximum length of the proof, bytes. */
  maxProofBytes: number;
  /** Replay cache of `jti`s. */
  store: Store;
  /** Namespace of replay-cache keys (the API name). */
  scope: string;
  /** `closed`: a failing store answers 503; `open`: the replay check is skipped. */
  onStoreError: 'closed' | 'open';
  /** Server nonces; none required when undefined. */
  nonces?: DpopNonces;
  /** Clock in ms (tests). */
  now?: () => number;
  /** Called when the store fails. */
  onStoreFailure?: (err: Error) => void;
}

/** What the request supplies for one proof check. */
export interface DpopRequest {
  /** The `DPoP` header value(s) as received. */
  proof: string | string[] | undefined;
  /** HTTP method of the request. */
  method: string;
  /** The request URI, already normalised with {@link normalizeHtu}. */
  uri: string;
  /** The access token of the `Authorization: DPoP` header. */
  accessToken: string;
  /** The token's `cnf.jkt`. */
  jkt: string;
}

/** A verified proof. */
export interface DpopResult {
  /** RFC 7638 thumbprint of the proof key. */
  jkt: string;
  /** A fresh nonce to send in `DPoP-Nonce` (the proof used the previous window's). */
  freshNonce?: string;
}

/** Verifies DPoP proofs for one API. */
export class DpopVerifier {
  private readonly o: DpopVerifierOptions;
  private readonly now: () => number;
  private readonly replayTtlMs: number;
  /** Imported proof keys by RFC 7638 thumbprint: a client signs many proofs with one key. */
  private readonly keys = new LRUCache<string, KeyObject>({ max: 10_000 });

  constructor(o: DpopVerifierOptions) {
    this.o = o;
    this.now = o.now ?? Date.now;
    this.replayTtlMs = (o.maxAgeSeconds + 2 * o.clockSkewSeconds) * 1000;
  }

  /**
   * Verifies the proof of `r`.
   * @throws {SenderError} 401 `invalid_dpop_proof` (codes `dpop-proof-missing`, `dpop-proof-invalid`,
   *   `dpop-htm-mismatch`, `dpop-htu-mismatch`, `dpop-iat-invalid`, `dpop-ath-mismatch`,
   *   `dpop-proof-replayed`), 401 `invalid_token` `dpop-key-mismatch`, 401 `use_dpop_nonce`
   *   `dpop-nonce-required`, 503 `dpop-replay-check-unavailable`.
   */
  async verify(r: DpopRequest): Promise<DpopResult> {
    const o = this.o;
    const proof = r.proof;
    if (proof === undefined || proof === '')
      throw invalidProof('dpop-proof-missing', 'A DPoP proof (DPoP header) is required with the DPoP authorization scheme.', 'low');
    if (typeof proof !== 'string' || !COMPACT_JWS.test(proof)) {
      throw invalidProof('dpop-proof-invalid', 'The DPoP header must hold exactly one compact JWS.', 'medium', { reason: 'syntax' });
    }
    if (proof.length > o.maxProofBytes)
      throw invalidProof('dpop-proof-invalid', `The DPoP proof exceeds ${o.maxProofBytes} bytes.`, 'medium', { reason: 'size' });

    // 2. Header.
    const header = parseJson(proof.slice(0, proof.indexOf('.')));
    if (header === undefined) throw invalidProof('dpop-proof-invalid', 'The DPoP proof header is not base64url-encoded JSON.', 'medium', { reason: 'header' });
    if (header.typ !== 'dpop+jwt') throw invalidProof('dpop-proof-invalid', 'The DPoP proof "typ" must be "dpop+jwt".', 'medium', { reason: 'typ' });
    const alg = header.alg;
    if (typeof alg !== 'string' || !o.algorithms.includes(alg)) {
      const shown = typeof alg === 'string' && /^[A-Za-z0-9+_-]{1,20}$/.test(alg) ? alg : '(invalid)';
      throw invalidProof(
        'dpop-proof-invalid',
        `DPoP proof algorithm ${shown} is not accepted.`,
        shown === 'none' || shown.startsWith('HS') ? 'high' : 'medium',
        {
          reason: 'alg',
          alg: shown,
        },
      );
    }
    const jwk = header.jwk;
    if (jwk === null || typeof jwk !== 'object' || Array.isArray(jwk)) {
      throw invalidProof('dpop-proof-invalid', 'The DPoP proof header has no "jwk" public key.', 'medium', { reason: 'jwk' });
    }
    const key = jwk as Record<string, unknown>;
    for (const m of PRIVATE_MEMBERS) {
      if (m in key)
        throw invalidProof('dpop-proof-invalid', 'The DPoP proof "jwk" must be a public key; it contains private key members.', 'high', {
          reason: 'jwk-private',
        });
    }
    const spec = ALG_SPECS[alg as DpopAlgorithm];
    if (key.kty !== spec.kty || (spec.crv !== undefined && key.crv !== spec.crv)) {
      throw invalidProof('dpop-proof-invalid', 'The DPoP proof "jwk" key type or curve does not fit its algorithm.', 'medium', { reason: 'jwk-kty' });
    }
    if (header.crit !== undefined)
      throw invalidProof('dpop-proof-invalid', 'The DPoP proof has critical header parameters this gateway does not understand.', 'medium', { reason: 'crit' });
    const jkt = jwkThumbprint(key);
    if (jkt === undefined) throw invalidProof('dpop-proof-invalid', 'The DPoP proof "jwk" is not a valid public key.', 'medium', { reason: 'jwk' });
    let publicKey = this.keys.get(jkt);
    if (publicKey === undefined) {
      try {
        publicKey = createPublicKey({ key: key as JsonWebKey, format: 'jwk' });
      } catch {
        throw invalidProof('dpop-proof-invalid', 'The DPoP proof "jwk" is not a valid public key.', 'medium', { reason: 'jwk' });
      }
      this.keys.set(jkt, publicKey);
    }
    if (spec.kty === 'RSA' && (publicKey.asymmetricKeyDetails?.modulusLength ?? 0) < MIN_RSA_BITS) {
      throw invalidProof('dpop-proof-invalid', `The DPoP proof RSA key is shorter than ${MIN_RSA_BITS} bits.`, 'medium', { reason: 'jwk-size' });
    }

    // 3. Signature.
    const dot2 = proof.lastIndexOf('.');
    if (!verifySignature(spec, publicKey, proof.slice(0, dot2), Buffer.from(proof.slice(dot2 + 1), 'base64url'))) {
      throw invalidProof('dpop-proof-invalid', 'The DPoP proof signature is invalid.', 'high', { reason: 'signature' });
    }
    const payload = parseJson(proof.slice(proof.indexOf('.') + 1, dot2));
    if (payload === undefined) throw invalidProof('dpop-proof-invalid', 'The DPoP proof payload is not a JSON object.', 'medium', { reason: 'payload' });

    // 4. Claims.
    const jti = payload.jti;
    if (typeof jti !== 'string' || jti.length === 0 || jti.length > 512) {
      throw invalidProof('dpop-proof-invalid', 'The DPoP proof has no valid "jti" claim.', 'medium', { reason: 'jti' });
    }
    if (payload.htm !== r.method) throw invalidProof('dpop-htm-mismatch', 'The DPoP proof "htm" does not match the request method.', 'medium');
    const htu = typeof payload.htu === 'string' ? normalizeHtu(payload.htu) : undefined;
    if (htu === undefined || htu !== r.uri) throw invalidProof('dpop-htu-mismatch', 'The DPoP proof "htu" does not match the request URI.', 'medium');
    const iat = payload.iat;
    const nowS = this.now() / 1000;
    if (typeof iat !== 'number' || !Number.isFinite(iat) || iat > nowS + o.clockSkewSeconds || iat < nowS - o.maxAgeSeconds - o.clockSkewSeconds) {
      throw invalidProof('dpop-iat-invalid', `The DPoP proof "iat" is not within the accepted window (${o.maxAgeSeconds} s).`, 'low');
    }
    if (typeof payload.ath !== 'string' || !sameThumbprint(payload.ath, accessTokenHash(r.accessToken))) {
      throw invalidProof('dpop-ath-mismatch', 'The DPoP proof "ath" does not match the access token.', 'high');
    }

    // 5. Key binding.
    if (!sameThumbprint(jkt, r.jkt)) {
      throw invalidBinding('dpop-key-mismatch', 'The access token is bound to another DPoP key.', 'dpop', 'high');
    }

    // 6. Nonce.
    let freshNonce: string | undefined;
    if (o.nonces) {
      const c = await o.nonces.check(payload.nonce);
      if (c === 'invalid') {
        const n = await o.nonces.current();
        throw new SenderError(
          401,
          'dpop-nonce-required',
          'DPoP nonce required',
          'Resend the request with a DPoP proof carrying the server nonce (DPoP-Nonce).',
          {
            oauthError: 'use_dpop_nonce',
            challenge: 'dpop',
            severity: 'info',
            headers: { 'dpop-nonce': n },
          },
        );
      }
      if (c === 'previous') freshNonce = await o.nonces.current();
    }

    // 7. Replay.
    const replayKey = `dpop:jti:${o.scope}:${jkt}:${createHash('sha256').update(jti).digest('base64url')}`;
    let fresh: boolean;
    try {
      fresh = await o.store.setIfAbsent(replayKey, '1', this.replayTtlMs);
    } catch (err) {
      o.onStoreFailure?.(err as Error);
      if (o.onStoreError === 'open') return { jkt, freshNonce };
      throw new SenderError(503, 'dpop-replay-check-unavailable', 'Service unavailable', 'The DPoP replay cache cannot be checked; try again later.', {
        challenge: 'dpop',
        severity: 'high',
      });
    }
    if (!fresh) throw invalidProof('dpop-proof-replayed', 'This DPoP proof was already used.', 'high');
    return { jkt, freshNonce };
  }
}

function parseJson(segment: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
