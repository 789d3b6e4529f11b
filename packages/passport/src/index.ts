/**
 * @rampart/passport: verifies the passports a Rampart gateway attaches to the requests it
 * forwards (header `Rampart-Passport` by default): a short-lived JWS (RFC 7515) signed with
 * ES256 or EdDSA, `typ: rampart-passport+jwt`, whose claims carry the request context the
 * gateway verified (subject, client id, scopes, authentication methods, certificate or DPoP key
 * thumbprint, request id).
 *
 * A service behind the gateway that checks the passport knows the request passed through the
 * gateway and cannot be fooled by headers a client sets itself (zero trust between the hops).
 *
 * Depends on `jose` only.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createLocalJWKSet, createRemoteJWKSet, errors, type JSONWebKeySet, type JWTPayload, jwtVerify } from 'jose';

/** `typ` header of passports (RFC 8725 §3.11 explicit typing). */
export const PASSPORT_TYP = 'rampart-passport+jwt';
/** Default request header carrying the passport (lower case, as node:http exposes it). */
export const PASSPORT_HEADER = 'rampart-passport';

/** The verified request context carried by a passport. */
export interface Passport {
  /** `sub`: the caller, when the gateway identified one. */
  subject?: string;
  /** `client_id`: the OAuth client, when known. */
  clientId?: string;
  /** `scope`, split on spaces (empty when none). */
  scopes: string[];
  /** `amr`: how the caller authenticated at the gateway: `jwt`, `introspection`, `api_key`, `mtls`, `dpop`. */
  methods: string[];
  /** `rid`: the gateway's request id (`X-Request-Id`). */
  requestId: string;
  /** `idp`: issuer of the caller's access token, when the caller used one. */
  identityProvider?: string;
  /** `cnf`: `x5t#S256` of the TLS client certificate and/or `jkt` of the DPoP key (RFC 7800). */
  cnf?: { 'x5t#S256'?: string; jkt?: string };
  /** `iss` of the passport (the gateway). */
  issuer: string;
  /** `exp`, epoch seconds. */
  expiresAt: number;
  /** `iat`, epoch seconds. */
  issuedAt: number;
  /** Every claim as signed. */
  claims: JWTPayload;
}

/** Options of {@link verifyPassport}: `jwks` or `jwksUrl`, and the expected audience. */
export interface VerifyPassportOptions {
  /** The gateway's public keys (a JWK Set), e.g. read from a file at start-up. */
  jwks?: JSONWebKeySet;
  /**
   * Where the gateway publishes its keys: `http://<admin listener>/.well-known/jwks.json`. Fetched
   * once, cached, refetched when an unknown `kid` shows up (key rotation), at most every
   * `jwksCooldownMs`.
   */
  jwksUrl?: string | URL;
  /** Expected `aud`: the name of this upstream (the gateway's API name unless configured). */
  audience: string | string[];
  /** Expected `iss` (default `rampart`). */
  issuer?: string;
  /** Clock tolerance for `exp`/`iat`, seconds (default 5). */
  clockToleranceSeconds?: number;
  /** Maximum age of a passport (`iat`), seconds (default 300): refuses passports with a far `exp`. */
  maxAgeSeconds?: number;
  /** Accepted algorithms (default ES256 and EdDSA). */
  algorithms?: string[];
  /**
   * With `jwksUrl`: minimum time between two fetches of the key set, ms (default 30 000). An
   * unknown `kid` (key rotation) triggers a refetch once this time has passed since the last one.
   */
  jwksCooldownMs?: number;
}

/** Why a passport was refused: a stable `code`. */
export type PassportErrorCode =
  | 'passport-missing'
  | 'passport-malformed'
  | 'passport-signature-invalid'
  | 'passport-expired'
  | 'passport-claims-invalid'
  | 'passport-key-unknown'
  | 'passport-jwks-unavailable';

/** A refused passport (`code` is stable; `message` is for logs, never contains the token). */
export class PassportError extends Error {
  readonly code: PassportErrorCode;
  constructor(code: PassportErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PassportError';
    this.code = code;
  }
}

type KeyResolver = ReturnType<typeof createLocalJWKSet>;
const localSets = new WeakMap<JSONWebKeySet, KeyResolver>();
const remoteSets = new Map<string, KeyResolver>();

