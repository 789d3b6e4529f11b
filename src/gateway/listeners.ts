/**
 * Listener layer: creates the servers that feed the request handler. The pipeline never knows
 * which listener a request came from; a listener only supplies transport facts (TlsInfo).
 * HTTPS, mutual TLS and HTTP/2 slot in here as further factories.
 */
import { randomUUID } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createSecureServer, type Http2SecureServer, type Http2ServerRequest, type Http2ServerResponse, type ServerHttp2Session } from 'node:http2';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { Server as NetServer, Socket } from 'node:net';
import { dirname } from 'node:path';
import type { TLSSocket } from 'node:tls';
import type { TlsConfig } from '../config/schema.ts';
import type { ClientCertificate, TlsInfo } from '../pipeline/context.ts';
import { PROBLEM_CONTENT_TYPE, Problem } from '../pipeline/problem.ts';
import type { EventInput } from '../events/event.ts';
import { clientCertificateOf } from '../pki/cert.ts';
import { loadTlsMaterial, sniContext, type TlsMaterial } from '../pki/sni.ts';
import { normalizeIp } from '../proxy/headers.ts';
import { CONTINUE_PENDING, type ContinueCapable } from './body.ts';
import { ANSWER_HEADERS, sendProblem } from './handler.ts';

/** Splits `host:port` / `[v6]:port`. */
export function parseAddress(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  const host = addr.slice(0, i).replace(/^\[|\]$/g, '');
  return { host, port: Number(addr.slice(i + 1)) };
}

/** Timeouts of the client side, in ms. */
export const CLIENT_TIMEOUTS = {
  /** Whole request headers must arrive within this (slowloris). */
  headersMs: 20_000,
  /**
   * Whole request (headers and body) must arrive within this: a body trickled a byte at a time
   * is cut off (slow-body DoS). 5 minutes lets a 50 MB upload through at ~170 KB/s.
   */
  requestMs: 300_000,
  keepAliveMs: 5_000,
};

/**
 * Answers a request the HTTP parser refused (ambiguous framing, obsolete line folding, oversized
 * headers) with problem details and one event, then closes the connection. Node's lenient
 * parser is never enabled, so such requests are never forwarded (no request smuggling).
 */
