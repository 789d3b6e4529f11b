/**
 * Runtime certificate facts for the TLS listener and the transport control: the
 * {@link ClientCertificate} of a DER certificate (RFC 8705 §3.1 thumbprint, SANs, SPIFFE ID),
 * serial-number and fingerprint normalisation, SPKI hashes (RFC 7469 §2.4), the `Client-Cert`
 * header of RFC 9440, PEM bundles, CRLs (RFC 5280 §5) and an issuer/validity check.
 */
import { createHash, type X509Certificate as NodeX509 } from 'node:crypto';
import { SPIFFE_ID } from './ca.ts';
import * as x509 from '@peculiar/x509';
import type { ClientCertificate } from '../pipeline/context.ts';

/** base64url without padding (RFC 4648 §5). */
export function base64url(buf: Buffer): string {
  return buf.toString('base64url');
}

/**
 * The {@link ClientCertificate} facts of a DER certificate: `x5tS256` = base64url(SHA-256(DER))
 * (RFC 8705 §3.1), subject DN (RFC 4514 attribute syntax, in certificate order), serial number
 * (normalised by {@link normalizeSerial}), SAN URI/DNS/email entries, the SPIFFE ID (the single
 * `spiffe://` URI SAN, SPIFFE X509-SVID §2; undefined when there is none or more than one) and
 * the validity period.
 * @throws {Error} when `der` is not a certificate.
 */
export function clientCertificateOf(der: Buffer): ClientCertificate {
  const c = new x509.X509Certificate(der);
  const uris: string[] = [];
  const dnsNames: string[] = [];
  const emails: string[] = [];
  const san = c.getExtension(x509.SubjectAlternativeNameExtension);
  if (san) {
    for (const n of san.names.items) {
      if (n.type === 'url') uris.push(n.value);
      else if (n.type === 'dns') dnsNames.push(n.value);
      else if (n.type === 'email') emails.push(n.value);
    }
  }
  const spiffe = uris.filter((u) => u.startsWith('spiffe://'));
  const out: ClientCertificate = {
    der,
    x5tS256: base64url(createHash('sha256').update(der).digest()),
    subject: c.subject,
    serialNumber: normalizeSerial(c.serialNumber),
    validFrom: c.notBefore,
    validTo: c.notAfter,
  };
  if (uris.length) out.uris = uris;
  if (dnsNames.length) out.dnsNames = dnsNames;
  if (emails.length) out.emails = emails;
  if (spiffe.length === 1 && SPIFFE_ID.test(spiffe[0] as string)) out.spiffeId = spiffe[0];
  return out;
}

/** Upper-case hex without separators or leading zeros (`00:0a:FF` → `AFF`); '0' for zero. */
export function normalizeSerial(s: string): string {
  const h = s.replace(/[\s:]/g, '').toUpperCase().replace(/^0+/, '');
  return h === '' ? '0' : h;
}

/**
 * Decodes a SHA-256 value given as hex (colons allowed, as `openssl x509 -fingerprint -sha256`
 * prints it), base64 or base64url into its 32 bytes.
 * @throws {Error} when it is none of these or not 32 bytes long.
 */
