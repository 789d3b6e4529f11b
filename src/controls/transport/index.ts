/**
 * `transport` control (phase `transport`, the first request phase): mutual TLS decisions per API.
 *
 * The HTTPS listener requests a client certificate with `rejectUnauthorized: false`, so the
 * handshake never fails for a certificate reason; it records the verification result in
 * `ctx.tls` (`authorized`, `authorizationError`, `peerCertificate`). This stage decides, and a
 * refusal is a 403 problem-details response plus one security event whose reason names the
 * failure: `client-certificate-required`, `client-certificate-unknown-ca`,
 * `client-certificate-expired`, `client-certificate-not-yet-valid`, `client-certificate-revoked`
 * (CRL, RFC 5280 §5, or the serial deny list), `client-certificate-pin-mismatch` (SHA-256
 * certificate fingerprint or SPKI hash, RFC 7469 §2.4), `spiffe-id-not-allowed`.
 *
 * Behind a TLS-terminating load balancer the certificate may arrive in the `Client-Cert` header
 * (RFC 9440): it is believed only from `client_cert_header.trusted_proxies` and only after its
 * issuer and validity check against `client_cert_header.ca`; from anyone else it is ignored (the
 * proxy never forwards it) and reported as `client-cert-header-untrusted`. A certificate taken
 * from the header becomes `ctx.tls.peerCertificate`, so later stages (RFC 8705 token binding)
 * see one place.
 *
 * The certificate can also become the request identity (`identity: spiffe | subject | dns |
 * email | auto`, method `mtls`), and routes can allow SPIFFE IDs by pattern.
 */