export function onClientError(emit: (e: EventInput) => void) {
  return (err: Error & { code?: string }, socket: Socket): void => {
    const code = err.code ?? 'ERR';
    if (code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    let problem: Problem;
    if (code === 'HPE_HEADER_OVERFLOW') problem = new Problem(431, 'headers-too-large', 'Request Header Fields Too Large');
    else if (code === 'ERR_HTTP_REQUEST_TIMEOUT') problem = new Problem(408, 'request-timeout', 'Request Timeout');
    else problem = new Problem(400, 'malformed-request', 'Bad Request', { detail: 'The request framing is invalid or ambiguous.' });
    const id = randomUUID();
    emit({
      request_id: id,
      control: 'gateway',
      reason: problem.code,
      action: 'deny',
      severity: code === 'HPE_HEADER_OVERFLOW' || code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'low' : 'high',
      status: problem.status,
      client_ip: normalizeIp(socket.remoteAddress),
      details: { parser_error: code },
    });
    socket.end(rawProblem(problem, id));
  };
}

/**
 * A complete HTTP/1.1 problem-details response (RFC 9457) for a connection no request handler
 * owns (parser errors, CONNECT): the request id as `instance` and `X-Request-Id`, the security
 * headers every gateway answer carries, `Connection: close`.
 */
export function rawProblem(problem: Problem, requestId: string): string {
  const body = JSON.stringify(problem.toBody(requestId));
  const lines = Object.entries({ ...ANSWER_HEADERS, 'x-request-id': requestId, ...problem.headers })
    .map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(', ') : v}\r\n`)
    .join('');
  return `HTTP/1.1 ${problem.status} ${problem.title}\r\ncontent-type: ${PROBLEM_CONTENT_TYPE}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${lines}connection: close\r\n\r\n${body}`;
}

/**
 * An `Expect` other than `100-continue` (RFC 9110 §10.1.1): 417 problem details and one event
 * (Node would answer a bare 417 with no event).
 */
export function refuseExpectation(emit: (e: EventInput) => void) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const id = randomUUID();
    const problem = new Problem(417, 'expectation-failed', 'Expectation Failed', { detail: 'Only "Expect: 100-continue" is supported.' });
    emit({
      request_id: id,
      control: 'gateway',
      reason: problem.code,
      action: 'deny',
      severity: 'low',
      status: 417,
      method: req.method,
      path: req.url,
      client_ip: normalizeIp(req.socket.remoteAddress),
    });
    sendProblem(res, problem, id, true);
  };
}

/**
 * HTTP/1.1 server options shared by the plain and the HTTPS listener: strict parser (no request
 * smuggling), bounded headers, client timeouts. Host is checked by the handler, which answers
 * problem details instead of Node's bare 400.
 */
const HTTP1_OPTIONS = {
  insecureHTTPParser: false,
  maxHeaderSize: 64 * 1024,
  headersTimeout: CLIENT_TIMEOUTS.headersMs,
  requestTimeout: CLIENT_TIMEOUTS.requestMs,
  keepAliveTimeout: CLIENT_TIMEOUTS.keepAliveMs,
  // Node checks the two timeouts above on this interval (default 30 s, so a slowloris connection
  // lived up to 50 s instead of 20): check every 2 s.
  connectionsCheckingInterval: 2_000,
  noDelay: true,
  joinDuplicateHeaders: false,
  requireHostHeader: false,
} as const;

/** Creates the plain HTTP/1.1 API server (strict parser, bounded headers and timeouts). */
export function createHttpListener(handler: (req: IncomingMessage, res: ServerResponse) => void, emit: (e: EventInput) => void): Server {
  const server = createServer(HTTP1_OPTIONS, handler);
  server.on('checkContinue', deferContinue(handler));
  server.on('checkExpectation', refuseExpectation(emit));
  server.on('clientError', onClientError(emit));
  server.on('connect', refuseConnect(emit));
  return server;
}

/**
 * `Expect: 100-continue` (RFC 9110 §10.1.1): instead of Node's automatic interim response, the
 * request goes through the pipeline first and `100 Continue` is sent only when the body is read
 * (see {@link CONTINUE_PENDING}), so a refused request never makes the client upload its body.
 */
export function deferContinue<Req, Res extends object>(handler: (req: Req, res: Res) => void): (req: Req, res: Res) => void {
  return (req, res) => {
    (res as ContinueCapable)[CONTINUE_PENDING] = true;
    handler(req, res);
  };
}

/**
 * CONNECT (tunnels) is never proxied: answer 405 problem details and one event, then close.
 * Without a listener Node would drop the connection silently.
 */
export function refuseConnect(emit: (e: EventInput) => void) {
  return (req: IncomingMessage | Http2ServerRequest, socket: import('node:stream').Duplex | Http2ServerResponse): void => {
    const problem = new Problem(405, 'method-not-allowed', 'Method Not Allowed', {
      detail: 'CONNECT is not supported.',
      headers: { allow: 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS' },
    });
    const id = randomUUID();
    emit({
      request_id: id,
      control: 'gateway',
      reason: problem.code,
      action: 'deny',
      severity: 'medium',
      status: 405,
      method: 'CONNECT',
      client_ip: normalizeIp(req.socket.remoteAddress),
    });
    if (req.httpVersionMajor === 2) {
      // HTTP/2 (RFC 9113 §8.5): the second argument is the stream's response, not a raw socket.
      sendProblem(socket as unknown as ServerResponse, problem, id, false);
      return;
    }
    (socket as import('node:stream').Duplex).end(rawProblem(problem, id));
  };
}

/** Listens on `addr`; resolves with the bound address (port 0 picks one). */
export function listen(server: NetServer, addr: string): Promise<{ host: string; port: number }> {
  const { host, port } = parseAddress(addr);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      const a = server.address();
      resolve({ host, port: typeof a === 'object' && a ? a.port : port });
    });
  });
}

/** Formats a URL for a bound address. */
export function urlOf(scheme: string, a: { host: string; port: number }): string {
  return `${scheme}://${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
}

