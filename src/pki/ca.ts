/**
 * A small certificate authority for Rampart deployments and tests: a self-signed CA, server and
 * client certificates (with SPIFFE IDs), and CRLs, written as PEM. Built on `@peculiar/x509`
 * over WebCrypto; keys are ECDSA P-256 with SHA-256 signatures (RFC 5480, RFC 5758).
 *
 * Profiles follow RFC 5280 §4.2: the CA has `basicConstraints cA=TRUE` (critical) and
 * `keyCertSign`/`cRLSign`; leaf certificates have `cA=FALSE`, `digitalSignature`, and the
 * extended key usage `serverAuth` or `clientAuth`. SPIFFE X.509-SVIDs carry exactly one URI SAN
 * `spiffe://trust-domain/path` (SPIFFE X509-SVID §2, §4).
 */
// @peculiar/x509 resolves its services through tsyringe, which needs the Reflect metadata polyfill loaded first.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import * as x509 from '@peculiar/x509';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const ALG: webcrypto.EcKeyGenParams & webcrypto.EcdsaParams = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
const DAY_MS = 86_400_000;

/** A CA able to sign: its certificate and private key. */
export interface CertificateAuthority {
  cert: x509.X509Certificate;
  privateKey: CryptoKey;
  /** PEM of the CA certificate (the trust anchor clients and servers load). */
  certPem: string;
}

/** A certificate with its key, as PEM. */
export interface IssuedCertificate {
  /** PEM `CERTIFICATE`. */
  certPem: string;
  /** PEM `PRIVATE KEY` (PKCS #8, unencrypted). */
  keyPem: string;
  /** Serial number, upper-case hex (as `X509Certificate.serialNumber` in node:crypto). */
  serialNumber: string;
  cert: x509.X509Certificate;
}

/** Options of {@link createCa}. */
export interface CaOptions {
  /** Subject common name (default `Rampart CA`). */
  commonName?: string;
  /** Validity in days from now (default 3650). */
  validityDays?: number;
}

/** Options of {@link issueCertificate}. */
export interface IssueOptions {
  /** `server` (EKU serverAuth) or `client` (EKU clientAuth). */
  kind: 'server' | 'client';
  /** Subject common name (default: first DNS name, SPIFFE ID or `client`). */
  commonName?: string;
  /** Extra subject attributes, e.g. `{ O: 'Acme' }`. */
  subject?: Record<string, string>;
  /** SAN DNS names (IP addresses given here become SAN IP entries). */
  dns?: string[];
  emails?: string[];
  /** SAN URIs; a SPIFFE ID goes here or in `spiffeId`. */
  uris?: string[];
  /** SPIFFE ID (`spiffe://trust-domain/path`), added as a URI SAN. @throws when malformed. */
  spiffeId?: string;
  /** Start of validity (default: one minute ago). */
  notBefore?: Date;
  /** End of validity (default: `validityDays` after `notBefore`). */
  notAfter?: Date;
  /** Validity in days (default 397 for servers, 365 for clients). */
  validityDays?: number;
  /** Serial number, hex (default: 16 random bytes, positive). */
  serialNumber?: string;
}

