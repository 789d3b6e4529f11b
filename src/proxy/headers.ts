/**
 * Header hygiene between client, gateway and upstream: hop-by-hop stripping (RFC 9110 §7.6.1),
 * forwarding headers (`X-Forwarded-*`, `Forwarded` RFC 7239) and client-IP derivation under the
 * trusted-proxy rule.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { BlockList, isIP } from 'node:net';

/** Hop-by-hop fields (RFC 9110 §7.6.1) plus legacy ones, never forwarded in either direction. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-authenticate',
  'proxy-authorization',
  'http2-settings',
]);

/** Request headers the gateway rebuilds itself; client values are dropped (or merged if trusted). */
const REBUILT = new Set([
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-forwarded-port',
  'forwarded',
  'x-real-ip',
  'x-request-id',
  'expect',
  'host',
  'client-cert',
  'client-cert-chain',
]);

/**
 * Request headers that make some frameworks execute another method or path than the request line
 * says (Express `method-override`, Symfony/IIS `X-Original-URL`, ...). The gateway authorises the
 * method and path it sees, so the upstream must not be told a different one: they are dropped
 * (OWASP WSTG-CONF-06; a known access-control bypass, OWASP API5:2023 BFLA).
 */
const OVERRIDES = new Set(['x-http-method-override', 'x-http-method', 'x-method-override', 'x-original-url', 'x-rewrite-url', 'x-original-method']);

/**
 * Forwarding facts some frameworks read besides the ones the gateway rebuilds (Rack's
 * `X-Forwarded-Scheme`, Spring's `X-Forwarded-Prefix`, `X-Forwarded-Ssl`, the client-IP
 * headers of CDNs): a client could claim another scheme, host, path prefix or address with them.
 * They reach the upstream only from a trusted proxy (`trusted_proxies`), as `X-Forwarded-For` does.
 */
const PROXY_ONLY = new Set([
  'x-forwarded-prefix',
  'x-forwarded-path',
  'x-forwarded-uri',
  'x-forwarded-scheme',
  'x-forwarded-server',
  'x-forwarded-ssl',
  'x-forwarded-protocol',
  'front-end-https',
  'x-url-scheme',
  'x-host',
  'x-original-host',
  'x-client-ip',
  'true-client-ip',
  'x-cluster-client-ip',
  'cf-connecting-ip',
  'fastly-client-ip',
  'x-proxyuser-ip',
]);

/**
 * Header names in the gateway's namespace (`x-rampart-*`, `rampart-*`: forwarded identity,
 * passports). A client never sets them: they are dropped before any control runs, whether or not
 * the control that writes them is configured.
 */
export function isReserved(name: string): boolean {
  return name.startsWith('x-rampart-') || name.startsWith('rampart-');
}

/** Names listed in a `Connection` header value (lower case). */
export function connectionTokens(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  const v = Array.isArray(value) ? value.join(',') : value;
  return v
    .split(',')
    .map((t) => t.trim().toLowerCase())
    .filter(Boolean);
}

/** Strips the hop-by-hop fields of a response in place (including those named in `Connection`). */
export function stripHopByHop(headers: Record<string, string | string[] | undefined>): void {
  const named = connectionTokens(headers.connection);
  for (const h of HOP_BY_HOP) delete headers[h];
  for (const h of named) delete headers[h];
}

/** Parses a CIDR list into a BlockList. @throws {Error} on an invalid entry. */
export function blockListOf(cidrs: readonly string[]): BlockList {
  const bl = new BlockList();
  for (const c of cidrs) {
    const [ip, bits] = c.split('/') as [string, string | undefined];
    const type = isIP(ip) === 6 ? 'ipv6' : 'ipv4';
    if (isIP(ip) === 0) throw new Error(`invalid IP or CIDR: ${c}`);
    if (bits === undefined) bl.addAddress(ip, type);
    else bl.addSubnet(ip, Number(bits), type);
  }
  return bl;
}

/** `::ffff:1.2.3.4` → `1.2.3.4`; other addresses unchanged. */
export function normalizeIp(ip: string | undefined): string {
  if (ip === undefined) return '';
  return ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;
}

function contains(bl: BlockList, ip: string): boolean {
  const v = isIP(ip);
  if (v === 0) return false;
  return bl.check(ip, v === 6 ? 'ipv6' : 'ipv4');
}

/** A host[:port] value believed from a trusted proxy's `X-Forwarded-Host`. */
const FORWARDED_HOST = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~-]+)(:\d{1,5})?$/;

