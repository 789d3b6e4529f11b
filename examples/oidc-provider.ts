/**
 * A real OpenID provider for the demo (`npm start`) and the tests: `oidc-provider` (a certified OpenID Connect implementation)
 * listening on 127.0.0.1 with an ephemeral port.
 *
 * - a confidential client (`client_secret_basic`) allowed the `client_credentials` grant;
 * - resource indicators (RFC 8707): the resource `audience` gets JWT access tokens (RFC 9068,
 *   `typ: at+jwt`), the resource `opaqueAudience` gets opaque tokens (for RFC 7662 introspection);
 * - introspection (RFC 7662) and revocation (RFC 7009) enabled;
 * - signing keys generated here and exposed (`signingKeys`), so tests can also forge tokens with
 *   the real key; `rotateKeys()` replaces the signing key mid-test on the same issuer URL.
 *
 * Reusable for sender-constrained tokens: pass `features` (e.g. `{ mTLS: {...}, dPoP: {...} }`),
 * extra `clients` and `extraTokenClaims`; everything else in `providerConfig` is merged last.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import Provider from 'oidc-provider';

/** A signing key of the test provider: the private JWK (with `kid`, `alg`, `use`) and its public half. */
export interface TestSigningKey {
  kid: string;
  alg: string;
  privateJwk: JWK;
  publicJwk: JWK;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
}

/** Options of {@link startOidcProvider}. */
export interface OidcProviderOptions {
  /** Port on 127.0.0.1 (default 0: a random free port). */
  port?: number;
  /** Client id of the client-credentials client (default `rampart-test`). */
  clientId?: string;
  /** Its secret (default `rampart-test-secret-0123456789abcdef`). */
  clientSecret?: string;
  /** Resource indicator / `aud` of JWT access tokens (default `https://api.rampart.test`). */
  audience?: string;
  /** Resource indicator of opaque access tokens (default `urn:rampart:opaque`). */
  opaqueAudience?: string;
  /** Scopes the resource servers accept (default `read write admin`). */
  scopes?: string[];
  /** Access token lifetime in seconds (default 300). */
  accessTokenTtlSeconds?: number;
  /** Signing algorithm of the generated key (default `RS256`). */
  alg?: 'RS256' | 'PS256' | 'ES256' | 'ES384' | 'EdDSA';
  /** Extra clients (oidc-provider client metadata). */
  clients?: Record<string, unknown>[];
  /** Extra `features` merged into the defaults (e.g. `mTLS`, `dPoP`). */
  features?: Record<string, unknown>;
  /** Extra claims for issued tokens (oidc-provider `extraTokenClaims`). */
  extraTokenClaims?: (ctx: unknown, token: unknown) => Promise<Record<string, unknown> | undefined> | Record<string, unknown> | undefined;
  /** Anything else of the oidc-provider configuration, merged last (shallow). */
  providerConfig?: Record<string, unknown>;
}

/** A running test provider. */
export interface TestOidcProvider {
  /** Issuer URL, e.g. `http://127.0.0.1:40123` (no trailing slash). */
  issuer: string;
  jwksUri: string;
  tokenEndpoint: string;
  introspectionEndpoint: string;
  clientId: string;
  clientSecret: string;
  audience: string;
  opaqueAudience: string;
  /** Current signing keys; the first one signs. */
  signingKeys: TestSigningKey[];
  /** Counters of requests served, by path (e.g. `/jwks`), for "exactly one refetch" assertions. */
  hits: Map<string, number>;
  /** Client-credentials token (RFC 6749 §4.4) for `resource` (default the JWT audience). */
  token(opts?: { scope?: string; resource?: string; clientId?: string; clientSecret?: string }): Promise<string>;
  /**
   * Generates a new signing key and makes it the one that signs. With `keepOld` (default true)
   * the previous keys stay published in the JWKS; otherwise they are withdrawn.
   */
  rotateKeys(opts?: { keepOld?: boolean }): Promise<TestSigningKey>;
  /** Makes every request fail with 503 (provider outage) until `setDown(false)`. */
  setDown(down: boolean): void;
  close(): Promise<void>;
}

let kidCounter = 0;

/**
 * In-memory oidc-provider adapter shared by every provider instance of one test provider, so that
 * tokens issued before `rotateKeys()` stay introspectable after it. Entries expire with the token.
 */
function sharedAdapter(): new (model: string) => object {
  const store = new Map<string, { payload: Record<string, unknown>; expiresAt: number }>();
  const live = (key: string): Record<string, unknown> | undefined => {
    const e = store.get(key);
    if (e === undefined) return undefined;
    if (e.expiresAt <= Date.now()) {
      store.delete(key);
      return undefined;
    }
    return e.payload;
  };
  return class SharedMemoryAdapter {
    readonly model: string;
    constructor(model: string) {
      this.model = model;
    }
    async upsert(id: string, payload: Record<string, unknown>, expiresIn: number): Promise<void> {
      store.set(`${this.model}:${id}`, { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : Number.POSITIVE_INFINITY });
    }
    async find(id: string): Promise<Record<string, unknown> | undefined> {
      return live(`${this.model}:${id}`);
    }
    async findByUserCode(): Promise<undefined> {
      return undefined;
    }
    async findByUid(uid: string): Promise<Record<string, unknown> | undefined> {
      for (const [k] of store) {
        const p = live(k);
        if (k.startsWith(`${this.model}:`) && p?.uid === uid) return p;
      }
      return undefined;
    }
    async consume(id: string): Promise<void> {
      const p = live(`${this.model}:${id}`);
      if (p) p.consumed = Math.floor(Date.now() / 1000);
    }
    async destroy(id: string): Promise<void> {
      store.delete(`${this.model}:${id}`);
    }
    async revokeByGrantId(grantId: string): Promise<void> {
      for (const [k, e] of store) if (e.payload.grantId === grantId) store.delete(k);
    }
  };
}

