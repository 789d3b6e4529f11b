/**
 * Central secret redaction: applied to every security event and log line before any sink sees
 * it, so no control has to remember. Redacts credential headers (RFC 9110 §11.6.2 Authorization,
 * §11.7.2 Proxy-Authorization, RFC 6265 Cookie/Set-Cookie, configured API-key headers) and query
 * parameters whose names look like secrets (token, key, secret, password, ...).
 */

/** The replacement for a redacted value. */
export const REDACTED = '[REDACTED]';

const DEFAULT_HEADERS = ['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key', 'dpop', 'rampart-passport'];
const SECRET_NAME = /(token|key|secret|passw(or)?d|pwd|auth|credential|session|signature|sig$|code$|assertion)/i;
const SECRET_IN_TEXT = /\b(Bearer|DPoP|Basic)\s+[A-Za-z0-9\-._~+/]+=*/g;

/** Redactor for one configuration (extra header names). */
export class Redactor {
  private readonly headers: Set<string>;

  /** @param extraHeaders header names (any case) to redact besides the defaults. */
  constructor(extraHeaders: readonly string[] = []) {
    this.headers = new Set([...DEFAULT_HEADERS, ...extraHeaders.map((h) => h.toLowerCase())]);
  }

  /** Whether a header's value must never be logged. */
  isSecretHeader(name: string): boolean {
    return this.headers.has(name.toLowerCase());
  }

  /**
   * Whether a detection location (`cookie:sid`, `header:authorization`, `query:api_key`,
   * `body:/user/password`, `form:token`) holds a credential.
   */
  isSecretLocation(location: string): boolean {
    const colon = location.indexOf(':');
    const kind = colon === -1 ? location : location.slice(0, colon);
    if (kind === 'cookie') return true;
    const rest = colon === -1 ? '' : location.slice(colon + 1);
    if (kind === 'header') return this.isSecretHeader(rest) || SECRET_NAME.test(rest);
    const field = rest.slice(rest.lastIndexOf('/') + 1);
    return field !== '' && SECRET_NAME.test(field);
  }

  /** Redacts the values of secret-named query parameters in a path or URL (`/a?token=x` → `/a?token=[REDACTED]`). */
  path(pathOrUrl: string): string {
    const q = pathOrUrl.indexOf('?');
    if (q === -1) return pathOrUrl;
    const parts = pathOrUrl.slice(q + 1).split('&');
    let changed = false;
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i] as string;
      const eq = part.indexOf('=');
      const name = eq === -1 ? part : part.slice(0, eq);
      let decoded = name;
      try {
        decoded = decodeURIComponent(name);
      } catch {
        /* keep raw */
      }
      if (eq !== -1 && SECRET_NAME.test(decoded)) {
        parts[i] = `${name}=${REDACTED}`;
        changed = true;
      }
    }
    return changed ? `${pathOrUrl.slice(0, q)}?${parts.join('&')}` : pathOrUrl;
  }

  /**
   * Deep-copies `value`, redacting: values under secret header names or secret-looking keys,
   * credentials embedded in strings (`Bearer ...`), and secret query parameters inside URL-like
   * strings. Depth is bounded (8); deeper values are replaced by `[TRUNCATED]`.
   */
  value(value: unknown, depth = 0): unknown {
    if (depth > 8) return '[TRUNCATED]';
    if (typeof value === 'string') {
      let s = value.includes('?') ? this.path(value) : value;
      if (s.length > 6 && /Bearer|DPoP|Basic/.test(s)) s = s.replace(SECRET_IN_TEXT, `$1 ${REDACTED}`);
      return s;
    }
    if (value === null || typeof value !== 'object') return value;
    if (Array.isArray(value)) return value.map((v) => this.value(v, depth + 1));
    const out: Record<string, unknown> = {};
    const obj = value as Record<string, unknown>;
    // A detection snippet is a piece of the value found at `location`: when that location is a
    // credential (a cookie, a secret header, a field named like a secret), the snippet is one too.
    const secretSnippet = typeof obj.location === 'string' && 'snippet' in obj && this.isSecretLocation(obj.location);
    for (const [k, v] of Object.entries(obj)) {
      if (secretSnippet && k === 'snippet') {
        out[k] = REDACTED;
        continue;
      }
      if (this.headers.has(k.toLowerCase()) || (typeof v === 'string' && SECRET_NAME.test(k) && !NON_SECRET_KEYS.has(k))) {
        out[k] = REDACTED;
      } else {
        out[k] = this.value(v, depth + 1);
      }
    }
    return out;
  }
}

/** Event detail keys that match the secret pattern but carry no secret. */
const NON_SECRET_KEYS = new Set(['reason', 'status', 'key_id', 'keyId', 'kid', 'token_type', 'auth_method', 'authMethod', 'limit_key', 'code', 'scheme']);
