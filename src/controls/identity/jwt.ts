/**
 * JWT access token verification (RFC 7519, RFC 7515; JWT profile for access tokens RFC 9068;
 * JWT BCP RFC 8725) with `jose`, behind structural checks that refuse the classic attacks before
 * any key is looked up or any signature computed:
 *
 * - `alg` must be in the configured allow-list (asymmetric only by default): this stops
 *   `alg: none` and the HS256-with-the-RSA-public-key key confusion (RFC 8725 §2.1, §3.1);
 * - `jku`, `x5u` and `jwk` headers are refused: keys are only ever taken from the configured
 *   JWKS (RFC 8725 §3.10 / CVE-2018-0114 class);
 * - a protected header larger than `maxHeaderBytes` (8 KiB) is refused before it is decoded;
 * - unknown `crit` parameters are refused (RFC 7515 §4.1.11);
 * - JWE (5 segments) and nested tokens (`cty: JWT`) are refused unless decryption is configured;
 * - then jose verifies the signature (ECDSA r = s = 0 is rejected by the platform verifier,
 *   CVE-2022-21449 class), `iss`, `aud`, `exp`, `nbf` with a clock tolerance, required claims
 *   and, when configured, `typ: at+jwt`.
 */
import { compactDecrypt, errors as joseErrors, jwtVerify, type CryptoKey, type JWTPayload, type KeyObject } from 'jose';
import { IdentityError, invalidToken } from './errors.ts';
import { JwksUnavailableError, type JwksCache } from './jwks.ts';

/** Options of {@link JwtVerifier}. */
export interface JwtVerifierOptions {
  issuer: string;
  audiences: string[];
  algorithms: string[];
  clockSkewSeconds: number;
  requiredClaims: string[];
  /** Required `typ` header, e.g. `at+jwt` (RFC 9068 §4); none when undefined. */
  typ?: string;
  /** Maximum decoded protected header size, bytes. */
  maxHeaderBytes: number;
  /** Maximum token length, characters. */
  maxTokenBytes: number;
  jwks: JwksCache;
  /** When set, JWE-wrapped (nested) tokens are decrypted with this key (RFC 7519 §5.2, §7.2). */
  decryption?: { key: CryptoKey | KeyObject | Uint8Array; keyManagementAlgorithms: string[]; contentEncryptionAlgorithms: string[] };
}

/** Header parameters that would let the token choose its own verification key. */
const FORBIDDEN_HEADERS = ['jku', 'x5u', 'jwk'] as const;

/** Decoded length in bytes of `n` base64url characters (no padding). */
function decodedLength(n: number): number {
  return Math.floor((n * 3) / 4);
}

/**
 * Verifies compact-serialised JWT access tokens. Stateless apart from the JWKS cache.
 */
export class JwtVerifier {
  private readonly o: JwtVerifierOptions;

  constructor(opts: JwtVerifierOptions) {
    this.o = opts;
  }

  /**
   * Verifies `token` and returns its payload and protected header.
   * @throws {IdentityError} 401 with a stable code for every invalid token; 503
   *   `identity-provider-unavailable` when no key set can be loaded.
   */
  async verify(token: string): Promise<{ payload: JWTPayload; header: Record<string, unknown> }> {
    const o = this.o;
    if (token.length > o.maxTokenBytes) throw invalidToken('token-too-large', `The access token exceeds ${o.maxTokenBytes} bytes.`);
    let dot1 = token.indexOf('.');
    const segments = token.split('.').length;
    if (segments === 5) {
      if (o.decryption === undefined) throw invalidToken('token-encrypted', 'Encrypted (JWE) access tokens are not accepted here.');
      token = await this.decrypt(token);
      dot1 = token.indexOf('.');
    } else if (segments !== 3) {
      throw invalidToken('token-malformed', 'The access token is not a compact JWS.', 'low');
    }
    if (dot1 <= 0) throw invalidToken('token-malformed', 'The access token has no protected header.', 'low');
    if (decodedLength(dot1) > o.maxHeaderBytes)
      throw invalidToken('token-header-too-large', `The token's protected header exceeds ${o.maxHeaderBytes} bytes.`, 'high');
    const header = this.parseHeader(token.slice(0, dot1));
    const alg = header.alg;
    if (typeof alg !== 'string') throw invalidToken('token-malformed', 'The token header has no "alg".', 'low');
    if (!o.algorithms.includes(alg)) {
      const shown = /^[A-Za-z0-9+_-]{1,20}$/.test(alg) ? alg : '(invalid)';
      throw invalidToken(
        'token-algorithm-not-allowed',
        `Algorithm ${shown} is not accepted.`,
        alg.toLowerCase() === 'none' || alg.startsWith('HS') ? 'high' : 'medium',
        { alg: shown },
      );
    }
    for (const h of FORBIDDEN_HEADERS) {
      if (h in header)
        throw invalidToken('token-header-forbidden', `The token names its own key ("${h}" header); keys are only taken from the issuer's JWKS.`, 'high', {
          header: h,
        });
    }
    if (header.crit !== undefined) {
      // No extension is understood by this verifier: any `crit` entry must make it fail (RFC 7515 §4.1.11).
      throw invalidToken('token-crit-unsupported', 'The token has critical header parameters this gateway does not understand.', 'medium');
    }
    if (typeof header.cty === 'string' && header.cty.toUpperCase() === 'JWT') {
      throw invalidToken('token-nested', 'Nested JWTs are not accepted here.', 'medium');
    }
    try {
      const { payload } = await jwtVerify(token, o.jwks.getKey, {
        issuer: o.issuer,
        audience: o.audiences,
        algorithms: o.algorithms,
        clockTolerance: o.clockSkewSeconds,
        requiredClaims: ['exp', ...o.requiredClaims],
        typ: o.typ,
        crit: {},
      });
      return { payload, header };
    } catch (err) {
      throw mapJoseError(err);
    }
  }