/** Generates a signing key for the test provider (extractable, with a fresh `kid`). */
export async function generateSigningKey(alg: TestSigningKey['alg'] = 'RS256'): Promise<TestSigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const kid = `test-key-${process.pid}-${++kidCounter}`;
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg, use: 'sig' };
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { kid, alg, privateJwk, publicJwk, privateKey, publicKey };
}

/**
 * Starts oidc-provider on 127.0.0.1 (`opts.port`, default a random port).
 * @throws when the provider cannot be constructed (invalid configuration).
 */
export async function startOidcProvider(opts: OidcProviderOptions = {}): Promise<TestOidcProvider> {
  const clientId = opts.clientId ?? 'rampart-test';
  const clientSecret = opts.clientSecret ?? 'rampart-test-secret-0123456789abcdef';
  const audience = opts.audience ?? 'https://api.rampart.test';
  const opaqueAudience = opts.opaqueAudience ?? 'urn:rampart:opaque';
  const scopes = opts.scopes ?? ['read', 'write', 'admin'];
  const ttl = opts.accessTokenTtlSeconds ?? 300;
  const alg = opts.alg ?? 'RS256';
  let signingKeys: TestSigningKey[] = [await generateSigningKey(alg)];
  const hits = new Map<string, number>();
  let down = false;

  const server: Server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  const issuer = `http://127.0.0.1:${port}`;

  const Adapter = sharedAdapter();
  const build = (): ((req: IncomingMessage, res: ServerResponse) => void) => {
    const config: Record<string, unknown> = {
      clients: [
        {
          client_id: clientId,
          client_secret: clientSecret,
          grant_types: ['client_credentials'],
          redirect_uris: [],
          response_types: [],
          token_endpoint_auth_method: 'client_secret_basic',
        },
        ...(opts.clients ?? []),
      ],
      jwks: { keys: signingKeys.map((k) => k.privateJwk) },
      scopes,
      adapter: Adapter,
      ttl: { ClientCredentials: ttl },
      features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        introspection: { enabled: true, allowedPolicy: () => true },
        revocation: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => audience,
          useGrantedResource: () => true,
          getResourceServerInfo: (_ctx: unknown, resource: string) => {
            if (resource === audience) {
              return { scope: scopes.join(' '), audience, accessTokenTTL: ttl, accessTokenFormat: 'jwt', jwt: { sign: { alg } } };
            }
            if (resource === opaqueAudience) {
              return { scope: scopes.join(' '), audience: opaqueAudience, accessTokenTTL: ttl, accessTokenFormat: 'opaque' };
            }
            throw new Error(`unknown resource ${resource}`);
          },
        },
        ...(opts.features ?? {}),
      },
      ...(opts.extraTokenClaims ? { extraTokenClaims: opts.extraTokenClaims } : {}),
      ...(opts.providerConfig ?? {}),
    };
    const provider = new Provider(issuer, config as ConstructorParameters<typeof Provider>[1]);
    // Keep test output quiet: oidc-provider reports server errors on its event emitter.
    provider.on('server_error', () => {});
    return provider.callback() as (req: IncomingMessage, res: ServerResponse) => void;
  };
  let handler = build();

  server.on('request', (req, res) => {
    const path = (req.url ?? '/').split('?')[0] as string;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    if (down) {
      res.writeHead(503, { 'content-type': 'text/plain' }).end('provider down');
      return;
    }
    handler(req, res);
  });

  const discovery = (await (await fetch(`${issuer}/.well-known/openid-configuration`)).json()) as Record<string, string>;

  const basic = (id: string, secret: string): string => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

  return {
    issuer,
    jwksUri: discovery.jwks_uri as string,
    tokenEndpoint: discovery.token_endpoint as string,
    introspectionEndpoint: discovery.introspection_endpoint as string,
    clientId,
    clientSecret,
    audience,
    opaqueAudience,
    get signingKeys() {
      return signingKeys;
    },
    hits,
    async token(t = {}) {
      const body = new URLSearchParams({ grant_type: 'client_credentials', resource: t.resource ?? audience });
      if (t.scope !== undefined) body.set('scope', t.scope);
      const res = await fetch(discovery.token_endpoint as string, {
        method: 'POST',
        headers: { authorization: basic(t.clientId ?? clientId, t.clientSecret ?? clientSecret), 'content-type': 'application/x-www-form-urlencoded' },
        body,
      });
      const json = (await res.json()) as { access_token?: string; error?: string; error_description?: string };
      if (!res.ok || json.access_token === undefined) throw new Error(`token request failed: ${res.status} ${json.error} ${json.error_description}`);
      return json.access_token;
    },
    async rotateKeys(r = {}) {
      const next = await generateSigningKey(alg);
      signingKeys = r.keepOld === false ? [next] : [next, ...signingKeys];
      handler = build();
      return next;
    },
    setDown(d: boolean) {
      down = d;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