function resolverOf(o: VerifyPassportOptions): KeyResolver {
  if (o.jwks !== undefined) {
    let r = localSets.get(o.jwks);
    if (r === undefined) {
      r = createLocalJWKSet(o.jwks);
      localSets.set(o.jwks, r);
    }
    return r;
  }
  if (o.jwksUrl !== undefined) {
    const url = String(o.jwksUrl);
    const cooldown = o.jwksCooldownMs ?? 30_000;
    const id = `${cooldown} ${url}`;
    let r = remoteSets.get(id);
    if (r === undefined) {
      r = createRemoteJWKSet(new URL(url), { cooldownDuration: cooldown, cacheMaxAge: 600_000, timeoutDuration: 5_000 }) as KeyResolver;
      remoteSets.set(id, r);
    }
    return r;
  }
  throw new TypeError('verifyPassport: set `jwks` or `jwksUrl`');
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

/**
 * Verifies a passport and returns its context.
 *
 * Checks: compact JWS with `typ: rampart-passport+jwt`, `alg` in `algorithms`, a signature by a
 * key of the gateway's JWK Set (`kid`), `iss`, `aud`, `exp` and `iat` (not in the future, not
 * older than `maxAgeSeconds`) with `clockToleranceSeconds`, and a `rid` claim.
 * @throws {PassportError} with a stable code (see {@link PassportErrorCode}).
 * @throws {TypeError} when neither `jwks` nor `jwksUrl` is set.
 */
export async function verifyPassport(token: string | undefined, opts: VerifyPassportOptions): Promise<Passport> {
  if (token === undefined || token === '') throw new PassportError('passport-missing', 'No passport was sent.');
  if (token.length > 16384 || token.split('.').length !== 3) throw new PassportError('passport-malformed', 'The passport is not a compact JWS.');
  const keys = resolverOf(opts);
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, keys, {
      typ: PASSPORT_TYP,
      algorithms: opts.algorithms ?? ['ES256', 'EdDSA'],
      issuer: opts.issuer ?? 'rampart',
      audience: opts.audience,
      clockTolerance: opts.clockToleranceSeconds ?? 5,
      maxTokenAge: opts.maxAgeSeconds ?? 300,
      requiredClaims: ['exp', 'iat', 'rid'],
    }));
  } catch (err) {
    throw mapError(err);
  }
  const p = payload as JWTPayload & Record<string, unknown>;
  if (typeof p.rid !== 'string') throw new PassportError('passport-claims-invalid', 'The passport "rid" claim is not a string.');
  const cnf = p.cnf !== null && typeof p.cnf === 'object' ? (p.cnf as Passport['cnf']) : undefined;
  return {
    subject: typeof p.sub === 'string' ? p.sub : undefined,
    clientId: typeof p.client_id === 'string' ? p.client_id : undefined,
    scopes: typeof p.scope === 'string' && p.scope !== '' ? p.scope.split(' ') : [],
    methods: strings(p.amr),
    requestId: p.rid,
    identityProvider: typeof p.idp === 'string' ? p.idp : undefined,
    cnf,
    issuer: p.iss as string,
    expiresAt: p.exp as number,
    issuedAt: p.iat as number,
    claims: payload,
  };
}

function mapError(err: unknown): PassportError {
  if (err instanceof errors.JWTExpired) return new PassportError('passport-expired', 'The passport has expired.', { cause: err });
  if (err instanceof errors.JWTClaimValidationFailed)
    return new PassportError('passport-claims-invalid', `The passport "${err.claim}" claim is invalid (${err.reason}).`, { cause: err });
  if (err instanceof errors.JWSSignatureVerificationFailed)
    return new PassportError('passport-signature-invalid', 'The passport signature is invalid.', { cause: err });
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) {
    return new PassportError('passport-key-unknown', 'The passport is signed by a key the gateway does not publish.', { cause: err });
  }
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid || (err instanceof Error && !(err instanceof errors.JOSEError))) {
    return new PassportError('passport-jwks-unavailable', "The gateway's public keys cannot be loaded.", { cause: err });
  }
  return new PassportError('passport-malformed', 'The passport is malformed or uses an algorithm that is not accepted.', { cause: err });
}

/** Options of {@link passportMiddleware}. */
export interface PassportMiddlewareOptions extends VerifyPassportOptions {
  /** Request header carrying the passport (default `rampart-passport`). */
  header?: string;
  /**
   * Answers a refused request. Default: `401` with an RFC 9457 problem-details body whose `type`
   * ends with the error code (`passport-expired`, ...); 503 when the keys cannot be loaded.
   */
  onError?: (err: PassportError, req: IncomingMessage, res: ServerResponse) => void;
}

/** A request that carries a verified passport. */
export type PassportRequest = IncomingMessage & { passport: Passport };

function defaultOnError(err: PassportError, _req: IncomingMessage, res: ServerResponse): void {
  const status = err.code === 'passport-jwks-unavailable' ? 503 : 401;
  const body = JSON.stringify({
    type: `https://rampart.dev/problems/${err.code}`,
    title: status === 401 ? 'Unauthorized' : 'Service Unavailable',
    status,
    detail: err.message,
  });
  res.writeHead(status, { 'content-type': 'application/problem+json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

/**
 * Express/Connect-style middleware `(req, res, next)`: verifies the passport header, sets
 * `req.passport` and calls `next()`; refuses the request otherwise (see `onError`). A passport
 * header sent more than once is refused as malformed.
 */
export function passportMiddleware(opts: PassportMiddlewareOptions): (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void {
  const header = (opts.header ?? PASSPORT_HEADER).toLowerCase();
  const onError = opts.onError ?? defaultOnError;
  resolverOf(opts); // validate options at construction
  return (req, res, next) => {
    const v = req.headers[header];
    if (Array.isArray(v)) {
      onError(new PassportError('passport-malformed', 'More than one passport header was sent.'), req, res);
      return;
    }
    verifyPassport(v, opts).then(
      (passport) => {
        (req as PassportRequest).passport = passport;
        next();
      },
      (err: unknown) => {
        if (err instanceof PassportError) onError(err, req, res);
        else next(err);
      },
    );
  };
}

/**
 * Wraps a `node:http` request handler: the handler runs only for requests with a valid passport,
 * available as `req.passport`.
 */
export function withPassport(
  opts: PassportMiddlewareOptions,
  handler: (req: PassportRequest, res: ServerResponse) => void | Promise<void>,
): (req: IncomingMessage, res: ServerResponse) => void {
  const mw = passportMiddleware(opts);
  return (req, res) => {
    mw(req, res, (err) => {
      if (err !== undefined) {
        if (!res.headersSent) res.writeHead(500).end();
        return;
      }
      void Promise.resolve(handler(req as PassportRequest, res)).catch(() => {
        if (!res.headersSent) res.writeHead(500).end();
        else res.destroy();
      });
    });
  };
}
