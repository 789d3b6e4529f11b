/**
 * Listener layer: creates the servers that feed the request handler. The pipeline never knows
 * which listener a request came from; a listener only supplies transport facts (TlsInfo).
 * HTTPS, mutual TLS and HTTP/2 slot in here as further factories.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { PROBLEM_CONTENT_TYPE, Problem } from '../pipeline/problem.ts';
import type { EventInput } from '../events/event.ts';
import { normalizeIp } from '../proxy/headers.ts';

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
  /** Whole request must arrive within this; 0 disables (large uploads are bounded by size instead). */
  requestMs: 0,
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
    emit({
      control: 'gateway',
      reason: problem.code,
      action: 'deny',
      severity: code === 'HPE_HEADER_OVERFLOW' || code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'low' : 'high',
      status: problem.status,
      client_ip: normalizeIp(socket.remoteAddress),
      details: { parser_error: code },
    });
    const body = JSON.stringify(problem.toBody());
    socket.end(
      `HTTP/1.1 ${problem.status} ${problem.title}\r\ncontent-type: ${PROBLEM_CONTENT_TYPE}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  };
}

/** Creates the plain HTTP/1.1 API server (strict parser, bounded headers and timeouts). */
export function createHttpListener(handler: (req: IncomingMessage, res: ServerResponse) => void, emit: (e: EventInput) => void): Server {
  const server = createServer(
    {
      insecureHTTPParser: false,
      maxHeaderSize: 64 * 1024,
      headersTimeout: CLIENT_TIMEOUTS.headersMs,
      requestTimeout: CLIENT_TIMEOUTS.requestMs,
      keepAliveTimeout: CLIENT_TIMEOUTS.keepAliveMs,
      noDelay: true,
      joinDuplicateHeaders: false,
    },
    handler,
  );
  server.on('clientError', onClientError(emit));
  return server;
}

/** Listens on `addr`; resolves with the bound address (port 0 picks one). */
export function listen(server: Server, addr: string): Promise<{ host: string; port: number }> {
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