export function decodeSha256(s: string): Buffer {
  const t = s.trim();
  let b: Buffer;
  if (/^([0-9a-fA-F]{2}:){31}[0-9a-fA-F]{2}$/.test(t) || /^[0-9a-fA-F]{64}$/.test(t)) b = Buffer.from(t.replace(/:/g, ''), 'hex');
  else if (/^[A-Za-z0-9+/_-]{43}=?$/.test(t)) b = Buffer.from(t.replace(/=$/, '').replace(/\+/g, '-').replace(/\//g, '_'), 'base64url');
  else throw new Error(`"${s}" is not a SHA-256 value in hex or base64`);
  if (b.length !== 32) throw new Error(`"${s}" is not 32 bytes`);
  return b;
}

/** SHA-256 of the certificate's SubjectPublicKeyInfo DER (the `pin-sha256` of RFC 7469 §2.4). */
export function spkiSha256(cert: NodeX509): Buffer {
  const spki = cert.publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest();
}

/** DER certificates of a PEM bundle, in order. @throws {Error} when it holds none. */
export function readPemCertificates(pem: string, what = 'bundle'): Buffer[] {
  const out: Buffer[] = [];
  const re = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g;
  for (let m = re.exec(pem); m; m = re.exec(pem)) out.push(Buffer.from((m[1] as string).replace(/\s+/g, ''), 'base64'));
  if (out.length === 0) throw new Error(`${what} contains no PEM certificate`);
  return out;
}

const SF_BINARY = /^:([A-Za-z0-9+/]+={0,2}):$/;

/**
 * Parses a `Client-Cert` field value (RFC 9440 §2.2: an RFC 8941 byte sequence `:base64(DER):`).
 * Returns the DER bytes, or undefined when the value is not a single well-formed byte sequence.
 */
export function parseClientCertHeader(value: string | string[] | undefined): Buffer | undefined {
  if (typeof value !== 'string' || value.length > 16384) return undefined;
  const m = SF_BINARY.exec(value.trim());
  return m ? Buffer.from(m[1] as string, 'base64') : undefined;
}

/** Encodes DER as a `Client-Cert` field value (RFC 9440 §2.2). */
export function formatClientCertHeader(der: Buffer): string {
  return `:${der.toString('base64')}:`;
}

/**
 * Checks that `leaf` was issued (name chaining and signature) by one of `issuers` and is valid at
 * `now` (ms). Returns undefined when it is, else an OpenSSL-style verify error code:
 * `UNABLE_TO_GET_ISSUER_CERT_LOCALLY`, `CERT_HAS_EXPIRED` or `CERT_NOT_YET_VALID`.
 */
export function checkIssuedBy(leaf: NodeX509, issuers: readonly NodeX509[], now: number): string | undefined {
  const issuer = issuers.find((ca) => leaf.checkIssued(ca) && leaf.verify(ca.publicKey));
  if (issuer === undefined) return 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY';
  if (now < Date.parse(leaf.validFrom)) return 'CERT_NOT_YET_VALID';
  if (now > Date.parse(leaf.validTo)) return 'CERT_HAS_EXPIRED';
  return undefined;
}

/** A verified CRL: its issuer and revoked serial numbers (normalised). */
export interface RevocationList {
  /** Issuer DN as node:crypto prints it (compare with `X509Certificate.issuer`). */
  issuer: string;
  revoked: Set<string>;
  thisUpdate: Date;
  nextUpdate: Date | undefined;
}

/**
 * Parses a CRL (PEM `X509 CRL` or DER) and verifies its signature against the issuer among
 * `issuers` whose subject equals the CRL issuer (RFC 5280 §6.3.3 (f)).
 * @throws {Error} when the CRL is malformed, its issuer is not among `issuers`, or the signature fails.
 */
export async function loadCrl(data: string | Buffer, issuers: readonly NodeX509[], what = 'CRL'): Promise<RevocationList> {
  let crl: x509.X509Crl;
  try {
    crl = new x509.X509Crl(typeof data === 'string' ? data : new Uint8Array(data));
  } catch (e) {
    throw new Error(`${what}: not a CRL (${(e as Error).message})`);
  }
  for (const ca of issuers) {
    const pc = new x509.X509Certificate(ca.raw);
    if (pc.subjectName.toString() !== crl.issuerName.toString()) continue;
    if (!(await crl.verify({ publicKey: pc }))) throw new Error(`${what}: signature does not verify with the key of ${pc.subject}`);
    return {
      issuer: ca.subject,
      revoked: new Set(crl.entries.map((e) => normalizeSerial(e.serialNumber))),
      thisUpdate: crl.thisUpdate,
      nextUpdate: crl.nextUpdate,
    };
  }
  throw new Error(`${what}: issuer "${crl.issuer}" is not a trusted CA`);
}
