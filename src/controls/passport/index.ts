/**
 * `passport` control: after identity (and every other request check), the gateway mints a
 * short-lived signed token (JWS, RFC 7515; claims as RFC 7519) carrying the verified request
 * context for the upstream service, which verifies it with the gateway's public JWKS
 * (`packages/passport`). The Netflix "passport" / Ory Oathkeeper `id_token` mutator pattern: the
 * service behind the gateway can prove a request really passed through it.
 *
 * Claims: `iss`, `aud` (the upstream/API name), `iat`, `exp` (default TTL 30 s), `jti`, `rid`
 * (request id), and when a caller was identified `sub`, `client_id`, `scope` (space-separated,
 * RFC 8693 §4.2), `amr` (authentication methods: `jwt`, `introspection`, `api_key`, `mtls`,
 * `dpop`; RFC 8176 style), `idp` (token issuer) and `cnf` (`x5t#S256` of the TLS client
 * certificate, `jkt` of a verified DPoP key; RFC 7800). Header: `alg` ES256 or EdDSA, `kid`,
 * `typ: rampart-passport+jwt` (explicit typing, RFC 8725 §3.11).
 *
 * The passport travels in a configured header (default `Rampart-Passport`); a value sent by the
 * client under that name is always replaced. Public keys: `GET /.well-known/jwks.json` on the
 * admin listener.
 */
import { randomUUID, sign } from 'node:crypto';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { resolve } from 'node:path';
import { z } from 'zod';
import type { RequestContext } from '../../pipeline/context.ts';
import { defineControl, type ControlEnv, type ControlInstance } from '../../pipeline/control.ts';
import { Problem } from '../../pipeline/problem.ts';
import { deny, type Verdict } from '../../pipeline/verdict.ts';
import { loadPassportKeys, PASSPORT_ALGORITHMS, type PassportKey, type PassportKeySet, publicJwks } from './keys.ts';

/** Default key file, relative to the configuration directory. */
export const DEFAULT_PASSPORT_KEY_FILE = '.rampart/passport-keys.json';
/** `typ` header of passports (RFC 8725 §3.11 explicit typing). */
export const PASSPORT_TYP = 'rampart-passport+jwt';
/** Admin route of the public keys. */
export const PASSPORT_JWKS_PATH = '/.well-known/jwks.json';

const headerName = z
  .string()
  .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'expected an HTTP header field name')
  .transform((s) => s.toLowerCase());

export const passportSchema = z.strictObject({
  /** Upstream request header carrying the passport. */
  header: headerName.default('rampart-passport'),
  /** Lifetime of a passport, seconds. */
  ttl_seconds: z.number().int().min(1).max(300).default(30),
  /** `iss` of passports. */
  issuer: z.string().min(1).default('rampart'),
  /** `aud` of passports (default: the API name). */
  audience: z.string().min(1).optional(),
  /** Signing key file (JWK Set, JWK or PEM), relative to the configuration file. */
  key_file: z.string().min(1).default(DEFAULT_PASSPORT_KEY_FILE),
  /** Create the key file with a new key when it does not exist. */
  generate: z.boolean().default(true),
  /** Algorithm of generated keys. */
  algorithm: z.enum(PASSPORT_ALGORITHMS).default('ES256'),
  /** How often the key file is checked for a rotation, ms (0: only on configuration reload). */
  key_reload_ms: z.number().int().nonnegative().default(10000),
  /** Refuse requests without an identity instead of minting an anonymous passport. */
  require_identity: z.boolean().default(false),
});
export type PassportConfig = z.output<typeof passportSchema>;
export type PassportConfigInput = z.input<typeof passportSchema>;

/** Key sets published on the admin JWKS route, one entry per live control instance. */
const published = new Map<object, PassportKeySet>();

/** Serves the union of the live passport key sets (`/.well-known/jwks.json`). */
function serveJwks(_req: IncomingMessage, res: ServerResponse): void {
  const body = JSON.stringify(publicJwks(published.values()));
  res.writeHead(200, { 'content-type': 'application/jwk-set+json', 'content-length': Buffer.byteLength(body), 'cache-control': 'max-age=60' });
  res.end(body);
}

/** Header-safe base64url JSON segment. */
function segment(v: unknown): string {
  return Buffer.from(JSON.stringify(v)).toString('base64url');
}

/** A signer bound to one key: the encoded protected header is computed once. */
interface Signer {
  key: PassportKey;
  header: string;
}

function signerOf(key: PassportKey): Signer {
  return { key, header: segment({ alg: key.alg, kid: key.kid, typ: PASSPORT_TYP }) };
}

/**
 * Signs `payload` as a compact JWS (RFC 7515 §7.1): ES256 with the IEEE P1363 `r||s` signature
 * encoding of RFC 7518 §3.4, or Ed25519 (RFC 8037 §3.1).
 */
export function signPassport(s: { key: PassportKey; header: string }, payload: Record<string, unknown>): string {
  const input = `${s.header}.${segment(payload)}`;
  const sig =
    s.key.alg === 'ES256'
      ? sign('sha256', Buffer.from(input), { key: s.key.privateKey, dsaEncoding: 'ieee-p1363' })
      : sign(null, Buffer.from(input), s.key.privateKey);
  return `${input}.${sig.toString('base64url')}`;
}

