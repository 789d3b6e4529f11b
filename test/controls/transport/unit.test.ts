/**
 * Unit tests of the transport building blocks: SPIFFE patterns, certificate facts (RFC 8705
 * thumbprint, SANs, SPIFFE ID), serial and fingerprint normalisation, the RFC 9440 header
 * codec, CRL verification, and the stage run on a constructed context (identity mapping).
 */
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { createCa, createCrl, issueCertificate } from '../../../src/pki/ca.ts';
import {
  checkIssuedBy,
  clientCertificateOf,
  decodeSha256,
  formatClientCertHeader,
  loadCrl,
  normalizeSerial,
  parseClientCertHeader,
  readPemCertificates,
} from '../../../src/pki/cert.ts';
import { compileSpiffePattern } from '../../../src/controls/transport/spiffe.ts';
import { transportControl, verifyFailure } from '../../../src/controls/transport/index.ts';
import { RequestContext, type TlsInfo } from '../../../src/pipeline/context.ts';
import type { IncomingMessage } from 'node:http';
import type { EventInput } from '../../../src/events/event.ts';
import { MemoryStore } from '../../../src/state/memory.ts';
import { PemDir } from './pki.ts';

const pem = new PemDir();
after(() => pem.remove());

describe('SPIFFE ID patterns', () => {
  test('* is one segment, ** the rest (one or more), trust domains are literal', () => {
    const one = compileSpiffePattern('spiffe://example.org/ns/*/sa/web');
    assert.equal(one.test('spiffe://example.org/ns/prod/sa/web'), true);
    assert.equal(one.test('spiffe://example.org/ns/prod/x/sa/web'), false);
    assert.equal(one.test('spiffe://example.org/ns/prod/sa/web2'), false);
    assert.equal(one.test('spiffe://evil.org/ns/prod/sa/web'), false);
    assert.equal(one.test('spiffe://exampleXorg/ns/prod/sa/web'), false);
    const rest = compileSpiffePattern('spiffe://example.org/ns/prod/**');
    assert.equal(rest.test('spiffe://example.org/ns/prod/sa/web'), true);
    assert.equal(rest.test('spiffe://example.org/ns/prod'), false);
    assert.equal(rest.test('spiffe://example.org/ns/production/sa'), false);
    assert.equal(compileSpiffePattern('spiffe://example.org').test('spiffe://example.org'), true);
  });

  test('malformed patterns are refused at load', () => {
    assert.throws(() => compileSpiffePattern('https://example.org/x'), /invalid SPIFFE ID pattern/);
    assert.throws(() => compileSpiffePattern('spiffe://Example.org/x'), /invalid SPIFFE ID pattern/);
    assert.throws(() => compileSpiffePattern('spiffe://example.org/**/x'), /\*\* must be the last segment/);
    assert.throws(() => compileSpiffePattern('spiffe://example.org/a*b'), /bad segment/);
  });
});

