/**
 * Server TLS material from configuration files: the default secure context options, one secure
 * context per SNI name (RFC 6066 §3) with one-label wildcards (`*.example.com`, RFC 6125 §6.4.3),
 * and the list of files to watch for reloads.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import type { TlsConfig } from '../config/schema.ts';

/** Loaded server TLS material. */
export interface TlsMaterial {
  /** Options of the default context (`tls.Server#setSecureContext`). */
  defaultOptions: SecureContextOptions;
  /** Exact lower-case SNI names → context. */
  byName: Map<string, SecureContext>;
  /** Wildcard parent domains (`example.com` for `*.example.com`) → context. */
  wildcards: Map<string, SecureContext>;
  /** Absolute paths of every file read (certificates, keys, client CAs). */
  files: string[];
}

/** Settings the listener needs besides the `tls` block. */
export interface TlsMaterialOptions {
  /** Base directory of relative paths. */
  dir: string;
  /** Extra client-CA bundle files (absolute) trusted in the handshake, e.g. APIs' `transport.ca`. */
  extraClientCa?: string[];
}

/** DNS names of a certificate's SAN (falls back to nothing: the CN is not a host name, RFC 6125 §6.4.4). */
function dnsNamesOf(pem: string): string[] {
  const san = new X509Certificate(pem).subjectAltName ?? '';
  const out: string[] = [];
  for (const part of san.split(', ')) if (part.startsWith('DNS:')) out.push(part.slice(4).toLowerCase());
  return out;
}

/**
 * Reads every certificate, key and client-CA file and builds the secure contexts.
 * @throws {Error} naming the file when one is missing or unreadable, or a key does not match its certificate.
 */
export async function loadTlsMaterial(cfg: TlsConfig, o: TlsMaterialOptions): Promise<TlsMaterial> {
  const files: string[] = [];
  const read = async (p: string): Promise<string> => {
    const abs = resolve(o.dir, p);
    files.push(abs);
    try {
      return await readFile(abs, 'utf8');
    } catch (e) {
      throw new Error(`tls: cannot read ${abs}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  };
  const caFiles = [...cfg.client_auth.ca.map((p) => resolve(o.dir, p)), ...(o.extraClientCa ?? [])];
  const ca = caFiles.length ? await Promise.all([...new Set(caFiles)].map(read)) : undefined;
  const common: SecureContextOptions = { minVersion: cfg.min_version, maxVersion: cfg.max_version, honorCipherOrder: true, ...(ca ? { ca } : {}) };
  const pairs = [...(cfg.cert && cfg.key ? [{ cert: cfg.cert, key: cfg.key, server_names: undefined as string[] | undefined }] : []), ...cfg.certificates];
  const byName = new Map<string, SecureContext>();
  const wildcards = new Map<string, SecureContext>();
  let defaultOptions: SecureContextOptions | undefined;
  for (const p of pairs) {
    const [cert, key] = await Promise.all([read(p.cert), read(p.key)]);
    const opts: SecureContextOptions = { ...common, cert, key };
    let ctx: SecureContext;
    try {
      ctx = createSecureContext(opts);
    } catch (e) {
      throw new Error(`tls: ${p.cert} / ${p.key}: ${(e as Error).message}`);
    }
    defaultOptions ??= opts;
    for (const n of p.server_names?.map((s) => s.toLowerCase()) ?? dnsNamesOf(cert)) {
      if (n.startsWith('*.')) {
        if (!wildcards.has(n.slice(2))) wildcards.set(n.slice(2), ctx);
      } else if (!byName.has(n)) byName.set(n, ctx);
    }
  }
  return { defaultOptions: defaultOptions as SecureContextOptions, byName, wildcards, files };
}

/** The context for an SNI name: exact match, then a one-label wildcard; undefined means the default. */
export function sniContext(m: TlsMaterial, servername: string): SecureContext | undefined {
  const n = servername.toLowerCase();
  const exact = m.byName.get(n);
  if (exact) return exact;
  const dot = n.indexOf('.');
  return dot === -1 ? undefined : m.wildcards.get(n.slice(dot + 1));
}
