/**
 * Small, bounded HTTP helpers for talking to an identity provider (discovery, JWKS,
 * introspection): a timeout on every call and a cap on the response size, so a slow or hostile
 * endpoint cannot hold the gateway or fill its memory.
 */

/** Error raised when an identity provider endpoint fails; `message` never contains a token. */
export class ProviderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProviderError';
  }
}

/** Whether a URL may be used for identity traffic: `https:`, or `http:` on a loopback host only. */
export function isAcceptableProviderUrl(u: string): boolean {
  let url: URL;
  try {
    url = new URL(u);
  } catch {
    return false;
  }
  if (url.protocol === 'https:') return true;
  return url.protocol === 'http:' && (url.hostname === '127.0.0.1' || url.hostname === 'localhost' || url.hostname === '[::1]');
}

/**
 * Fetches `url` and parses a JSON object from the body.
 * @param init fetch init (method, headers, body).
 * @param timeoutMs whole-request timeout in milliseconds.
 * @param maxBytes maximum body size in bytes.
 * @throws {ProviderError} on network error, timeout, non-2xx status (unless `acceptStatus`
 *   allows it), oversized body or a body that is not a JSON object.
 */
export async function fetchJson(
  url: string,
  opts: { init?: RequestInit; timeoutMs: number; maxBytes: number; acceptStatus?: (status: number) => boolean },
): Promise<{ status: number; body: Record<string, unknown> }> {
  let res: Response;
  try {
    res = await fetch(url, { ...opts.init, redirect: 'error', signal: AbortSignal.timeout(opts.timeoutMs) });
  } catch (err) {
    const e = err as Error;
    throw new ProviderError(
      `${url}: ${e.name === 'TimeoutError' ? `timed out after ${opts.timeoutMs} ms` : ((e.cause as Error | undefined)?.message ?? e.message)}`,
    );
  }
  const ok = opts.acceptStatus ? opts.acceptStatus(res.status) : res.ok;
  if (!ok) {
    await res.body?.cancel().catch(() => {});
    throw new ProviderError(`${url}: HTTP ${res.status}`);
  }
  const declared = Number(res.headers.get('content-length') ?? '0');
  if (declared > opts.maxBytes) {
    await res.body?.cancel().catch(() => {});
    throw new ProviderError(`${url}: response larger than ${opts.maxBytes} bytes`);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (res.body) {
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        size += chunk.byteLength;
        if (size > opts.maxBytes) throw new ProviderError(`${url}: response larger than ${opts.maxBytes} bytes`);
        chunks.push(chunk);
      }
    } catch (err) {
      if (err instanceof ProviderError) throw err;
      throw new ProviderError(`${url}: ${(err as Error).message}`);
    }
  }
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new ProviderError(`${url}: response is not JSON`);
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new ProviderError(`${url}: response is not a JSON object`);
  return { status: res.status, body: body as Record<string, unknown> };
}

/**
 * OpenID Connect Discovery 1.0 §4: fetches `{issuer}/.well-known/openid-configuration` and checks
 * that the document's `issuer` is exactly the configured one (§4.3).
 * @throws {ProviderError} on any failure or issuer mismatch.
 */
export async function discover(issuer: string, timeoutMs: number): Promise<Record<string, unknown>> {
  const url = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
  const { body } = await fetchJson(url, { timeoutMs, maxBytes: 256 * 1024 });
  if (body.issuer !== issuer)
    throw new ProviderError(`${url}: issuer ${JSON.stringify(body.issuer)} does not match the configured issuer ${JSON.stringify(issuer)}`);
  return body;
}
