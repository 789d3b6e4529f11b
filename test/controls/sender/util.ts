/**
 * Test utilities for the sender control: request contexts with TLS facts, DPoP proofs signed
 * with real keys (jose), and X.509 certificates built with @peculiar/x509.
 */
// @peculiar/x509 resolves its services through tsyringe, which needs the Reflect metadata polyfill first.
import 'reflect-metadata';
import { createHash, webcrypto } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import * as x509 from '@peculiar/x509';
import { type CryptoKey, calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import type { EventInput } from '../../../src/events/event.ts';
import { type ClientCertificate, type Identity, RequestContext, type TlsInfo } from '../../../src/pipeline/context.ts';
import type { ControlEnv } from '../../../src/pipeline/control.ts';
import type { Store } from '../../../src/state/store.ts';
import { MemoryStore } from '../../../src/state/memory.ts';

let n = 0;

/** Options of {@link makeCtx}. */
export interface CtxOptions {
  headers?: Record<string, string | string[]>;
  method?: string;
  target?: string;
  scheme?: 'http' | 'https';
  host?: string;
  tls?: TlsInfo;
  identity?: Identity;
  apiName?: string;
}

/** A RequestContext for the given request facts. */
export function makeCtx(o: CtxOptions = {}): RequestContext {
  const headers = o.headers ?? {};
  const method = o.method ?? 'GET';
  const target = o.target ?? '/orders';
  const rawHeaders: string[] = [];
  for (const [k, v] of Object.entries(headers)) for (const x of Array.isArray(v) ? v : [v]) rawHeaders.push(k, x);
  const req = { headers, rawHeaders, method, url: target } as unknown as IncomingMessage;
  const ctx = new RequestContext(
    {
      id: `req-${++n}`,
      req,
      method,
      target,
      clientIp: '127.0.0.1',
      peerIp: '127.0.0.1',
      scheme: o.scheme ?? 'https',
      host: o.host ?? 'api.example.com',
      tls: o.tls,
      apiName: o.apiName ?? 'orders',
      body: { read: async () => Buffer.alloc(0), buffered: undefined },
      emit: () => {},
      signal: new AbortController().signal,
    },
    1024 * 1024,
  );
  if (o.identity) ctx.identity = o.identity;
  return ctx;
}

/** A ControlEnv over `store` (default a fresh MemoryStore); warnings are collected. */
export function makeEnv(store: Store = new MemoryStore(), apiName = 'orders'): ControlEnv & { events: EventInput[]; warnings: string[] } {
  const events: EventInput[] = [];
  const warnings: string[] = [];
  return {
    apiName,
    configDir: process.cwd(),
    store,
    events,
    warnings,
    emit: (e) => events.push(e),
    log: { info: () => {}, warn: (m) => warnings.push(m), error: (m) => warnings.push(m) },
  };
}

/** A verified identity as the identity control leaves it (methods `jwt`). */
export function identityWith(cnf?: Record<string, unknown>): Identity {
  return { subject: 'alice', clientId: 'app', scopes: ['read'], methods: ['jwt'], claims: { sub: 'alice' }, cnf };
}

/** A DPoP key pair with its public JWK and RFC 7638 thumbprint. */
export interface DpopKey {
  alg: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
  jkt: string;
}

/** Generates a DPoP key (default ES256). */
export async function dpopKey(alg = 'ES256'): Promise<DpopKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  return { alg, privateKey, publicJwk, jkt: await calculateJwkThumbprint(publicJwk, 'sha256') };
}

/** Options of {@link proof}; each field overrides what a valid proof would carry. */
export interface ProofOptions {
  htm?: string;
  htu?: string;
  /** The access token whose hash goes into `ath` (omit `ath` with `null`). */
  token?: string | null;
  ath?: string;
  iat?: number;
  jti?: string;
  nonce?: string;
  typ?: string;
  /** Header `jwk` override (e.g. a private JWK, or another key's). */
  jwk?: JWK;
  /** Sign with this key instead of the DPoP key (signature mismatch). */
  signWith?: CryptoKey;
}

let jtiCounter = 0;

/** A DPoP proof JWT (RFC 9449 §4.2) for `key`. */
export async function proof(key: DpopKey, o: ProofOptions = {}): Promise<string> {
  const payload: Record<string, unknown> = {
    htm: o.htm ?? 'GET',
    htu: o.htu ?? 'https://api.example.com/orders',
    iat: o.iat ?? Math.floor(Date.now() / 1000),
    jti: o.jti ?? `jti-${process.pid}-${++jtiCounter}-${Math.random()}`,
  };
  if (o.token !== null && o.token !== undefined) payload.ath = createHash('sha256').update(o.token).digest('base64url');
  if (o.ath !== undefined) payload.ath = o.ath;
  if (o.nonce !== undefined) payload.nonce = o.nonce;
  return new SignJWT(payload).setProtectedHeader({ alg: key.alg, typ: o.typ ?? 'dpop+jwt', jwk: o.jwk ?? key.publicJwk }).sign(o.signWith ?? key.privateKey);
}

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/** A self-signed client certificate: its DER and the ClientCertificate the listener would build. */
export async function clientCertificate(cn: string): Promise<{ der: Buffer; cert: ClientCertificate; pem: string; keyPem: string }> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const c = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: Date.now().toString(16) + Math.floor(Math.random() * 1e6).toString(16),
    name: `CN=${cn}`,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3600_000),
    keys,
    signingAlgorithm: alg,
  });
  const der = Buffer.from(c.rawData);
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const keyPem = `-----BEGIN PRIVATE KEY-----\n${pkcs8.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END PRIVATE KEY-----\n`;
  return {
    der,
    pem: c.toString('pem'),
    keyPem,
    cert: { der, x5tS256: createHash('sha256').update(der).digest('base64url'), subject: `CN=${cn}` },
  };
}

/** TLS facts of a connection that presented `cert`. */
export function tlsWith(cert: ClientCertificate | undefined): TlsInfo {
  return {
    protocol: 'TLSv1.3',
    cipher: 'TLS_AES_128_GCM_SHA256',
    alpn: 'http/1.1',
    servername: 'api.example.com',
    authorized: cert !== undefined,
    peerCertificate: cert,
  };
}
