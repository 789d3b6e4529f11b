/**
 * The request handler: the request pipeline read top to bottom.
 *
 *   1. transport facts (request id, peer, trusted-proxy rule) and request-target checks
 *   2. route to an API (deny by default: 404)
 *   3. the API's request stages in phase order (a rejection ends here)
 *   4. proxy to the upstream (streaming, bounded, timeouts, passive health)
 *   5. the response stages, then send
 *   6. access log, metrics and each stage's `done` hook, exactly once
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { EventInput } from '../events/event.ts';
import { RequestContext, type TlsInfo } from '../pipeline/context.ts';
import { PROBLEM_CONTENT_TYPE, Problem } from '../pipeline/problem.ts';
import type { RequestOutcome, RequestStage } from '../pipeline/stage.ts';
import type { Rejection } from '../pipeline/verdict.ts';
import { deriveForwarded, normalizeIp, stripHopByHop, upstreamRequestHeaders } from '../proxy/headers.ts';
import type { Target } from '../proxy/upstream.ts';
import { countRequest, type GatewayMetrics, observeUpstream, trackInFlight } from '../telemetry/metrics.ts';
import { type BodyMeter, BodyLimitExceeded, bodyTooLarge, type ContinueCapable, meteredBody, RequestBody, sendContinue, UpstreamResponse } from './body.ts';
import type { CompiledApi, CompiledConfig } from './compile.ts';

const REQUEST_ID = /^[A-Za-z0-9._:@-]{1,128}$/;
const DOT_SEGMENT = /(^|\/)(\.|%2e){1,2}(\/|$)/i;
/** Encoded dot-dot, slash, backslash and semicolon: servers that decode them disagree with routing. */
const ENCODED_SLASH_DOT = /%2e%2e|%2f|%5c|%3b|\\/i;
/** A Host value: reg-name, IPv4 or [IPv6], optional port (RFC 9110 §7.2, RFC 3986 §3.2.2). */
const HOST_SYNTAX = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,=%-]+)(:\d{1,5})?$/;
const NO_BODY_STATUS = new Set([204, 304]);
/** HTTP/2 request pseudo-header fields (RFC 9113 §8.3.1, RFC 8441 §4): never forwarded as headers. */
const H2_PSEUDO = [':method', ':scheme', ':authority', ':path', ':protocol'] as const;

/** The fixed fields of one access-log line (durations in ms, sizes in bytes). */
export interface AccessRecord {
  request_id: string;
  /** API name, `-` when no route matched. */
  api: string;
  method: string;
  /** Request target with secret query parameters redacted. */
  path: string;
  status: number;
  verdict: string;
  aborted: boolean;
  bytes_in: number;
  bytes_out: number;
  latency_ms: number;
  /** Time to the upstream response head; absent when the request never reached the upstream. */
  upstream_ms: number | undefined;
  client_ip: string;
}

/** Access-log writer (one line per request). */
export interface AccessLog {
  access(record: AccessRecord): void;
}

/** What the handler needs from the gateway. */
export interface HandlerDeps {
  /** Counts and dispatches a security event (metrics, redaction and sinks are the gateway's). */
  emit: (e: EventInput) => void;
  metrics: GatewayMetrics;
  accessLog: AccessLog | undefined;
  /** TLS facts for a request (undefined on plain HTTP). Supplied by the listener layer. */
  tlsInfo?: (req: IncomingMessage) => TlsInfo | undefined;
}

/** In-flight accounting of one compiled configuration (so a replaced one closes after draining). */
export interface Generation {
  compiled: CompiledConfig;
  inFlight: number;
  retired: boolean;
  onIdle?: () => void;
}

export class RequestHandler {
  private gen: Generation;
  private readonly deps: HandlerDeps;
  /** Requests in flight across generations. */
  inFlight = 0;

  constructor(compiled: CompiledConfig, deps: HandlerDeps) {
    this.gen = { compiled, inFlight: 0, retired: false };
    this.deps = deps;
  }

  get compiled(): CompiledConfig {
    return this.gen.compiled;
  }