/** `1.2.3.4:5555` → `1.2.3.4`, `[::1]:80` → `::1`; a bare address is returned unchanged. */
export function stripPort(a: string): string {
  if (a.startsWith('[')) {
    const end = a.indexOf(']');
    return end === -1 ? a : a.slice(1, end);
  }
  const colon = a.indexOf(':');
  return colon !== -1 && colon === a.lastIndexOf(':') ? a.slice(0, colon) : a;
}

/** Extracts addresses from `Forwarded: for=...` elements (RFC 7239 §5.2), in order. */
function forwardedFor(value: string): string[] {
  const out: string[] = [];
  for (const el of value.split(',')) {
    for (const pair of el.split(';')) {
      const [k, v] = pair.split('=') as [string, string | undefined];
      if (k?.trim().toLowerCase() !== 'for' || v === undefined) continue;
      let a = v.trim().replace(/^"|"$/g, '');
      if (a.startsWith('[')) a = a.slice(1, a.indexOf(']'));
      else if (a.split(':').length === 2) a = a.split(':')[0] as string;
      out.push(a);
    }
  }
  return out;
}

/** Facts derived from a request under the trusted-proxy rule. */
export interface ForwardedFacts {
  /** The client's IP: the peer, or (from a trusted peer) the right-most untrusted forwarded address. */
  clientIp: string;
  /** Whether the peer is a trusted proxy (its forwarding headers were believed). */
  trusted: boolean;
  proto: 'http' | 'https';
  host: string;
}

/**
 * Applies the trusted-proxy rule: forwarding headers are believed only when the direct peer is
 * in `trusted`; then the client IP is the right-most address of `X-Forwarded-For` (or
 * `Forwarded: for=`) that is not itself a trusted proxy.
 */
export function deriveForwarded(headers: IncomingHttpHeaders, peerIp: string, scheme: 'http' | 'https', trusted: BlockList | undefined): ForwardedFacts {
  const host = (headers.host ?? '').toString();
  if (trusted === undefined || !contains(trusted, peerIp)) return { clientIp: peerIp, trusted: false, proto: scheme, host };
  const xff = headers['x-forwarded-for'];
  let chain: string[] = [];
  if (xff !== undefined) chain = (Array.isArray(xff) ? xff.join(',') : xff).split(',').map((s) => normalizeIp(stripPort(s.trim())));
  else if (typeof headers.forwarded === 'string') chain = forwardedFor(headers.forwarded).map(normalizeIp);
  let clientIp = peerIp;
  for (let i = chain.length - 1; i >= 0; i--) {
    const a = chain[i] as string;
    if (isIP(a) === 0) break;
    clientIp = a;
    if (!contains(trusted, a)) break;
  }
  const p = headers['x-forwarded-proto'];
  const proto = p === 'https' || p === 'http' ? p : scheme;
  const fh = headers['x-forwarded-host'];
  return { clientIp, trusted: true, proto, host: typeof fh === 'string' && FORWARDED_HOST.test(fh) ? fh : host };
}

/**
 * Builds the upstream request headers: client headers minus hop-by-hop, rebuilt, override and
 * reserved ones (and the proxy-only forwarding facts unless the peer is a trusted proxy), plus
 * `X-Forwarded-For/-Proto/-Host`, `Forwarded` and `X-Request-Id`, then the stage changes
 * (`changes`: value sets, `null` removes).
 */
export function upstreamRequestHeaders(
  headers: IncomingHttpHeaders,
  peerIp: string,
  facts: ForwardedFacts,
  requestId: string,
  changes: ReadonlyMap<string, string | string[] | null>,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const named = connectionTokens(headers.connection);
  for (const k in headers) {
    if (HOP_BY_HOP.has(k) || REBUILT.has(k) || OVERRIDES.has(k) || isReserved(k) || (!facts.trusted && PROXY_ONLY.has(k))) continue;
    const v = headers[k];
    if (v !== undefined) out[k] = v;
  }
  for (const h of named) delete out[h];
  const priorXff = facts.trusted ? headers['x-forwarded-for'] : undefined;
  out['x-forwarded-for'] = priorXff ? `${Array.isArray(priorXff) ? priorXff.join(', ') : priorXff}, ${peerIp}` : peerIp;
  out['x-forwarded-proto'] = facts.proto;
  if (facts.host) out['x-forwarded-host'] = facts.host;
  const forNode = isIP(peerIp) === 6 ? `"[${peerIp}]"` : peerIp;
  const mine = `for=${forNode};proto=${facts.proto}${facts.host ? `;host="${facts.host.replace(/["\\]/g, '')}"` : ''}`;
  const priorFwd = facts.trusted ? headers.forwarded : undefined;
  out.forwarded = priorFwd ? `${priorFwd}, ${mine}` : mine;
  out['x-request-id'] = requestId;
  for (const [k, v] of changes) {
    if (v === null) delete out[k];
    else out[k] = v;
  }
  return out;
}