/** A request listener for HTTP/1.1 and the HTTP/2 compatibility API alike. */
export type RequestListener = (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => void;

/** The API listener as the gateway drives it, whatever its protocol. */
export interface ApiListener {
  readonly server: NetServer;
  readonly scheme: 'http' | 'https';
  /** TLS facts of a request's connection (undefined on plain HTTP). */
  readonly tlsInfo?: (req: IncomingMessage) => TlsInfo | undefined;
  /** Closes connections with no request in flight (drain). */
  closeIdle(): void;
  /** Destroys every connection (drain deadline passed). */
  closeAll(): void;
  /** Applies new TLS settings (configuration reload) without dropping connections. @throws {Error} on unreadable files. */
  updateTls?(settings: TlsListenerSettings): Promise<void>;
  /** Stops file watchers. */
  dispose(): void;
}

/** Wraps {@link createHttpListener} as an {@link ApiListener}. */
export function httpApiListener(handler: (req: IncomingMessage, res: ServerResponse) => void, emit: (e: EventInput) => void): ApiListener {
  const server = createHttpListener(handler, emit);
  return { server, scheme: 'http', closeIdle: () => server.closeIdleConnections(), closeAll: () => server.closeAllConnections(), dispose() {} };
}

/** What the HTTPS listener is built from. */
export interface TlsListenerSettings {
  tls: TlsConfig;
  /** Base directory of relative paths in `tls`. */
  dir: string;
  /** Request a client certificate in the handshake (some API or the listener uses mutual TLS). */
  requestCert: boolean;
  /** Extra client-CA bundles (absolute paths) trusted in the handshake. */
  extraClientCa: string[];
}

/** Socket property holding the connection's TLS facts (set once, at the end of the handshake). */
const TLS_INFO = Symbol('rampart.tlsInfo');
type InfoSocket = TLSSocket & { [TLS_INFO]?: TlsInfo };

/**
 * The {@link TlsInfo} of a finished handshake: protocol, cipher, ALPN, SNI name, whether the
 * client certificate chain verified against the trusted CAs (`authorized`, with OpenSSL's
 * `authorizationError` otherwise) and the client certificate facts, `x5tS256` included
 * (RFC 8705 §3.1). An unparsable client certificate is reported as `authorized: false`,
 * `authorizationError: 'CERT_UNPARSABLE'` with no `peerCertificate`.
 */
export function tlsInfoOf(socket: TLSSocket): TlsInfo {
  const alpn = socket.alpnProtocol;
  const sn = (socket as TLSSocket & { servername?: string | false }).servername;
  const info: TlsInfo = {
    protocol: socket.getProtocol(),
    cipher: socket.getCipher()?.name ?? null,
    alpn: typeof alpn === 'string' ? alpn : null,
    servername: typeof sn === 'string' ? sn : null,
    authorized: socket.authorized,
  };
  const x = socket.getPeerX509Certificate();
  if (x !== undefined) {
    let cert: ClientCertificate | undefined;
    try {
      cert = clientCertificateOf(x.raw);
    } catch {
      info.authorized = false;
      info.authorizationError = 'CERT_UNPARSABLE';
      return info;
    }
    info.peerCertificate = cert;
    if (!socket.authorized) info.authorizationError = String(socket.authorizationError ?? 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  } else {
    info.authorized = false;
  }
  return info;
}

/** TLS facts of a request: from the socket (HTTP/1.1) or the session socket behind the HTTP/2 compat proxy. */
export function requestTlsInfo(req: IncomingMessage): TlsInfo | undefined {
  return (req.socket as InfoSocket)[TLS_INFO];
}

/**
 * Creates the HTTPS API listener: TLS 1.2/1.3 with the configured certificates chosen by SNI,
 * HTTP/2 by ALPN with HTTP/1.1 fallback on the same port (`node:http2` `allowHTTP1`), and, when
 * a client certificate is wanted, `requestCert: true, rejectUnauthorized: false`: the handshake
 * never fails for a client-certificate reason; the verification result travels in
 * {@link TlsInfo} and the `transport` stage answers with problem details and one event.
 * Handshake failures of other kinds (protocol version, no shared cipher, garbage) emit a
 * `tls-handshake-failed` event and never affect the listener.
 *
 * Certificate, key and CA files are watched (`tls.watch`) and re-read on change; the new
 * material is applied with `setSecureContext` and the SNI table swap: established connections
 * keep their session, new handshakes get the new certificate. A failed reload (half-written
 * file, mismatched key) keeps the old material and emits `tls-reload-failed`.
 * @throws {Error} when a file cannot be read or a key does not match its certificate.
 */
export async function createTlsListener(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  emit: (e: EventInput) => void,
  settings: TlsListenerSettings,
  log?: { info(msg: string, data?: object): void; warn(msg: string, data?: object): void },
): Promise<ApiListener> {
  let current = settings;
  let material: TlsMaterial = await loadTlsMaterial(current.tls, { dir: current.dir, extraClientCa: current.extraClientCa });
  const sockets = new Set<TLSSocket>();
  const sessions = new Set<ServerHttp2Session>();
  const options = {
    ...material.defaultOptions,
    requestCert: current.requestCert,
    rejectUnauthorized: false,
    SNICallback: (servername: string, cb: (err: Error | null, ctx?: import('node:tls').SecureContext) => void) => cb(null, sniContext(material, servername)),
  };

  // HTTP/2: pseudo-headers carry the authority; routing and forwarding read `host` (RFC 9113 §8.3.1).
  const h2handler = (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): void => {
    if (req.httpVersionMajor === 2) {
      const h = req.headers;
      if (h.host === undefined && typeof h[':authority'] === 'string') h.host = h[':authority'];
    }
    handler(req as IncomingMessage, res as ServerResponse);
  };
  let server: Http2SecureServer | HttpsServer;
  if (current.tls.http2) {
    const s = createSecureServer(
      {
        ...options,
        allowHTTP1: true,
        settings: { maxConcurrentStreams: 128, maxHeaderListSize: 64 * 1024 },
        maxSessionInvalidFrames: 100,
        maxSessionRejectedStreams: 100,
      },
      h2handler,
    );
    // HTTP/1.1 fallback connections use node:http's timers on the same server object.
    const h1 = s as unknown as { headersTimeout: number; requestTimeout: number };
    h1.headersTimeout = CLIENT_TIMEOUTS.headersMs;
    h1.requestTimeout = CLIENT_TIMEOUTS.requestMs;
    s.on('session', (sess: ServerHttp2Session) => {
      sessions.add(sess);
      sess.once('close', () => sessions.delete(sess));
    });
    server = s;
  } else {
    server = createHttpsServer({ ...options, ALPNProtocols: ['http/1.1'], ...HTTP1_OPTIONS }, handler);
  }
  server.prependListener('secureConnection', (socket: TLSSocket) => {
    (socket as InfoSocket)[TLS_INFO] = tlsInfoOf(socket);
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('checkContinue', deferContinue(current.tls.http2 ? h2handler : handler));
  server.on('checkExpectation', refuseExpectation(emit));
  server.on('clientError', onClientError(emit));
  server.on('connect', refuseConnect(emit));
  server.on('tlsClientError', (err: Error & { code?: string }, socket: TLSSocket) => {
    const code = err.code ?? 'ERR_TLS';
    if (code !== 'ECONNRESET' && code !== 'EPIPE') {
      emit({
        control: 'transport',
        reason: 'tls-handshake-failed',
        action: 'deny',
        severity: 'low',
        client_ip: normalizeIp(socket.remoteAddress),
        details: { error: code, message: err.message.slice(0, 200) },
      });
    }
    socket.destroy();
  });

  const apply = async (next: TlsListenerSettings): Promise<void> => {
    const m = await loadTlsMaterial(next.tls, { dir: next.dir, extraClientCa: next.extraClientCa });
    server.setSecureContext(m.defaultOptions);
    material = m;
    if (next.requestCert !== current.requestCert) {
      log?.warn('tls: a change of client-certificate request (mutual TLS on/off) applies after a restart');
    }
    current = next;
    rewatch();
  };

  let watchers: FSWatcher[] = [];
  let timer: NodeJS.Timeout | undefined;
  let disposed = false;
  const onChange = (): void => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      if (disposed) return;
      apply(current).then(
        () => log?.info('tls: certificates reloaded'),
        (e: Error) => {
          emit({ control: 'transport', reason: 'tls-reload-failed', action: 'error', severity: 'high', details: { message: e.message } });
          log?.warn('tls: reload failed; the previous certificates stay in use', { error: e.message });
        },
      );
    }, 150);
  };
  function rewatch(): void {
    for (const w of watchers) w.close();
    watchers = [];
    if (!current.tls.watch || disposed) return;
    // Directories, not files: certificate tools and Kubernetes replace files by rename.
    const names = new Map<string, Set<string>>();
    for (const f of material.files) {
      const d = dirname(f);
      if (!names.has(d)) names.set(d, new Set());
      (names.get(d) as Set<string>).add(f.slice(d.length + 1));
    }
    for (const [d, set] of names) {
      try {
        const w = watch(d, { persistent: false }, (_ev, name) => {
          if (name === null || set.has(String(name)) || String(name).startsWith('..')) onChange();
        });
        w.on('error', () => {});
        watchers.push(w);
      } catch {
        /* reload on SIGHUP / configuration reload still works */
      }
    }
  }
  rewatch();

  return {
    server,
    scheme: 'https',
    tlsInfo: requestTlsInfo,
    closeIdle() {
      for (const sess of sessions) sess.close();
      (server as { closeIdleConnections(): void }).closeIdleConnections();
    },
    closeAll() {
      for (const sess of sessions) sess.destroy();
      for (const sock of sockets) sock.destroy();
    },
    updateTls: apply,
    dispose() {
      disposed = true;
      if (timer) clearTimeout(timer);
      for (const w of watchers) w.close();
      watchers = [];
    },
  };
}