  /**
   * Swaps in a new compiled configuration atomically; requests already running finish on the
   * old one. Resolves with the old generation's close once it has drained.
   */
  swap(next: CompiledConfig): Promise<void> {
    const old = this.gen;
    this.gen = { compiled: next, inFlight: 0, retired: false };
    old.retired = true;
    return new Promise((resolve) => {
      const close = () => void old.compiled.close().then(resolve, resolve);
      if (old.inFlight === 0) close();
      else old.onIdle = close;
    });
  }

  /**
   * The `request` listener of the API server, for HTTP/1.1 and the HTTP/2 compatibility API
   * alike. Never throws. The compat objects carry every member `serve` uses (headers, method,
   * url, socket, complete, async iteration; writeHead, end, headersSent, writableEnded, destroy,
   * `close`); the two protocol differences are handled where they arise: HTTP/2 pseudo-headers
   * are not forwarded upstream, and no connection-specific header is sent on HTTP/2 (RFC 9113 §8.2.2).
   */
  readonly handle = (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): void => {
    this.serve(req as IncomingMessage, res as ServerResponse).catch((e) => {
      this.internalError(res as ServerResponse, undefined, e);
    });
  };

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const gen = this.gen;
    const compiled = gen.compiled;
    const { metrics } = this.deps;
    const startedAt = performance.now();
    gen.inFlight++;
    this.inFlight++;
    trackInFlight(1);

    const tls = this.deps.tlsInfo?.(req);
    const scheme = tls ? 'https' : 'http';
    const peerIp = normalizeIp(req.socket.remoteAddress);
    const facts = deriveForwarded(req.headers, peerIp, scheme, compiled.trusted);
    const rid = req.headers['x-request-id'];
    const id = typeof rid === 'string' && REQUEST_ID.test(rid) ? rid : randomUUID();
    const method = req.method ?? 'GET';
    const target = req.url ?? '/';

    let api: CompiledApi | undefined;
    let ctx: RequestContext | undefined;
    let verdict = 'allow';
    let status = 0;
    const meter: BodyMeter = { bytes: 0, exceeded: false };
    let bytesOut = 0;
    let finished = false;
    const ac = new AbortController();

    const emit = (e: EventInput): void => {
      this.deps.emit({
        request_id: id,
        api: api?.name,
        operation: ctx?.operation?.id,
        client_ip: facts.clientIp,
        identity: ctx?.identity?.subject,
        method,
        path: target,
        ...e,
      });
    };

    const finish = (aborted: boolean): void => {
      if (finished) return;
      finished = true;
      gen.inFlight--;
      this.inFlight--;
      trackInFlight(-1);
      if (gen.retired && gen.inFlight === 0) gen.onIdle?.();
      const st = status || res.statusCode;
      const latency = performance.now() - startedAt;
      const apiName = api?.name ?? '-';
      countRequest(metrics, apiName, st, verdict, latency / 1000);
      if (api && ctx) {
        const outcome: RequestOutcome = { status: st, aborted, bytesIn: meter.bytes, bytesOut };
        for (const s of api.doneStages) {
          try {
            s.done?.(ctx, outcome);
          } catch {
            /* a done hook must not break accounting */
          }
        }
      }
      this.deps.accessLog?.access({
        request_id: id,
        api: apiName,
        method,
        path: compiled.redactor.path(target),
        status: st,
        verdict,
        aborted,
        bytes_in: meter.bytes,
        bytes_out: bytesOut,
        latency_ms: Math.round(latency * 1000) / 1000,
        upstream_ms: ctx?.timings.upstream,
        client_ip: facts.clientIp,
      });
    };
    let bodyStream: Readable | undefined;
    /** Aborts the upstream exchange of the direct path (set once it is on a connection). */
    let cancelUpstream: ((reason: unknown) => void) | undefined;
    res.once('close', () => {
      // writableEnded, not writableFinished: the latter can still be false on a completed
      // keep-alive response whose bytes sit in the socket buffer.
      const aborted = !res.writableEnded;
      if (aborted) {
        ac.abort();
        cancelUpstream?.(ac.signal.reason);
        if (bodyStream !== undefined && !bodyStream.readableEnded) bodyStream.destroy();
      }
      finish(aborted);
    });

