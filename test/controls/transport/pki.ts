/**
 * Test PKI and TLS clients for the transport tests: a temporary directory with CAs and
 * certificates written as PEM files (generated with src/pki), and HTTPS / HTTP/2 requests with
 * real handshakes.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { connect as h2connect, type ClientHttp2Session } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type PeerCertificate } from 'node:tls';
import { type CertificateAuthority, createCa, issueCertificate, type IssueOptions, type IssuedCertificate } from '../../../src/pki/ca.ts';

/** A temporary directory that PEM files are written into. */
export class PemDir {
  readonly dir = mkdtempSync(join(tmpdir(), 'rampart-tls-'));

  /** Writes `text` to `name` in the directory; returns the absolute path. */
  write(name: string, text: string): string {
    const p = join(this.dir, name);
    writeFileSync(p, text);
    return p;
  }

  /** Writes a CA's certificate as `<name>.pem`. */
  async ca(name: string, cn = name): Promise<CertificateAuthority & { file: string }> {
    const ca = await createCa({ commonName: cn });
    return Object.assign(ca, { file: this.write(`${name}.pem`, ca.certPem) });
  }

  /** Issues a certificate and writes `<name>.crt` / `<name>.key`. */
  async issue(ca: CertificateAuthority, name: string, o: IssueOptions): Promise<IssuedCertificate & { certFile: string; keyFile: string }> {
    const c = await issueCertificate(ca, o);
    return Object.assign(c, { certFile: this.write(`${name}.crt`, c.certPem), keyFile: this.write(`${name}.key`, c.keyPem) });
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A response read fully. */
export interface TlsResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** TLS client options of the test requests. */
export interface ClientTls {
  ca: string;
  cert?: string;
  key?: string;
  servername?: string;
  maxVersion?: 'TLSv1.2' | 'TLSv1.3';
  minVersion?: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';
}

/** One HTTPS/1.1 request on a fresh connection (no agent), with real certificate verification. */
export function httpsText(url: string, tls: ClientTls, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<TlsResponse> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const options: import('node:https').RequestOptions = {
      host: u.hostname,
      port: Number(u.port),
      path: u.pathname + u.search,
      method: opts.method ?? 'GET',
      headers: opts.headers,
      agent: false,
      ...tls,
    };
    const req = httpsRequest(options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Opens an HTTP/2 session (ALPN h2) to `url`. */
export function h2session(url: string, tls: ClientTls): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const s = h2connect(url, { ...tls });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** One request on an HTTP/2 session. */
export function h2request(
  s: ClientHttp2Session,
  path: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<TlsResponse> {
  return new Promise((resolve, reject) => {
    const req = s.request({ ':method': opts.method ?? 'GET', ':path': path, ...opts.headers });
    let status = 0;
    let headers: Record<string, string | string[] | undefined> = {};
    let body = '';
    req.setEncoding('utf8');
    req.on('response', (h) => {
      status = Number(h[':status']);
      headers = h as Record<string, string | string[] | undefined>;
    });
    req.on('data', (c: string) => (body += c));
    req.on('end', () => resolve({ status, headers, body }));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** The certificate a server presents for `servername` (handshake only). */
export function serverCertificate(port: number, tls: ClientTls): Promise<PeerCertificate & { protocol: string | null; alpn: string | false | null }> {
  return new Promise((resolve, reject) => {
    const sock = tlsConnect({ host: '127.0.0.1', port, ...tls, ALPNProtocols: ['h2', 'http/1.1'] }, () => {
      const c = sock.getPeerCertificate();
      const out = Object.assign(c, { protocol: sock.getProtocol(), alpn: sock.alpnProtocol });
      sock.end();
      resolve(out);
    });
    sock.once('error', reject);
  });
}