  private parseHeader(segment: string): Record<string, unknown> {
    let header: unknown;
    try {
      header = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    } catch {
      throw invalidToken('token-malformed', 'The token header is not base64url-encoded JSON.', 'low');
    }
    if (header === null || typeof header !== 'object' || Array.isArray(header))
      throw invalidToken('token-malformed', 'The token header is not a JSON object.', 'low');
    return header as Record<string, unknown>;
  }

  private async decrypt(token: string): Promise<string> {
    const d = this.o.decryption as NonNullable<JwtVerifierOptions['decryption']>;
    const protectedB64 = token.slice(0, token.indexOf('.'));
    if (decodedLength(protectedB64.length) > this.o.maxHeaderBytes)
      throw invalidToken('token-header-too-large', `The token's protected header exceeds ${this.o.maxHeaderBytes} bytes.`, 'high');
    try {
      const { plaintext, protectedHeader } = await compactDecrypt(token, d.key, {
        keyManagementAlgorithms: d.keyManagementAlgorithms,
        contentEncryptionAlgorithms: d.contentEncryptionAlgorithms,
      });
      if (typeof protectedHeader.cty !== 'string' || protectedHeader.cty.toUpperCase() !== 'JWT') {
        throw invalidToken('token-malformed', 'An encrypted token must contain a signed JWT (cty "JWT").', 'medium');
      }
      const inner = new TextDecoder('utf-8', { fatal: true }).decode(plaintext);
      if (inner.split('.').length !== 3) throw invalidToken('token-malformed', 'The encrypted token does not contain a compact JWS.', 'medium');
      return inner;
    } catch (err) {
      if (err instanceof IdentityError) throw err;
      throw invalidToken('token-decryption-failed', 'The encrypted access token could not be decrypted.', 'medium');
    }
  }
}

/** Maps jose's error classes (stable `code` strings) to identity failures. */
export function mapJoseError(err: unknown): IdentityError {
  if (err instanceof IdentityError) return err;
  if (err instanceof JwksUnavailableError) {
    return new IdentityError(
      503,
      'identity-provider-unavailable',
      'Identity provider unavailable',
      "The issuer's signing keys cannot be loaded; try again later.",
      { severity: 'high' },
    );
  }
  if (err instanceof joseErrors.JWTExpired) return invalidToken('token-expired', 'The access token has expired.', 'low');
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    switch (err.claim) {
      case 'nbf':
      case 'iat':
        return invalidToken('token-not-yet-valid', 'The access token is not valid yet.', 'low', { claim: err.claim });
      case 'iss':
        return invalidToken('token-issuer-invalid', 'The access token was not issued by the accepted issuer.', 'medium');
      case 'aud':
        return invalidToken('token-audience-invalid', 'The access token is not meant for this API.', 'medium');
      case 'typ':
        return invalidToken('token-type-invalid', 'The token is not an access token (typ).', 'medium');
      default:
        return invalidToken('token-claims-invalid', `The access token's "${err.claim}" claim is missing or invalid.`, 'medium', { claim: err.claim });
    }
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed)
    return invalidToken('token-signature-invalid', 'The access token signature is invalid.', 'high');
  if (err instanceof joseErrors.JWKSNoMatchingKey || err instanceof joseErrors.JWKSMultipleMatchingKeys) {
    return invalidToken('token-key-unknown', 'The access token is signed with a key the issuer does not publish.', 'high');
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return invalidToken('token-algorithm-not-allowed', 'The token algorithm is not accepted.', 'high');
  if (err instanceof joseErrors.JOSENotSupported) return invalidToken('token-unsupported', 'The access token uses an unsupported feature.', 'medium');
  if (err instanceof joseErrors.JWTInvalid || err instanceof joseErrors.JWSInvalid || err instanceof joseErrors.JOSEError) {
    return invalidToken('token-malformed', 'The access token is malformed.', 'low');
  }
  // Key import failures, bad signatures encodings, etc.: still an invalid token, never a 500.
  return invalidToken('token-invalid', 'The access token could not be verified.', 'medium');
}