    const reject = (r: Rejection, control: string): void => {
      verdict = r.action;
      status = r.problem.status;
      if (!r.quiet) {
        emit({ control, reason: r.problem.code, action: r.action, severity: r.severity, status: r.problem.status, details: r.details });
      }
      bytesOut = sendProblem(res, r.problem, id, !req.complete);
    };

    /** A stage threw something other than a Problem: 500 problem details and one `internal-error` event. */
    const stageFailed = (control: string, what: 'request' | 'response', e: unknown): void => {
      verdict = 'error';
      status = 500;
      emit({ control, reason: 'internal-error', action: 'error', severity: 'high', status: 500, details: { message: (e as Error)?.message } });
      const problem = new Problem(500, 'internal-error', 'Internal Server Error', { detail: `The gateway failed to process the ${what}.` });
      bytesOut = sendProblem(res, problem, id, !req.complete);
    };

    // 1. Request-target checks: origin-form only, no dot segments (routing and the upstream must agree on the path).
    if (target[0] !== '/') {
      return reject(
        {
          action: 'deny',
          severity: 'low',
          problem: new Problem(400, 'invalid-request-target', 'Bad Request', { detail: 'Only origin-form request targets are accepted.' }),
        },
        'gateway',
      );
    }
    // RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing (smuggling vector).
    if (req.httpVersionMajor === 1 && req.httpVersionMinor === 0 && req.headers['transfer-encoding'] !== undefined) {
      return reject(
        {
          action: 'deny',
          severity: 'high',
          problem: new Problem(400, 'malformed-request', 'Bad Request', { detail: 'Transfer-Encoding is not allowed in an HTTP/1.0 request.' }),
        },
        'gateway',
      );
    }
    // TRACE/TRACK echo the request, credentials included (cross-site tracing); never proxied.
    if (method === 'TRACE' || method === 'TRACK') {
      return reject(
        {
          action: 'deny',
          severity: 'low',
          problem: new Problem(405, 'method-not-allowed', 'Method Not Allowed', {
            detail: `${method} is not allowed through the gateway.`,
            headers: { allow: 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS' },
          }),
        },
        'gateway',
      );
    }
    const q = target.indexOf('?');
    const path = q === -1 ? target : target.slice(0, q);
    // `;` path parameters are refused too: Tomcat, Spring and Jetty strip them (`/admin;x/` is
    // `/admin/` there), so prefix rules would see another path than the upstream.
    if (DOT_SEGMENT.test(path) || (path.includes('%') && ENCODED_SLASH_DOT.test(path)) || path.includes('\\') || path.includes(';')) {
      return reject(
        {
          action: 'deny',
          severity: 'medium',
          problem: new Problem(400, 'path-not-normalized', 'Bad Request', { detail: 'The path contains dot segments, path parameters or encoded separators.' }),
        },
        'gateway',
      );
    }
    // Exactly one well-formed Host (RFC 9112 §3.2: a request with several, or an invalid one, is a 400).
    if (!hostIsValid(req)) {
      return reject(
        {
          action: 'deny',
          severity: 'medium',
          problem: new Problem(400, 'invalid-host', 'Bad Request', { detail: 'The request must carry exactly one valid Host header.' }),
        },
        'gateway',
      );
    }

    // 2. Route: deny by default.
    api = compiled.route(facts.host, path);
    const contextFor = (apiName: string, body: RequestBody, maxBody: number): RequestContext =>
      new RequestContext(
        { id, req, method, target, clientIp: facts.clientIp, peerIp, scheme: facts.proto, host: facts.host, tls, apiName, body, emit, signal: ac.signal },
        maxBody,
      );
    /** Runs request stages in order; true when the request was answered (refused or failed). */
    const runStages = async (stages: readonly RequestStage[], c: RequestContext): Promise<boolean> => {
      for (const stage of stages) {
        let r: Rejection | undefined;
        try {
          const v = stage.run(c);
          r = v instanceof Promise ? await v : v;
        } catch (e) {
          if (e instanceof Problem) r = { action: 'deny', problem: e, severity: e.status >= 500 ? 'high' : 'medium' };
          else {
            stageFailed(stage.control, 'request', e);
            return true;
          }
        }
        if (r !== undefined) {
          reject(r, stage.control);
          return true;
        }
        if (ac.signal.aborted) return true;
      }
      return false;
    };
    if (api === undefined) {
      // The gateway-wide network floor applies here too: a denied client learns nothing of the routes.
      if (compiled.unrouted.length > 0) {
        ctx = contextFor('-', new RequestBody(req, () => 0, meter), 0);
        if (await runStages(compiled.unrouted, ctx)) return;
      }
      return reject(
        { action: 'deny', severity: 'low', problem: new Problem(404, 'no-route', 'Not Found', { detail: 'No API is configured for this host and path.' }) },
        'gateway',
      );
    }

    const owedContinue = (): void => sendContinue(res as unknown as ContinueCapable);
    const body = new RequestBody(req, () => (ctx ? ctx.maxBodyBytes : api!.defaultMaxBodyBytes), meter, owedContinue);
    ctx = contextFor(api.name, body, api.defaultMaxBodyBytes);

    // 3. Request stages in phase order.
    if (await runStages(api.requestStages, ctx)) return;

    // 4. Proxy.
    let upstreamPath = path;
    if (api.config.upstream.strip_prefix && api.prefix) upstreamPath = path.slice(api.prefix.length) || '/';
    const query = ctx.upstreamQuery !== undefined ? (ctx.upstreamQuery ? `?${ctx.upstreamQuery}` : '') : q === -1 ? '' : target.slice(q);
    const headers = upstreamRequestHeaders(req.headers, peerIp, facts, id, ctx.upstreamHeaders);
    if (req.httpVersionMajor === 2) for (const k of H2_PSEUDO) delete headers[k];
    const cap = ctx.maxBodyBytes;
    let reqBody: Buffer | Readable | undefined;
    if (body.buffered !== undefined) {
      reqBody = body.buffered;
      headers['content-length'] = String(body.buffered.length);
    } else if (req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined) {
      owedContinue();
      reqBody = Readable.from(meteredBody(req, cap, meter), { objectMode: false });
    }
    const timeouts = api.config.upstream.timeouts;
    const first = api.upstream.pick();
    if (first === undefined) {
      verdict = 'error';
      status = 503;
      emit({ control: 'proxy', reason: 'no-healthy-upstream', action: 'error', severity: 'high', status: 503 });
      bytesOut = sendProblem(
        res,
        new Problem(503, 'no-healthy-upstream', 'Service Unavailable', { detail: 'No upstream target is healthy.', headers: { 'retry-after': '5' } }),
        id,
        !req.complete,
      );
      return;
    }
    let t: Target = first;
    const upStart = performance.now();
    /** Sends the response head: hop-by-hop fields stripped, stage headers and the request id added. */
    const writeHead = (statusCode: number, respHeaders: Record<string, string | string[] | undefined>): Record<string, string | string[]> => {
      status = statusCode;
      const out: Record<string, string | string[]> = {};
      for (const k in respHeaders) {
        const v = respHeaders[k];
        if (v !== undefined) out[k] = v;
      }
      for (const [k, v] of ctx.responseHeaders) out[k] = v;
      out['x-request-id'] = id;
      res.writeHead(statusCode, out);
      return out;
    };
    const upstreamAnswered = (): void => {
      api.upstream.success(t);
      ctx.timings.upstream = performance.now() - upStart;
      observeUpstream(metrics, api.name, ctx.timings.upstream / 1000);
    };
    // No response stage: the upstream response streams straight into `res` (no body stream,
    // no pipe). Resolves once the head is sent; a failure before it rejects (same handling as
    // below), one after it cuts the response off.
    const direct = (): Promise<void> =>
      new Promise((resolve, reject) => {
        let started = false;
        let counting = false;
        t.pool.dispatch(
          {
            path: t.basePath + upstreamPath + query,
            method: method as Dispatcher.HttpMethod,
            headers,
            body: reqBody,
            headersTimeout: timeouts.headers_ms,
            bodyTimeout: timeouts.body_idle_ms,
          },
          {
            onRequestStart(c) {
              cancelUpstream = (reason) => c.abort(reason as Error);
              if (ac.signal.aborted) c.abort(ac.signal.reason as Error);
            },
            onResponseStart(_c, statusCode, h) {
              if (statusCode < 200) return;
              started = true;
              upstreamAnswered();
              const respHeaders = h as Record<string, string | string[] | undefined>;
              stripHopByHop(respHeaders);
              const declared = writeHead(statusCode, respHeaders)['content-length'];
              if (method === 'HEAD' || NO_BODY_STATUS.has(statusCode)) {
                /* no body */
              } else if (typeof declared === 'string' && declared !== '') bytesOut = Number(declared);
              else counting = true;
              resolve();
            },
            onResponseData(c, chunk) {
              if (counting) bytesOut += chunk.length;
              if (!res.write(chunk)) {
                c.pause();
                res.once('drain', () => c.resume());
              }
            },
            onResponseEnd() {
              res.end();
            },
            onResponseError(_c, err: Error & { code?: string }) {
              if (!started) {
                reject(err);
                return;
              }
              res.destroy();
              if (!ac.signal.aborted)
                emit({ control: 'proxy', reason: 'response-aborted', action: 'abort', severity: 'medium', details: { error: err.code ?? err.message } });
            },
          },
        );
      });
    const isDirect = api.responseStages.length === 0;
    let up: Dispatcher.ResponseData | undefined;
    for (let attempt = 0; ; attempt++) {
      try {
        if (isDirect) {
          await direct();
          return;
        }
        up = await t.pool.request({
          path: t.basePath + upstreamPath + query,
          method: method as Dispatcher.HttpMethod,
          headers,
          body: reqBody,
          signal: ac.signal,
          headersTimeout: timeouts.headers_ms,
          bodyTimeout: timeouts.body_idle_ms,
        });
        break;
      } catch (e) {
        if (ac.signal.aborted) return;
        if (meter.exceeded || e instanceof BodyLimitExceeded) {
          return reject({ action: 'deny', severity: 'low', problem: bodyTooLarge(cap), details: { limit: cap } }, 'limits');
        }
        const code = (e as { code?: string }).code ?? '';
        api.upstream.failure(t);
        // A refused connection sent nothing: another target may take a replayable request.
        const next: Target | undefined = code === 'ECONNREFUSED' && attempt === 0 && !(reqBody instanceof Readable) ? api.upstream.pick(t) : undefined;
        if (next) {
          t = next;
          continue;
        }
        const p = upstreamProblem(code);
        verdict = 'error';
        status = p.status;
        emit({
          control: 'proxy',
          reason: p.code,
          action: 'error',
          severity: 'medium',
          status: p.status,
          details: { target: t.origin, error: code || (e as Error).message },
        });
        bytesOut = sendProblem(res, p, id, !req.complete);
        return;
      }
    }
    upstreamAnswered();

    // 5. Response stages, then send.
    const respHeaders = up.headers as Record<string, string | string[] | undefined>;
    stripHopByHop(respHeaders);
    const state = new UpstreamResponse(up.statusCode, respHeaders, up.body);
    for (const stage of api.responseStages) {
      let r: Rejection | undefined;
      try {
        const v = stage.run(ctx, state);
        r = v instanceof Promise ? await v : v;
      } catch (e) {
        if (e instanceof Problem) r = { action: 'deny', problem: e, severity: 'high' };
        else {
          discard(up.body);
          stageFailed(stage.control, 'response', e);
          return;
        }
      }
      if (r !== undefined) {
        discard(up.body);
        return reject(r, stage.control);
      }
      if (ac.signal.aborted) {
        discard(up.body);
        return;
      }
    }
    const out = writeHead(state.status, state.headers);
    if (method === 'HEAD' || NO_BODY_STATUS.has(state.status)) {
      up.body.resume();
      res.end();
      return;
    }
    if (state.buffer !== undefined) {
      bytesOut = state.buffer.length;
      res.end(state.buffer);
      up.body.resume();
      return;
    }
    const stream = state.body;
    const declared = out['content-length'];
    if (typeof declared === 'string' && declared !== '') bytesOut = Number(declared);
    else {
      stream.on('data', (c: Buffer) => {
        bytesOut += c.length;
      });
    }
    // pipe(), not stream.pipeline(): the latter allocates an AbortController, listeners and
    // a DOMException per request. Errors are handled explicitly: a failed body cuts the
    // response off (the client must see a truncated transfer, never a clean end).
    stream.once('error', (err: Error & { code?: string }) => {
      res.destroy();
      if (!ac.signal.aborted)
        emit({ control: 'proxy', reason: 'response-aborted', action: 'abort', severity: 'medium', details: { error: err.code ?? err.message } });
    });
    bodyStream = stream;
    stream.pipe(res);
  }

