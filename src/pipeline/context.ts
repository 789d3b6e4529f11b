/**
 * RequestContext: one per request, flowing through the request stages, the proxy and the
 * response stages. Stages read it and add to it (identity, operation, risk); a stage never
 * reaches into another stage's internals, only into the typed fields here.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import type { EventInput } from '../events/event.ts';
import { Problem } from './problem.ts';

/** Priority class for load shedding (issue: abuse control). */
export type Priority = 'critical' | 'normal' | 'background';

/** Facts about the TLS connection, set by the listener (undefined on plain HTTP). */
export interface TlsInfo {
  protocol: string | null;
  cipher: string | null;
  alpn: string | null;
  servername: string | null;
  /** Whether the client certificate chain verified against the trusted CAs. */
  authorized: boolean;
  authorizationError?: string;
  /** The client certificate, when one was presented (DER bytes). */
  peerCertificate?: ClientCertificate;
}

/** A client certificate as seen by the transport stage (RFC 8705, SPIFFE). */
export interface ClientCertificate {
  /** DER encoding of the certificate. */
  der: Buffer;
  /** base64url(SHA-256(DER)): the `x5t#S256` thumbprint of RFC 8705 §3.1. */
  x5tS256: string;
  subject?: string;
  serialNumber?: string;
  /** SAN URI entries; a `spiffe://` one is the SPIFFE ID. */
  uris?: string[];
  dnsNames?: string[];
  emails?: string[];
  spiffeId?: string;
  validFrom?: Date;
  validTo?: Date;
}

/** The verified caller, set by the identity (and transport) stages. */
export interface Identity {
  /** `sub` claim, API key owner, or certificate subject/SPIFFE ID. */
  subject: string;
  clientId?: string;
  issuer?: string;
  scopes: string[];
  /** Authentication methods used, e.g. `jwt`, `introspection`, `api_key`, `mtls`, `dpop`. */
  methods: string[];
  /** `jti` of the token, or API key id. */
  tokenId?: string;
  /** Token expiry, epoch seconds. */
  expiresAt?: number;
  /** Verified claims (JWT payload or introspection response). */
  claims: Record<string, unknown>;
  /** `cnf` confirmation of the token (RFC 7800), when present. */
  cnf?: Record<string, unknown>;
}

/** The matched OpenAPI operation, set by the contract stage. */
export interface OperationMatch {
  id: string;
  /** Path template, e.g. `/users/{id}`. */
  template: string;
  /** Decoded path parameters. */
  params: Record<string, string>;
}

/** A risk signal added by network/behaviour stages. */
export interface RiskSignal {
  control: string;
  reason: string;
  score: number;
}

/** Request body access for stages that need it (inspection, contract). */
export interface BodyAccess {
  /**
   * Reads the whole request body once into memory, at most `maxBytes` bytes; later calls return
   * the same buffer, and the proxy then sends that buffer upstream instead of the stream.
   * @throws {Problem} 413 `body-too-large` when the body exceeds `maxBytes` or the API's cap.
   * @throws {Problem} 400 `body-incomplete` when the client aborts while sending.
   */
  read(maxBytes?: number): Promise<Buffer>;
  /** The buffered body, once `read` has resolved. */
  readonly buffered: Buffer | undefined;
}

/** Values needed to build a context; supplied by the gateway's request handler. */
export interface ContextInit {
  id: string;
  req: IncomingMessage | Http2ServerRequest;
  method: string;
  /** Raw request target as received (origin-form). */
  target: string;
  clientIp: string;
  peerIp: string;
  scheme: 'http' | 'https';
  host: string;
  tls?: TlsInfo;
  apiName: string;
  body: BodyAccess;
  emit: (event: EventInput) => void;
  signal: AbortSignal;
}

/**
 * The per-request context.
 *
 * Field ownership: the gateway sets the transport facts (`id`, `clientIp`, `tls`, `path`, ...);
 * `identity` belongs to the identity/transport stages, `operation` to the contract stage,
 * `risk` is appended to by any stage. Upstream header changes go through `upstreamHeaders`.
 */
export class RequestContext {
  readonly id: string;
  readonly req: IncomingMessage | Http2ServerRequest;
  readonly method: string;
  readonly target: string;
  /** Path without the query string, still percent-encoded. */
  readonly path: string;
  /** Raw query string without `?` ('' when none). */
  readonly rawQuery: string;
  readonly clientIp: string;
  readonly peerIp: string;
  readonly scheme: 'http' | 'https';
  readonly host: string;
  readonly tls: TlsInfo | undefined;
  readonly apiName: string;
  readonly body: BodyAccess;
  readonly signal: AbortSignal;
  /** Start time, `performance.now()` milliseconds. */
  readonly startedAt: number;

  identity: Identity | undefined = undefined;
  operation: OperationMatch | undefined = undefined;
  priority: Priority = 'normal';
  /** Effective request body cap in bytes for this request (set by the `limits` stage). */
  maxBodyBytes: number;
  readonly risk: RiskSignal[] = [];
  /**
   * Header changes for the upstream request: a string (or list) sets the header, `null` removes it.
   * Names are lower case.
   */
  readonly upstreamHeaders = new Map<string, string | string[] | null>();
  /**
   * Replacement for the raw query string sent upstream (without `?`; '' sends none), e.g. when
   * a stage removes a credential passed as a query parameter. `undefined` forwards it unchanged.
   */
  upstreamQuery: string | undefined = undefined;
  /** Headers added to the response sent to the client (lower-case names). */
  readonly responseHeaders = new Map<string, string | string[]>();
  /** Named timings in milliseconds, e.g. `upstream`. */
  readonly timings: Record<string, number> = {};
  private queryCache: URLSearchParams | undefined;
  private readonly emitFn: (event: EventInput) => void;

  constructor(init: ContextInit, maxBodyBytes: number) {
    this.id = init.id;
    this.req = init.req;
    this.method = init.method;
    this.target = init.target;
    const q = init.target.indexOf('?');
    this.path = q === -1 ? init.target : init.target.slice(0, q);
    this.rawQuery = q === -1 ? '' : init.target.slice(q + 1);
    this.clientIp = init.clientIp;
    this.peerIp = init.peerIp;
    this.scheme = init.scheme;
    this.host = init.host;
    this.tls = init.tls;
    this.apiName = init.apiName;
    this.body = init.body;
    this.signal = init.signal;
    this.emitFn = init.emit;
    this.maxBodyBytes = maxBodyBytes;
    this.startedAt = performance.now();
  }

  /** Request headers as received (lower-case names). */
  get headers(): IncomingHttpHeaders {
    return this.req.headers as IncomingHttpHeaders;
  }

  /** Parsed query string (parsed lazily, once). */
  get query(): URLSearchParams {
    this.queryCache ??= new URLSearchParams(this.rawQuery);
    return this.queryCache;
  }

  /** Emits a security event for this request; request fields are filled in by the gateway. */
  emit(event: EventInput): void {
    this.emitFn(event);
  }

  /** Whether the method is safe (RFC 9110 §9.2.1): GET, HEAD, OPTIONS, TRACE. */
  get isSafeMethod(): boolean {
    const m = this.method;
    return m === 'GET' || m === 'HEAD' || m === 'OPTIONS' || m === 'TRACE';
  }
}

export { Problem };