import { X509Certificate } from 'node:crypto';
import { watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import type { BlockList } from 'node:net';
import { isIP } from 'node:net';
import { z } from 'zod';
import { defineControl } from '../../pipeline/control.ts';
import type { ClientCertificate, RequestContext, TlsInfo } from '../../pipeline/context.ts';
import { Problem } from '../../pipeline/problem.ts';
import { deny, type Rejection } from '../../pipeline/verdict.ts';
import type { Severity } from '../../events/event.ts';
import {
  checkIssuedBy,
  clientCertificateOf,
  decodeSha256,
  formatClientCertHeader,
  loadCrl,
  normalizeSerial,
  parseClientCertHeader,
  readPemCertificates,
  spkiSha256,
} from '../../pki/cert.ts';
import { blockListOf } from '../../proxy/headers.ts';
import { compileSpiffePattern, matchesAny, type SpiffePattern } from './spiffe.ts';

const modeSchema = z.enum(['off', 'optional', 'require']);

export const transportSchema = z.strictObject({
  /**
   * Client certificates: `off` (not checked here), `optional` (checked when sent), `require`.
   * The listener's `tls.client_auth.mode` is a floor: the stricter of the two applies.
   */
  mtls: modeSchema.default('off'),
  /** PEM bundles: the client certificate must be issued directly by one of these CAs (narrows the listener's trust for this API). */
  ca: z.array(z.string().min(1)).default([]),
  /** CRL files (PEM or DER) signed by a CA of `ca`, the listener's client CAs or `client_cert_header.ca`. Re-read on change. */
  crl: z.array(z.string().min(1)).default([]),
  /** PEM bundles of further CRL issuers (besides `ca` and `client_cert_header.ca`; the gateway adds the listener's client CAs). */
  crl_ca: z.array(z.string().min(1)).default([]),
  /** Serial numbers (hex, colons allowed) refused. */
  deny_serials: z.array(z.string().min(1)).default([]),
  /** Pinning: when any pin is set, the certificate must match one (hex or base64 SHA-256). */
  pins: z
    .strictObject({
      /** SHA-256 of the certificate DER (`openssl x509 -fingerprint -sha256`, or the RFC 8705 `x5t#S256`). */
      cert_sha256: z.array(z.string()).default([]),
      /** SHA-256 of the SubjectPublicKeyInfo (RFC 7469 `pin-sha256`): survives re-issuing with the same key. */
      spki_sha256: z.array(z.string()).default([]),
    })
    .default({ cert_sha256: [], spki_sha256: [] }),
  /** Map the certificate to `ctx.identity` (method `mtls`): `auto` = SPIFFE ID, else subject DN. */
  identity: z.enum(['none', 'auto', 'spiffe', 'subject', 'dns', 'email']).default('none'),
  /** SPIFFE ID patterns allowed on every path of the API (`*` one segment, `**` the rest); empty = any. */
  allow_spiffe_ids: z.array(z.string()).default([]),
  /** Per-path SPIFFE rules; the longest matching `path_prefix` (and method) wins over `allow_spiffe_ids`. */
  rules: z
    .array(
      z.strictObject({
        path_prefix: z.string().startsWith('/'),
        methods: z.array(z.string()).optional(),
        allow_spiffe_ids: z.array(z.string()).min(1),
      }),
    )
    .default([]),
  /** `Client-Cert` header (RFC 9440) from a TLS-terminating proxy. */
  client_cert_header: z
    .strictObject({
      /** Direct peers (IPs/CIDRs) whose `Client-Cert` header is believed. */
      trusted_proxies: z.array(z.string()).min(1),
      /** PEM bundles: the forwarded certificate must be issued by one of these and valid now. */
      ca: z.array(z.string().min(1)).min(1),
    })
    .optional(),
  /** Send the verified certificate to the upstream in `Client-Cert` (RFC 9440). */
  forward_client_cert: z.boolean().default(false),
});
export type TransportConfig = z.output<typeof transportSchema>;

/** How strict a mode is (`off` < `optional` < `require`). */
export const MODE_RANK = { off: 0, optional: 1, require: 2 } as const;

interface CompiledRule {
  prefix: string;
  methods: Set<string> | undefined;
  allow: SpiffePattern[];
}

/** Reason code and severity for an OpenSSL verify error of the handshake (or of {@link checkIssuedBy}). */
export function verifyFailure(code: string | undefined): { reason: string; severity: Severity; title: string } {
  switch (code) {
    case 'CERT_HAS_EXPIRED':
      return { reason: 'client-certificate-expired', severity: 'low', title: 'The client certificate has expired.' };
    case 'CERT_NOT_YET_VALID':
      return { reason: 'client-certificate-not-yet-valid', severity: 'low', title: 'The client certificate is not valid yet.' };
    case 'CERT_REVOKED':
      return { reason: 'client-certificate-revoked', severity: 'high', title: 'The client certificate is revoked.' };
    default:
      return { reason: 'client-certificate-unknown-ca', severity: 'medium', title: 'The client certificate is not issued by a trusted CA.' };
  }
}

function refuse(reason: string, detail: string, severity: Severity, cert: ClientCertificate | undefined, extra: Record<string, unknown> = {}): Rejection {
  const details: Record<string, unknown> = { ...extra };
  if (cert) {
    details.subject = cert.subject;
    details.serial = cert.serialNumber;
    if (cert.spiffeId) details.spiffe_id = cert.spiffeId;
    details.x5t_s256 = cert.x5tS256;
  }
  return deny(new Problem(403, reason, 'Forbidden', { detail }), severity, details);
}

async function readCaBundle(files: readonly string[], dir: string, what: string): Promise<X509Certificate[]> {
  const out: X509Certificate[] = [];
  for (const f of files) {
    const abs = resolve(dir, f);
    let text: string;
    try {
      text = await readFile(abs, 'utf8');
    } catch (e) {
      throw new Error(`${what}: cannot read ${abs}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    for (const der of readPemCertificates(text, abs)) out.push(new X509Certificate(der));
  }
  return out;
}

export const transportControl = defineControl({
  name: 'transport',
  schema: transportSchema,
  async create(cfg, env) {
    const mode = cfg.mtls;
    const apiCas = await readCaBundle(cfg.ca, env.configDir, 'transport.ca');
    const headerCas = cfg.client_cert_header ? await readCaBundle(cfg.client_cert_header.ca, env.configDir, 'transport.client_cert_header.ca') : [];
    let headerProxies: BlockList | undefined;
    if (cfg.client_cert_header) {
      try {
        headerProxies = blockListOf(cfg.client_cert_header.trusted_proxies);
      } catch (e) {
        throw new Error(`transport.client_cert_header.trusted_proxies: ${(e as Error).message}`);
      }
    }
    const denySerials = new Set(cfg.deny_serials.map(normalizeSerial));
    const certPins = new Set<string>();
    const spkiPins = new Set<string>();
    for (const p of cfg.pins.cert_sha256) certPins.add(decodeSha256(p).toString('base64url'));
    for (const p of cfg.pins.spki_sha256) spkiPins.add(decodeSha256(p).toString('base64url'));
    const allow = cfg.allow_spiffe_ids.map(compileSpiffePattern);
    const rules: CompiledRule[] = cfg.rules
      .map((r) => ({
        prefix: r.path_prefix.replace(/\/+$/, ''),
        methods: r.methods ? new Set(r.methods.map((m) => m.toUpperCase())) : undefined,
        allow: r.allow_spiffe_ids.map(compileSpiffePattern),
      }))
      .sort((a, b) => b.prefix.length - a.prefix.length);

    // CRLs: verified against every CA this API knows of; re-read when the files change.
    const crlIssuers = [...apiCas, ...headerCas, ...(await readCaBundle(cfg.crl_ca, env.configDir, 'transport.crl_ca'))];
    const crlFiles = cfg.crl.map((f) => resolve(env.configDir, f));
    const loadCrls = async (): Promise<Map<string, Set<string>>> => {
      const m = new Map<string, Set<string>>();
      for (const f of crlFiles) {
        let data: Buffer;
        try {
          data = await readFile(f);
        } catch (e) {
          throw new Error(`transport.crl: cannot read ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
        }
        const isPem = data.subarray(0, 64).toString('latin1').includes('-----BEGIN');
        const rl = await loadCrl(isPem ? data.toString('utf8') : data, crlIssuers, `transport.crl ${f}`);
        if (rl.nextUpdate && rl.nextUpdate.getTime() < Date.now())
          env.log.warn('transport: CRL is past its nextUpdate; still applied', { file: f, next_update: rl.nextUpdate.toISOString() });
        const set = m.get(rl.issuer) ?? new Set<string>();
        for (const s of rl.revoked) set.add(s);
        m.set(rl.issuer, set);
      }
      return m;
    };
    let crls = await loadCrls();
    const stopWatch = crlFiles.length
      ? watchFiles(crlFiles, () => {
          loadCrls().then(
            (m) => {
              crls = m;
              env.log.info('transport: CRLs reloaded', { api: env.apiName });
            },
            (e: Error) =>
              env.emit({
                control: 'transport',
                reason: 'crl-reload-failed',
                action: 'error',
                severity: 'high',
                api: env.apiName,
                details: { message: e.message },
              }),
          );
        })
      : () => {};

    // Parsed node:crypto certificate per ClientCertificate (one per connection: the listener caches it).
    const parsed = new WeakMap<ClientCertificate, X509Certificate>();
    const x509Of = (c: ClientCertificate): X509Certificate => {
      let x = parsed.get(c);
      if (x === undefined) {
        x = new X509Certificate(c.der);
        parsed.set(c, x);
      }
      return x;
    };
    const needsX509 = crlFiles.length > 0 || apiCas.length > 0 || spkiPins.size > 0;
    const anyPins = certPins.size > 0 || spkiPins.size > 0;

    const identityOf = (c: ClientCertificate): string | undefined => {
      switch (cfg.identity) {
        case 'spiffe':
          return c.spiffeId;
        case 'subject':
          return c.subject;
        case 'dns':
          return c.dnsNames?.[0];
        case 'email':
          return c.emails?.[0];
        case 'auto':
          return c.spiffeId ?? c.subject;
        default:
          return undefined;
      }
    };

    const spiffeRule = (ctx: RequestContext): SpiffePattern[] => {
      for (const r of rules) {
        if (r.methods && !r.methods.has(ctx.method)) continue;
        if (r.prefix === '' || ctx.path === r.prefix || ctx.path.startsWith(`${r.prefix}/`)) return r.allow;
      }
      return allow;
    };

    /** The certificate of a trusted proxy's `Client-Cert` header, as TlsInfo; a Rejection when malformed. */
    const fromHeader = (ctx: RequestContext, value: string | string[]): TlsInfo | Rejection => {
      const der = parseClientCertHeader(value);
      let cert: ClientCertificate | undefined;
      let x: X509Certificate | undefined;
      if (der) {
        try {
          cert = clientCertificateOf(der);
          x = new X509Certificate(der);
        } catch {
          cert = undefined;
        }
      }
      if (cert === undefined || x === undefined) {
        return deny(
          new Problem(400, 'client-cert-header-invalid', 'Bad Request', { detail: 'The Client-Cert header is not a certificate (RFC 9440 §2.2).' }),
          'medium',
        );
      }
      parsed.set(cert, x);
      const err = checkIssuedBy(x, headerCas, Date.now());
      const base = ctx.tls;
      const info: TlsInfo = {
        protocol: base?.protocol ?? null,
        cipher: base?.cipher ?? null,
        alpn: base?.alpn ?? null,
        servername: base?.servername ?? null,
        authorized: err === undefined,
        peerCertificate: cert,
      };
      if (err !== undefined) info.authorizationError = err;
      return info;
    };

    return {
      request: [
        {
          control: 'transport',
          phase: 'transport',
          run(ctx) {
            let tls = ctx.tls;
            const hv = ctx.headers['client-cert'];
            if (hv !== undefined && tls?.peerCertificate === undefined) {
              const v = isIP(ctx.peerIp) ? ctx.peerIp : '';
              const trusted = headerProxies !== undefined && v !== '' && headerProxies.check(v, isIP(v) === 6 ? 'ipv6' : 'ipv4');
              if (trusted) {
                const r = fromHeader(ctx, hv);
                if ('action' in r) return r;
                tls = r;
                // The transport phase owns the TLS facts of the original client connection.
                (ctx as { tls: TlsInfo | undefined }).tls = r;
              } else {
                ctx.emit({
                  control: 'transport',
                  reason: 'client-cert-header-untrusted',
                  action: 'monitor',
                  severity: 'medium',
                  details: { peer_ip: ctx.peerIp },
                });
              }
            }
            const cert = tls?.peerCertificate;
            if (cert === undefined) {
              if (mode === 'require')
                return refuse('client-certificate-required', 'A client certificate is required (mutual TLS).', 'low', undefined, { tls: tls !== undefined });
              if (spiffeRule(ctx).length > 0)
                return refuse('spiffe-id-not-allowed', 'This route requires a client certificate with an allowed SPIFFE ID.', 'medium', undefined);
              return undefined;
            }
            if (mode !== 'off' && !tls?.authorized) {
              const f = verifyFailure(tls?.authorizationError);
              return refuse(f.reason, f.title, f.severity, cert, { verify_error: tls?.authorizationError ?? null });
            }
            if (cert.serialNumber !== undefined && denySerials.has(cert.serialNumber)) {
              return refuse('client-certificate-revoked', 'The client certificate is revoked.', 'high', cert, { source: 'deny_serials' });
            }
            if (needsX509) {
              const x = x509Of(cert);
              if (crls.size && cert.serialNumber !== undefined && crls.get(x.issuer)?.has(cert.serialNumber)) {
                return refuse('client-certificate-revoked', 'The client certificate is revoked.', 'high', cert, { source: 'crl' });
              }
              if (apiCas.length) {
                const err = checkIssuedBy(x, apiCas, Date.now());
                if (err !== undefined) {
                  const f = verifyFailure(err);
                  return refuse(
                    f.reason,
                    err === 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' ? 'The client certificate is not issued by a CA trusted for this API.' : f.title,
                    f.severity,
                    cert,
                    { verify_error: err },
                  );
                }
              }
            }
            if (anyPins && !certPins.has(cert.x5tS256) && !(spkiPins.size > 0 && spkiPins.has(spkiSha256(x509Of(cert)).toString('base64url')))) {
              return refuse('client-certificate-pin-mismatch', 'The client certificate does not match a pinned fingerprint.', 'high', cert);
            }
            const patterns = spiffeRule(ctx);
            if (patterns.length > 0 && (cert.spiffeId === undefined || !matchesAny(patterns, cert.spiffeId))) {
              return refuse('spiffe-id-not-allowed', 'The client SPIFFE ID is not allowed on this route.', 'medium', cert);
            }
            if (cfg.identity !== 'none' && ctx.identity === undefined) {
              const subject = identityOf(cert);
              if (subject !== undefined) {
                const claims: Record<string, unknown> = { x5t_s256: cert.x5tS256 };
                if (cert.spiffeId) claims.spiffe_id = cert.spiffeId;
                if (cert.subject) claims.cert_subject = cert.subject;
                ctx.identity = { subject, scopes: [], methods: ['mtls'], claims };
              }
            }
            if (cfg.forward_client_cert) ctx.upstreamHeaders.set('client-cert', formatClientCertHeader(cert.der));
            return undefined;
          },
        },
      ],
      close() {
        stopWatch();
      },
    };
  },
});

/** Watches files (through their directories) and calls `onChange` debounced (150 ms); returns the stop function. */
function watchFiles(files: readonly string[], onChange: () => void): () => void {
  const dirs = new Map<string, Set<string>>();
  for (const f of files) {
    const d = dirname(f);
    if (!dirs.has(d)) dirs.set(d, new Set());
    (dirs.get(d) as Set<string>).add(basename(f));
  }
  let timer: NodeJS.Timeout | undefined;
  const ws = [...dirs].map(([d, names]) => {
    const w = watch(d, { persistent: false }, (_e, name) => {
      if (name !== null && !names.has(String(name))) return;
      if (timer) clearTimeout(timer);
      timer = setTimeout(onChange, 150);
    });
    w.on('error', () => {});
    return w;
  });
  return () => {
    if (timer) clearTimeout(timer);
    for (const w of ws) w.close();
  };
}