  private internalError(res: ServerResponse, id: string | undefined, e: unknown): void {
    this.deps.emit({
      control: 'gateway',
      reason: 'internal-error',
      action: 'error',
      severity: 'high',
      request_id: id,
      details: { message: (e as Error)?.message },
    });
    if (!res.headersSent) sendProblem(res, new Problem(500, 'internal-error', 'Internal Server Error'), id ?? '', true);
    else res.destroy();
  }
}

/**
 * Whether the request has exactly one syntactically valid Host (HTTP/1.1) or authority (HTTP/2).
 * HTTP/1.0 requests without Host are accepted (the field is optional there).
 */
function hostIsValid(req: IncomingMessage): boolean {
  if (req.httpVersionMajor === 2) {
    const a = req.headers[':authority'] ?? req.headers.host;
    return typeof a === 'string' && HOST_SYNTAX.test(a);
  }
  const raw = req.rawHeaders;
  let count = 0;
  let value = '';
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === 4 && name.toLowerCase() === 'host') {
      count++;
      value = raw[i + 1] as string;
    }
  }
  if (count === 0) return req.httpVersionMajor === 1 && req.httpVersionMinor === 0;
  return count === 1 && HOST_SYNTAX.test(value);
}

/** Drops an upstream body; its destroy error (AbortError) must not become an unhandled 'error'. */
function discard(body: Readable): void {
  body.on('error', () => {});
  body.destroy();
}