/** A SPIFFE ID: `spiffe://` + trust domain (lower-case letters, digits, `.-_`) + optional path (SPIFFE ID §2). */
export const SPIFFE_ID = /^spiffe:\/\/[a-z0-9._-]+(\/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*$/;

/** 16 random bytes as hex with the top bit cleared (a positive INTEGER, RFC 5280 §4.1.2.2). */
export function randomSerial(): string {
  const b = webcrypto.getRandomValues(new Uint8Array(16));
  b[0] = ((b[0] as number) & 0x7f) | 0x01;
  return Buffer.from(b).toString('hex');
}

async function keyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

function dn(cn: string, extra: Record<string, string> = {}): string {
  const esc = (v: string) => v.replace(/([,+"\\<>;=])/g, '\\$1');
  return [`CN=${esc(cn)}`, ...Object.entries(extra).map(([k, v]) => `${k}=${esc(v)}`)].join(', ');
}

/** Creates a self-signed CA (ECDSA P-256). */
export async function createCa(o: CaOptions = {}): Promise<CertificateAuthority & { keyPem: string }> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const notBefore = new Date(Date.now() - 60_000);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: dn(o.commonName ?? 'Rampart CA'),
    notBefore,
    notAfter: new Date(notBefore.getTime() + (o.validityDays ?? 3650) * DAY_MS),
    signingAlgorithm: ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert, privateKey: keys.privateKey, certPem: cert.toString('pem'), keyPem: await keyPem(keys.privateKey) };
}

/**
 * Loads a CA from PEM (certificate and PKCS #8 ECDSA P-256 private key, as written by {@link createCa}).
 * @throws {Error} when the PEM is not a certificate / PKCS #8 P-256 key.
 */
export async function loadCa(certPem: string, keyPemText: string): Promise<CertificateAuthority> {
  const cert = new x509.X509Certificate(certPem);
  const der = x509.PemConverter.decodeFirst(keyPemText);
  const privateKey = await webcrypto.subtle.importKey('pkcs8', der, ALG, true, ['sign']);
  return { cert, privateKey, certPem: cert.toString('pem') };
}

/**
 * Issues a server or client certificate signed by `ca` (a fresh ECDSA P-256 key).
 * @throws {Error} when `spiffeId` is not a valid SPIFFE ID or a server certificate has no DNS name.
 */
export async function issueCertificate(ca: CertificateAuthority, o: IssueOptions): Promise<IssuedCertificate> {
  if (o.spiffeId !== undefined && !SPIFFE_ID.test(o.spiffeId)) throw new Error(`invalid SPIFFE ID "${o.spiffeId}" (expected spiffe://trust-domain/path)`);
  if (o.kind === 'server' && !o.dns?.length) throw new Error('a server certificate needs at least one DNS name or IP address');
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const names: x509.JsonGeneralName[] = [];
  for (const d of o.dns ?? []) names.push({ type: isIP(d) ? 'ip' : 'dns', value: d });
  for (const e of o.emails ?? []) names.push({ type: 'email', value: e });
  const uris = [...(o.spiffeId ? [o.spiffeId] : []), ...(o.uris ?? [])];
  for (const u of uris) names.push({ type: 'url', value: u });
  const cn = o.commonName ?? o.dns?.[0] ?? o.spiffeId ?? 'client';
  const notBefore = o.notBefore ?? new Date(Date.now() - 60_000);
  const days = o.validityDays ?? (o.kind === 'server' ? 397 : 365);
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
    new x509.ExtendedKeyUsageExtension([o.kind === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth]),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(ca.cert),
  ];
  // SPIFFE X509-SVID §4: the SAN holding the SPIFFE ID is critical when the subject is empty; we always set a CN.
  if (names.length) extensions.push(new x509.SubjectAlternativeNameExtension(names, false));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: o.serialNumber ?? randomSerial(),
    subject: dn(cn, o.subject),
    issuer: ca.cert.subjectName,
    notBefore,
    notAfter: o.notAfter ?? new Date(notBefore.getTime() + days * DAY_MS),
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: ca.privateKey,
    extensions,
  });
  return { cert, certPem: cert.toString('pem'), keyPem: await keyPem(keys.privateKey), serialNumber: cert.serialNumber.toUpperCase() };
}

/** Options of {@link createCrl}. */
export interface CrlOptions {
  /** Serial numbers (hex, any case, colons allowed) to list as revoked. */
  revoked: string[];
  /** Default: now. */
  thisUpdate?: Date;
  /** Default: 7 days after `thisUpdate`. */
  nextUpdate?: Date;
}

/** Creates a CRL (RFC 5280 §5) signed by `ca`, as PEM `X509 CRL`. */
export async function createCrl(ca: CertificateAuthority, o: CrlOptions): Promise<string> {
  const thisUpdate = o.thisUpdate ?? new Date();
  const crl = await x509.X509CrlGenerator.create({
    issuer: ca.cert.subjectName,
    thisUpdate,
    nextUpdate: o.nextUpdate ?? new Date(thisUpdate.getTime() + 7 * DAY_MS),
    signingAlgorithm: ALG,
    signingKey: ca.privateKey,
    entries: o.revoked.map((s) => ({ serialNumber: s.replace(/:/g, '').toLowerCase(), revocationDate: thisUpdate, reason: x509.X509CrlReason.keyCompromise })),
  });
  return crl.toString('pem');
}