/** The claims of the passport for `ctx` (see the module comment). */
export function passportClaims(ctx: RequestContext, o: { issuer: string; audience: string; ttlSeconds: number; nowMs: number }): Record<string, unknown> {
  const iat = Math.floor(o.nowMs / 1000);
  const claims: Record<string, unknown> = { iss: o.issuer, aud: o.audience, iat, exp: iat + o.ttlSeconds, jti: randomUUID(), rid: ctx.id };
  const id = ctx.identity;
  if (id !== undefined) {
    claims.sub = id.subject;
    if (id.clientId !== undefined) claims.client_id = id.clientId;
    if (id.scopes.length > 0) claims.scope = id.scopes.join(' ');
    claims.amr = [...id.methods];
    if (id.issuer !== undefined) claims.idp = id.issuer;
  }
  const cnf: Record<string, string> = {};
  const cert = ctx.tls?.peerCertificate;
  if (cert !== undefined) cnf['x5t#S256'] = cert.x5tS256;
  if (id?.methods.includes('dpop') && typeof id.cnf?.jkt === 'string') cnf.jkt = id.cnf.jkt;
  if (cnf['x5t#S256'] !== undefined || cnf.jkt !== undefined) claims.cnf = cnf;
  return claims;
}

/** The passport minter for one API, usable without the pipeline (tests, benches). */
export interface PassportEngine {
  run(ctx: RequestContext): Verdict;
  /** The signing key set in use. */
  readonly keys: PassportKeySet;
  /** Re-reads the key file now (rotation); keeps the old keys when it cannot be read. */
  reloadKeys(): Promise<void>;
  close(): void;
}

/**
 * Builds the passport minter for one API: loads (or generates) the key file, publishes the
 * public keys on the admin listener.
 * @throws {Error} naming `key_file` when the key file is missing (with `generate: false`),
 *   unreadable or holds no usable ES256/EdDSA private key.
 */
export async function createPassport(cfg: PassportConfig, env: ControlEnv): Promise<PassportEngine> {
  const file = resolve(env.configDir, cfg.key_file);
  let keys: PassportKeySet;
  try {
    keys = await loadPassportKeys(file, cfg.algorithm, cfg.generate);
  } catch (e) {
    throw new Error(`key_file: ${(e as Error).message}`);
  }
  let signer = signerOf(keys.keys[0] as PassportKey);
  const token = {};
  published.set(token, keys);
  env.addAdminRoute?.(PASSPORT_JWKS_PATH, serveJwks);

  let mtime = (await stat(file)).mtimeMs;
  const reloadKeys = async (): Promise<void> => {
    try {
      const m = (await stat(file)).mtimeMs;
      if (m === mtime) return;
      const next = await loadPassportKeys(file, cfg.algorithm, false);
      mtime = m;
      keys = next;
      signer = signerOf(next.keys[0] as PassportKey);
      if (published.has(token)) published.set(token, next);
      env.log.info('passport: signing keys reloaded', { api: env.apiName, kid: signer.key.kid });
    } catch (e) {
      env.log.warn('passport: key file reload failed; the previous keys stay in use', { api: env.apiName, error: (e as Error).message });
    }
  };
  const timer = cfg.key_reload_ms > 0 ? setInterval(() => void reloadKeys(), cfg.key_reload_ms) : undefined;
  timer?.unref();

  const audience = cfg.audience ?? env.apiName;
  const opts = { issuer: cfg.issuer, audience, ttlSeconds: cfg.ttl_seconds, nowMs: 0 };
  return {
    get keys() {
      return keys;
    },
    reloadKeys,
    run(ctx) {
      // A client-sent passport never reaches the upstream, whatever happens next.
      ctx.upstreamHeaders.set(cfg.header, null);
      if (ctx.identity === undefined && cfg.require_identity) {
        return deny(new Problem(401, 'passport-identity-missing', 'Authentication required', { detail: 'This API forwards only identified requests.' }), 'low');
      }
      opts.nowMs = Date.now();
      ctx.upstreamHeaders.set(cfg.header, signPassport(signer, passportClaims(ctx, opts)));
      return undefined;
    },
    close() {
      if (timer) clearInterval(timer);
      published.delete(token);
    },
  };
}

export const passportControl = defineControl({
  name: 'passport',
  schema: passportSchema,
  async create(cfg, env): Promise<ControlInstance> {
    const engine = await createPassport(cfg, env);
    return { request: [{ control: 'passport', phase: 'passport', run: (ctx) => engine.run(ctx) }], close: () => engine.close() };
  },
});

/**
 * The public JWK Set for a configuration, without starting controls: every API's passport key
 * file (generated when missing, exactly as the workers do). For the cluster primary, which owns
 * the admin listener but creates no controls.
 * @throws {Error} when a key file cannot be read or generated.
 */
export async function passportJwksOf(apis: readonly { controls: Record<string, unknown> }[], configDir: string): Promise<{ keys: import('jose').JWK[] }> {
  const sets: PassportKeySet[] = [];
  for (const api of apis) {
    const raw = api.controls.passport;
    if (raw === undefined || raw === false) continue;
    const cfg = passportSchema.parse(raw);
    sets.push(await loadPassportKeys(resolve(configDir, cfg.key_file), cfg.algorithm, cfg.generate));
  }
  return publicJwks(sets);
}