/** Maps an undici/socket error code to the problem the client gets (502, 504). */
export function upstreamProblem(code: string): Problem {
  switch (code) {
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'ETIMEDOUT':
      return new Problem(504, 'upstream-timeout', 'Gateway Timeout', { detail: 'The upstream did not answer in time.' });
    default:
      return new Problem(502, 'upstream-unavailable', 'Bad Gateway', { detail: 'The upstream connection failed or its response was malformed.' });
  }
}

/**
 * Headers of every answer the gateway writes itself (problem details, parser errors): `no-store`
 * and the headers control's defaults, so gateway answers are as safe as proxied ones.
 */
export const ANSWER_HEADERS: Readonly<Record<string, string>> = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'same-origin',
};

/**
 * Writes `problem` as `application/problem+json` (RFC 9457) with the request id as `instance`.
 * `closeConnection` is set when the request body was not read, so leftover bytes cannot be
 * taken as the next request. Returns the body size in bytes.
 */
export function sendProblem(res: ServerResponse, problem: Problem, requestId: string, closeConnection: boolean): number {
  if (res.headersSent) {
    res.destroy();
    return 0;
  }
  const body = JSON.stringify(problem.toBody(requestId || undefined));
  const headers: Record<string, string | string[]> = {
    'content-type': PROBLEM_CONTENT_TYPE,
    'content-length': String(Buffer.byteLength(body)),
    ...ANSWER_HEADERS,
    ...problem.headers,
  };
  if (requestId) headers['x-request-id'] = requestId;
  if (closeConnection && res.req?.httpVersionMajor !== 2) headers.connection = 'close';
  res.writeHead(problem.status, headers);
  res.end(body);
  return Buffer.byteLength(body);
}