describe('certificate facts', () => {
  test('x5tS256 is base64url(SHA-256(DER)); SANs, SPIFFE ID, serial, subject and validity are read', async () => {
    const ca = await createCa({ commonName: 'Unit CA' });
    const c = await issueCertificate(ca, {
      kind: 'client',
      commonName: 'svc',
      subject: { O: 'Acme, Inc' },
      spiffeId: 'spiffe://example.org/ns/a/sa/svc',
      dns: ['svc.internal'],
      emails: ['svc@example.org'],
      serialNumber: '00ab01',
    });
    const der = readPemCertificates(c.certPem)[0] as Buffer;
    const info = clientCertificateOf(der);
    assert.equal(info.x5tS256, createHash('sha256').update(der).digest('base64url'));
    assert.equal(info.spiffeId, 'spiffe://example.org/ns/a/sa/svc');
    assert.deepEqual(info.uris, ['spiffe://example.org/ns/a/sa/svc']);
    assert.deepEqual(info.dnsNames, ['svc.internal']);
    assert.deepEqual(info.emails, ['svc@example.org']);
    assert.equal(info.serialNumber, 'AB01');
    assert.equal(info.subject, 'CN=svc, O=Acme\\, Inc');
    assert.equal(info.validTo?.getTime(), new Date(new X509Certificate(der).validTo).getTime());
  });

  test('two SPIFFE URIs mean no SPIFFE ID (X509-SVID §2: exactly one)', async () => {
    const ca = await createCa();
    const c = await issueCertificate(ca, { kind: 'client', spiffeId: 'spiffe://a.org/x', uris: ['spiffe://a.org/y'] });
    const info = clientCertificateOf(readPemCertificates(c.certPem)[0] as Buffer);
    assert.equal(info.spiffeId, undefined);
    assert.deepEqual(info.uris, ['spiffe://a.org/x', 'spiffe://a.org/y']);
  });

  test('issueCertificate refuses a malformed SPIFFE ID and a server certificate without names', async () => {
    const ca = await createCa();
    await assert.rejects(issueCertificate(ca, { kind: 'client', spiffeId: 'spiffe://UPPER/x' }), /invalid SPIFFE ID/);
    await assert.rejects(issueCertificate(ca, { kind: 'server' }), /at least one DNS name/);
  });

  test('serials and fingerprints normalise; the Client-Cert codec round-trips and refuses junk', () => {
    assert.equal(normalizeSerial('00:0a:ff'), 'AFF');
    assert.equal(normalizeSerial('0000'), '0');
    const bytes = createHash('sha256').update('x').digest();
    assert.deepEqual(decodeSha256(bytes.toString('hex')), bytes);
    assert.deepEqual(decodeSha256(bytes.toString('hex').toUpperCase().match(/../g)?.join(':') as string), bytes);
    assert.deepEqual(decodeSha256(bytes.toString('base64')), bytes);
    assert.deepEqual(decodeSha256(bytes.toString('base64url')), bytes);
    assert.throws(() => decodeSha256('abcd'), /not a SHA-256 value/);
    const der = Buffer.from([0x30, 0x03, 0x02, 0x01, 0x01]);
    assert.deepEqual(parseClientCertHeader(formatClientCertHeader(der)), der);
    assert.equal(parseClientCertHeader('MIIB'), undefined);
    assert.equal(parseClientCertHeader(':a:, :b:'), undefined);
    assert.equal(parseClientCertHeader([':MAM=:', ':MAM=:']), undefined);
  });

  test('a CRL verifies only against its issuer; checkIssuedBy reports the verify error', async () => {
    const ca = await createCa({ commonName: 'CRL CA' });
    const other = await createCa({ commonName: 'Other CRL CA' });
    const crl = await createCrl(ca, { revoked: ['0a:bc'] });
    const rl = await loadCrl(crl, [new X509Certificate(ca.certPem)]);
    assert.deepEqual([...rl.revoked], ['ABC']);
    assert.equal(rl.issuer, 'CN=CRL CA');
    await assert.rejects(loadCrl(crl, [new X509Certificate(other.certPem)]), /issuer "CN=CRL CA" is not a trusted CA/);
    // Same subject name, different key: the signature check catches the impostor.
    const impostor = await createCa({ commonName: 'CRL CA' });
    await assert.rejects(loadCrl(crl, [new X509Certificate(impostor.certPem)]), /signature does not verify/);
    const leaf = new X509Certificate((await issueCertificate(ca, { kind: 'client' })).certPem);
    assert.equal(checkIssuedBy(leaf, [new X509Certificate(ca.certPem)], Date.now()), undefined);
    assert.equal(checkIssuedBy(leaf, [new X509Certificate(impostor.certPem)], Date.now()), 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY');
    assert.equal(checkIssuedBy(leaf, [new X509Certificate(ca.certPem)], Date.now() + 400 * 86_400_000), 'CERT_HAS_EXPIRED');
  });

  test('verify errors map to stable reason codes', () => {
    assert.equal(verifyFailure('CERT_HAS_EXPIRED').reason, 'client-certificate-expired');
    assert.equal(verifyFailure('CERT_NOT_YET_VALID').reason, 'client-certificate-not-yet-valid');
    assert.equal(verifyFailure('CERT_REVOKED').reason, 'client-certificate-revoked');
    assert.equal(verifyFailure('SELF_SIGNED_CERT_IN_CHAIN').reason, 'client-certificate-unknown-ca');
    assert.equal(verifyFailure(undefined).reason, 'client-certificate-unknown-ca');
  });
});

describe('transport stage on a constructed context', () => {
  const env = (events: EventInput[]) => ({
    apiName: 'unit',
    configDir: pem.dir,
    store: new MemoryStore({ maxKeys: 100 }),
    emit: (e: EventInput) => events.push(e),
    log: { info() {}, warn() {}, error() {} },
  });
  const ctxOf = (tls: TlsInfo | undefined, path = '/x', headers: Record<string, string> = {}) =>
    new RequestContext(
      {
        id: 'r1',
        req: { headers, rawHeaders: [] } as unknown as IncomingMessage,
        method: 'GET',
        target: path,
        clientIp: '192.0.2.1',
        peerIp: '192.0.2.1',
        scheme: tls ? 'https' : 'http',
        host: 'api.test',
        tls,
        apiName: 'unit',
        body: { read: async () => Buffer.alloc(0), buffered: undefined },
        emit: () => {},
        signal: new AbortController().signal,
      },
      1024,
    );

  test('identity: spiffe maps the SPIFFE ID to ctx.identity with method mtls; subject maps the DN', async () => {
    const ca = await createCa();
    const c = await issueCertificate(ca, { kind: 'client', commonName: 'svc', spiffeId: 'spiffe://example.org/svc' });
    const cert = clientCertificateOf(readPemCertificates(c.certPem)[0] as Buffer);
    const tls: TlsInfo = { protocol: 'TLSv1.3', cipher: 'TLS_AES_128_GCM_SHA256', alpn: 'h2', servername: 'api.test', authorized: true, peerCertificate: cert };
    const events: EventInput[] = [];
    const spiffe = await transportControl.create(transportControl.schema.parse({ mtls: 'require', identity: 'spiffe' }), env(events));
    const ctx = ctxOf(tls);
    assert.equal(await spiffe.request?.[0]?.run(ctx), undefined);
    assert.deepEqual(ctx.identity, {
      subject: 'spiffe://example.org/svc',
      scopes: [],
      methods: ['mtls'],
      claims: { x5t_s256: cert.x5tS256, spiffe_id: 'spiffe://example.org/svc', cert_subject: 'CN=svc' },
    });
    const subj = await transportControl.create(transportControl.schema.parse({ mtls: 'require', identity: 'subject' }), env(events));
    const ctx2 = ctxOf(tls);
    await subj.request?.[0]?.run(ctx2);
    assert.equal(ctx2.identity?.subject, 'CN=svc');
    assert.deepEqual(events, []);
  });

  test('mtls off ignores an unverified certificate (RFC 8705 self-signed binding stays possible); optional refuses it', async () => {
    const self = await createCa({ commonName: 'self' });
    const cert = clientCertificateOf(readPemCertificates(self.certPem)[0] as Buffer);
    const tls: TlsInfo = {
      protocol: 'TLSv1.3',
      cipher: null,
      alpn: null,
      servername: null,
      authorized: false,
      authorizationError: 'DEPTH_ZERO_SELF_SIGNED_CERT',
      peerCertificate: cert,
    };
    const off = await transportControl.create(transportControl.schema.parse({}), env([]));
    assert.equal(await off.request?.[0]?.run(ctxOf(tls)), undefined);
    const opt = await transportControl.create(transportControl.schema.parse({ mtls: 'optional' }), env([]));
    const r = await opt.request?.[0]?.run(ctxOf(tls));
    assert.equal(r?.problem.code, 'client-certificate-unknown-ca');
    assert.equal(r?.problem.status, 403);
  });

  test('bad settings are refused at create() with the setting named', async () => {
    const make = async (raw: unknown) => transportControl.create(transportControl.schema.parse(raw), env([]));
    await assert.rejects(make({ ca: ['missing.pem'] }), /transport\.ca: cannot read .*missing\.pem: ENOENT/);
    await assert.rejects(make({ pins: { cert_sha256: ['nope'] } }), /not a SHA-256 value/);
    await assert.rejects(make({ allow_spiffe_ids: ['spiffe://x/**/y'] }), /\*\* must be the last segment/);
    await assert.rejects(
      make({ client_cert_header: { trusted_proxies: ['not-an-ip'], ca: [pem.write('unit-ca.pem', (await createCa()).certPem)] } }),
      /transport\.client_cert_header\.trusted_proxies: invalid IP or CIDR: not-an-ip/,
    );
  });
});
