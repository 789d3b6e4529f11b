/**
 * `inspection` control: payload limits and injection detection. On by default.
 *
 * Runs in the `inspection` phase (after identity, contract and authorisation, so anonymous
 * traffic cannot make the gateway parse bodies for protected routes). It reads the request body
 * once (`ctx.body.read`, bounded; the proxy re-uses the buffer), parses it under its declared
 * content type, enforces structural limits, normalises every path segment, query value, chosen
 * header, cookie and body leaf, and runs our own linear-time detectors (SQLi, XSS, command
 * injection, path traversal/LFI, SSRF, NoSQL operators, SSTI, LDAP) with CRS-style anomaly scoring
 * and paranoia levels. Per-route exclusions let fields that legitimately carry code or HTML through.
 *
 * Rejections: 403 `injection-detected` (naming detector and location); 400 `body-malformed`
 * (naming the parser error); 400 `invalid-encoding` (malformed UTF-8, overlong forms); 400
 * structural codes (`json-limit-exceeded`, `json-number-out-of-range`, `prototype-pollution`, `duplicate-key`,
 * `xml-dtd-refused`, `xml-limit-exceeded`, `form-limit-exceeded`, `multipart-limit-exceeded`,
 * `parameter-limit-exceeded`); 400 parser-disagreement codes (`content-type-ambiguous`,
 * `multipart-part-ambiguous`, `method-override-refused`, `invalid-content-encoding`); 413
 * `body-too-large` (a coded body decoding past the limit); 415 `unsupported-charset`,
 * `unsupported-content-encoding`.
 * OWASP API Security Top 10 2023 API4/API7/API8; OWASP CRS 4 (anomaly scoring, paranoia levels).
 */
import { z } from 'zod';
import { defineControl } from '../../pipeline/control.ts';
import type { RequestContext } from '../../pipeline/context.ts';
import { Problem } from '../../pipeline/problem.ts';
import type { Rejection, Verdict } from '../../pipeline/verdict.ts';
import { deny } from '../../pipeline/verdict.ts';
import { CorruptEncodingError, DecodedTooLargeError, decodeBody, parseCoding } from '../../http/coding.ts';
import {
  BodyLimitError,
  BodyParseError,
  charsetReading,
  type NameRules,
  type PathStack,
  parseMediaType,
  textReadings,
  UnsupportedCharsetError,
  walkJson,
  walkMultipart,
  walkUrlEncoded,
  walkXml,
} from './body.ts';
import { type CompiledExclusion, DETECTORS, type DetectorName, Engine, type Scan } from './engine.ts';
import { fitsHeaderGrammar, isClientHint } from './headers.ts';
import { detectRestrictedPath, detectRestrictedUpload } from './lfi.ts';
import { normalize, percentDecode } from './normalize.ts';

const exclusionSchema = z.strictObject({
  /** Route: request paths starting with this prefix (all paths when absent). */
  path_prefix: z.string().startsWith('/').optional(),
  /** Route: an OpenAPI operation id matched by the contract stage. */
  operation: z.string().optional(),
  /** Route: HTTP methods (all when absent). */
  methods: z.array(z.string().toUpperCase()).optional(),
  /** Locations to exclude, e.g. `body:/content`, `query:html`, `cookie:*`; a trailing `*` is a prefix match. */
  locations: z.array(z.string().min(1)).min(1),
  /** Detectors to ignore there (all when absent). */
  detectors: z.array(z.enum(DETECTORS)).optional(),
});

export const inspectionSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** `block`: reject at the anomaly threshold; `monitor`: let everything through and emit events. */
  mode: z.enum(['block', 'monitor']).default('block'),
  /** CRS paranoia level: 1 (fewest false positives) to 4; rules above it do not run. */
  paranoia_level: z.number().int().min(1).max(4).default(1),
  /** Inbound anomaly score threshold (CRS default 5: one critical detection blocks). */
  anomaly_threshold: z.number().int().min(1).default(5),
  /** Detectors to run. */
  detectors: z.array(z.enum(DETECTORS)).default([...DETECTORS]),
  /** Request headers inspected besides `Cookie` (lower-case names; `*` = all but `skip_headers`). */
  headers: z.array(z.string().toLowerCase()).default(['*']),
  /**
   * Headers not inspected when `headers` has `*` and their value fits the header's grammar
   * (structured protocol fields, opaque keys: see `headers.ts`); a value that does not fit is
   * inspected (`Accept-Language: ../../etc/passwd`). Names without a known grammar are skipped
   * whatever their value. Every client hint (`sec-ch-*`) is treated as listed here (skipped when it
   * fits the RFC 8941 grammar). `Cookie` is inspected per cookie (`cookies`). `Authorization`/
   * `Proxy-Authorization` are inspected by their grammar (see {@link credentialParts}) unless listed here.
   */
  skip_headers: z
    .array(z.string().toLowerCase())
    .default([
      'cookie',
      'host',
      'content-length',
      'content-type',
      'transfer-encoding',
      'connection',
      'accept',
      'accept-encoding',
      'accept-language',
      'accept-charset',
      'cache-control',
      'pragma',
      'if-none-match',
      'if-match',
      'if-modified-since',
      'if-unmodified-since',
      'dpop',
      'traceparent',
      'tracestate',
      'x-request-id',
      'x-api-key',
      'sec-fetch-site',
      'sec-fetch-mode',
      'sec-fetch-dest',
      'sec-ch-ua',
      'sec-ch-ua-mobile',
      'sec-ch-ua-platform',
      'upgrade-insecure-requests',
    ]),
  cookies: z.boolean().default(true),
  /**
   * Let a `_method` parameter (query, form or multipart field; any case) name another HTTP method
   * than the request's. Off: such a request gets 400 `method-override-refused`, since Laravel,
   * Symfony, Rails and express method-override would run the named method, which the gateway's
   * controls never saw.
   */
  allow_method_override: z.boolean().default(false),
  /**
   * Headers whose values are credentials: a detection there never carries a snippet (lower-case
   * names; any header whose name looks secret, e.g. `x-session-id`, is treated the same).
   */
  secret_headers: z
    .array(z.string().toLowerCase())
    .default(['authorization', 'proxy-authorization', 'cookie', 'x-api-key', 'x-auth-token', 'x-access-token', 'x-csrf-token', 'x-xsrf-token', 'dpop']),
  /** Extra field names (query, form, JSON member; lower-case, exact) whose values are never shown in snippets. */
  secret_fields: z.array(z.string().toLowerCase()).default([]),
  limits: z
    .strictObject({
      /** Query parameters per request. */
      query_params: z.number().int().positive().default(256),
      /** Bytes per query parameter value (still encoded). */
      query_value_bytes: z.number().int().positive().default(8192),
      /** Bytes per inspected header value. */
      header_value_bytes: z.number().int().positive().default(8192),
      /** Bytes per cookie value. */
      cookie_bytes: z.number().int().positive().default(4096),
      /** Cookies per request. */
      cookies: z.number().int().positive().default(64),
    })
    .default({ query_params: 256, query_value_bytes: 8192, header_value_bytes: 8192, cookie_bytes: 4096, cookies: 64 }),
  body: z
    .strictObject({
      /** Bytes read for inspection (capped by the API's body limit); larger bodies get 413. */
      max_bytes: z.number().int().positive().optional(),
      /**
       * Also inspect chunked bodies, and bodies longer than the limit (413), of unknown or missing
       * content type. Without it such bodies are inspected only when their Content-Length fits
       * `max_bytes`: as JSON when they parse as JSON, else as one text leaf (`body:`); invalid
       * UTF-8 is skipped.
       */
      inspect_unknown: z.boolean().default(false),
      /**
       * A request body in a content coding the gateway cannot decode (not `gzip`, `x-gzip`,
       * `deflate`, `br` or `identity`, or several stacked): `refuse` (415
       * `unsupported-content-encoding`) or `pass` (forwarded uninspected).
       */
      unknown_encoding: z.enum(['refuse', 'pass']).default('refuse'),
      json: z
        .strictObject({
          max_depth: z.number().int().min(1).max(512).default(32),
          max_keys: z.number().int().positive().default(1000),
          max_array: z.number().int().positive().default(10000),
          max_string: z.number().int().positive().default(1_000_000),
          /** Largest absolute value of a number (none by default: 64-bit IDs are common in APIs). */
          max_number: z.number().positive().optional(),
          /** Digits of a number's mantissa, integer and fraction together (20 holds every 64-bit integer). */
          max_number_digits: z.number().int().positive().default(40),
          /** Largest |exponent| written in a number (`1e400` is refused; IEEE 754 binary64 reaches 308). */
          max_number_exponent: z.number().int().nonnegative().default(308),
          duplicate_keys: z.enum(['reject', 'allow']).default('reject'),
          forbidden_keys: z.array(z.string()).default(['__proto__', 'constructor', 'prototype']),
        })
        .prefault({}),
      xml: z
        .strictObject({
          max_depth: z.number().int().min(1).max(512).default(32),
          max_string: z.number().int().positive().default(1_000_000),
        })
        .prefault({}),
      form: z
        .strictObject({
          max_fields: z.number().int().positive().default(1000),
          max_files: z.number().int().nonnegative().default(10),
          max_field_bytes: z
            .number()
            .int()
            .positive()
            .default(1024 * 1024),
          max_file_bytes: z
            .number()
            .int()
            .positive()
            .default(10 * 1024 * 1024),
        })
        .prefault({}),
    })
    .prefault({}),
  /** Per-route exclusions for fields that legitimately carry code, HTML or paths. */
  exclusions: z.array(exclusionSchema).default([]),
});
export type InspectionConfig = z.output<typeof inspectionSchema>;

const CONTROL = 'inspection';
/** Headers that name an uploaded file (compare CRS 932180): checked against restricted upload names. */
const UPLOAD_NAME_HEADERS = new Set(['x-filename', 'x_filename', 'x.filename', 'x-file-name']);

/** JSON Pointer (RFC 6901) of a path stack. */
function pointer(path: PathStack): string {
  let out = '';
  for (const p of path) out += `/${typeof p === 'number' ? p : p.replaceAll('~', '~0').replaceAll('/', '~1')}`;
  return out;
}

type BodyKind = 'json' | 'xml' | 'form' | 'multipart' | 'text' | 'unknown';

/**
 * Classifies a `Content-Type` value (RFC 9110 §8.3) by media type; charset, boundary and the first
 * parameter named twice (ambiguous) returned separately.
 */
function bodyKind(ct: string | undefined): { kind: BodyKind; type: string; charset: string | undefined; boundary?: string; duplicate?: string } {
  if (ct === undefined || ct.trim() === '') return { kind: 'unknown', type: '', charset: undefined };
  const media = parseMediaType(ct);
  const mt = media.type;
  const charset = media.params.get('charset')?.toLowerCase();
  let kind: BodyKind = 'unknown';
  if (mt === 'application/json' || mt === 'text/json' || (mt.startsWith('application/') && mt.endsWith('+json'))) kind = 'json';
  else if (mt === 'application/xml' || mt === 'text/xml' || mt.endsWith('+xml')) kind = 'xml';
  else if (mt === 'application/x-www-form-urlencoded') kind = 'form';
  else if (mt.startsWith('multipart/'))
    kind = 'multipart'; // Tomcat and Spring read any multipart/* as a form
  else if (mt === 'text/plain') kind = 'text';
  return { kind, type: mt, charset, boundary: media.params.get('boundary'), duplicate: media.duplicate };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Whether the first non-white-space character (RFC 8259 §2 `ws`) opens a JSON object or array. */
function looksLikeJson(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 32 || c === 9 || c === 10 || c === 13) continue;
    return c === 123 || c === 91;
  }
  return false;
}

/** Headers that carry `credentials` (RFC 9110 §11.4, §11.6.2, §11.7.2): inspected by {@link credentialParts}. */
const CREDENTIAL_HEADERS = new Set(['authorization', 'proxy-authorization']);
/** RFC 9110 §11.2 `token68`: the alphabet of Bearer (RFC 6750 §2.1), Basic and Negotiate credentials. */
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/;
/** RFC 9110 §5.6.2 `token` (an auth-scheme). */
const AUTH_SCHEME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/;
/** One `auth-param` (RFC 9110 §11.2): a short parameter name, `=`, a quoted-string or a run up to the next comma. */
const AUTH_PARAM = /^[ \t]*([A-Za-z][A-Za-z0-9_-]{0,63})[ \t]*=[ \t]*(?:"((?:[^"\\]|\\.)*)"|([^,"\s]*))[ \t]*(?:,|$)/;

/**
 * The user-id of a Basic credential (RFC 7617 §2: base64 of `user-id ":" password`), or the whole
 * decoded text when it has no colon; `undefined` when the bytes are not UTF-8 (an opaque token sent
 * under the Basic scheme). The password is never returned: passwords legitimately hold quotes, `--`
 * and anything else a detector reads as syntax, and the server compares it, it does not parse it.
 */
function basicUserId(token: string): string | undefined {
  let text: string;
  try {
    text = utf8.decode(Buffer.from(token, 'base64'));
  } catch {
    return undefined;
  }
  const colon = text.indexOf(':');
  return colon === -1 ? text : text.slice(0, colon);
}

/**
 * The parts of an `Authorization` value worth inspecting (RFC 9110 §11.4: `auth-scheme [ 1*SP (
 * token68 / #auth-param ) ]`). A well-formed `token68` credential (Bearer, Negotiate) has an
 * alphabet in which no markup, quote, shell or SQL syntax fits: nothing to inspect, and random
 * token bytes cannot raise false positives. A Basic credential is decoded and its user-id
 * inspected (`admin' or 1=1--` hides in base64; the password is not inspected). An auth-param list (Digest, OAuth 1.0, AWS SigV4)
 * yields its parameter values one by one, as query values are inspected (token68-shaped ones, also
 * after percent-decoding, skipped for the same reason). Anything that fits
 * neither (a Bearer token with `onload=` in the middle) is not a credential the scheme defines:
 * the whole value is inspected. The location stays `header:authorization`, whose snippets are
 * redacted (`secret_headers`), so no credential reaches an event.
 * @returns the strings to inspect (empty for a well-formed opaque credential).
 */
export function credentialParts(v: string): string[] {
  const t = v.trim();
  const sp = t.search(/[ \t]/);
  if (sp === -1) return TOKEN68.test(t) ? [] : [t];
  const scheme = t.slice(0, sp);
  if (!AUTH_SCHEME.test(scheme)) return [t];
  let rest = t.slice(sp).trimStart();
  if (TOKEN68.test(rest)) {
    if (scheme.length !== 5 || scheme.toLowerCase() !== 'basic') return [];
    const user = basicUserId(rest);
    return user === undefined || user === '' ? [] : [user];
  }
  const out: string[] = [];
  for (let guard = 0; rest !== '' && guard < 64; guard++) {
    const m = AUTH_PARAM.exec(rest);
    if (m === null) return [t];
    const value = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : (m[3] as string);
    // OAuth 1.0 percent-encodes its values (RFC 5849 §3.5.1): a base64 signature is still a token68
    if (value !== '' && !TOKEN68.test(value) && !(value.includes('%') && TOKEN68.test(percentDecode(value, false) as string))) out.push(value);
    rest = rest.slice(m[0].length);
  }
  return rest === '' ? out : [t];
}

/** Node's HTTP parser hands header values over as latin1; re-read them as the UTF-8 clients send. */
function headerText(v: string): string {
  for (let i = 0; i < v.length; i++) if (v.charCodeAt(i) > 127) return Buffer.from(v, 'latin1').toString('utf8');
  return v;
}

/**
 * Field and header names that usually carry a credential or session secret (OWASP Logging Cheat
 * Sheet: never log session ids, access tokens, passwords, keys). Matched on the lower-cased name;
 * `author`/`authors` excepted.
 */
const SECRET_NAME =
  /token|secret|passw(?:or)?d|passphrase|pwd|auth(?!ors?(?:$|[^a-z]))|credential|session|signature|api[-_.]?key|access[-_.]?key|private[-_.]?key|(?:^|[^a-z])key(?:$|[^a-z])|(?:^|[^a-z])sig(?:$|[^a-z])|(?:^|[^a-z])sid(?:$|[^a-z])|jwt|bearer|cookie|csrf|xsrf|otp|nonce|cvv|ssn/;

/** The snippet placeholder for a detection at a secret location. */
export const REDACTED = '[REDACTED]';

/** Titles of the structural rejections ({@link BodyLimitError} codes) that are not plain limits. */
const RULE_TITLES: Record<string, string> = {
  'prototype-pollution': 'Forbidden Member Name',
  'duplicate-key': 'Duplicate Member Name',
  'xml-dtd-refused': 'XML Declarations Refused',
  'json-number-out-of-range': 'JSON Number Out of Range',
  'method-override-refused': 'Method Override Refused',
  'multipart-part-ambiguous': 'Ambiguous Multipart Part',
};
/** Structural rejections that are attack signs rather than oversize or odd input. */
const HIGH_RULES = new Set(['prototype-pollution', 'xml-dtd-refused', 'method-override-refused', 'multipart-part-ambiguous']);

/** The 400 rejection of a body (or query) that breaks a structural limit or rule. */
function bodyRuleProblem(e: BodyLimitError, location = 'body'): Rejection {
  return deny(
    new Problem(400, e.code, RULE_TITLES[e.code] ?? 'Body Structure Limit Exceeded', { detail: e.message, extensions: { limit: e.limit, location } }),
    HIGH_RULES.has(e.code) ? 'high' : 'low',
    { limit: e.limit, location },
  );
}

/**
 * The 415 rejection of a body whose declared charset cannot be read one way only
 * ({@link charsetReading}): UTF-16/32, UTF-7, EBCDIC or a label the decoder does not know.
 */
function charsetProblem(charset: string, detail?: string): Rejection {
  const c = charset.slice(0, 40);
  return deny(
    new Problem(415, 'unsupported-charset', 'Unsupported Media Type', {
      detail:
        detail ?? `The charset "${c}" is not supported: it is not ASCII-compatible or not known, and backends that read the raw bytes would see another body.`,
      extensions: { charset: c },
    }),
    'medium',
    { charset: c },
  );
}

function tooLarge(what: string, limit: number, location: string): Problem {
  return new Problem(400, 'parameter-limit-exceeded', 'Request Parameter Too Large', {
    detail: `${what} exceeds ${limit} at ${location}.`,
    extensions: { location, limit },
  });
}

export const inspectionControl = defineControl({
  name: CONTROL,
  schema: inspectionSchema,
  defaultConfig: {},
  create(cfg) {
    if (!cfg.enabled) return {};
    const engine = new Engine({
      paranoia: cfg.paranoia_level,
      threshold: cfg.anomaly_threshold,
      enabled: new Set<DetectorName>(cfg.detectors),
      stopAtThreshold: cfg.mode === 'block',
      maxHits: 20,
    });
    const exclusions = cfg.exclusions.map((e) => ({
      route: e,
      compiled: {
        exact: new Set(e.locations.filter((l) => !l.endsWith('*'))),
        prefixes: e.locations.filter((l) => l.endsWith('*')).map((l) => l.slice(0, -1)),
        detectors: e.detectors ? new Set<string>(e.detectors) : undefined,
      } satisfies CompiledExclusion,
    }));
    const jsonLimits = {
      maxDepth: cfg.body.json.max_depth,
      maxKeys: cfg.body.json.max_keys,
      maxArray: cfg.body.json.max_array,
      maxString: cfg.body.json.max_string,
      maxNumber: cfg.body.json.max_number ?? Number.POSITIVE_INFINITY,
      maxNumberDigits: cfg.body.json.max_number_digits,
      maxNumberExponent: cfg.body.json.max_number_exponent,
      duplicateKeys: cfg.body.json.duplicate_keys,
      forbiddenKeys: new Set(cfg.body.json.forbidden_keys),
    };
    const xmlLimits = { maxDepth: cfg.body.xml.max_depth, maxString: cfg.body.xml.max_string };
    const formLimits = {
      maxFields: cfg.body.form.max_fields,
      maxFiles: cfg.body.form.max_files,
      maxFieldBytes: cfg.body.form.max_field_bytes,
      maxFileBytes: cfg.body.form.max_file_bytes,
    };
    const allHeaders = cfg.headers.includes('*');
    const headerNames = cfg.headers.filter((x) => x !== '*');
    const skipHeaders = new Set(cfg.skip_headers);
    const L = cfg.limits;
    const secretHeaders = new Set(cfg.secret_headers);
    const secretFields = new Set(cfg.secret_fields);
    const secretName = (name: string): boolean => {
      const n = name.toLowerCase();
      return secretFields.has(n) || SECRET_NAME.test(n);
    };

    /**
     * Whether a detection location holds a secret, so that its snippet must not leave the gateway:
     * every cookie, credential headers, and query/body fields with a secret-looking name (any
     * member on the JSON Pointer, so `/auth/value` counts).
     */
    function secretLocation(loc: string): boolean {
      const colon = loc.indexOf(':');
      const kind = loc.slice(0, colon);
      const rest = loc.slice(colon + 1);
      if (kind === 'cookie') return true;
      if (kind === 'header') return secretHeaders.has(rest) || secretName(rest);
      if (kind === 'query') return secretName(rest);
      if (kind === 'body') {
        for (const seg of rest.split('/')) if (seg !== '' && secretName(seg.replaceAll('~1', '/').replaceAll('~0', '~'))) return true;
        return false;
      }
      return false;
    }
    const snippetFor = (d: { location: string; snippet: string }): string => (secretLocation(d.location) ? REDACTED : d.snippet);

    const forbiddenKeys = jsonLimits.forbiddenKeys;
    /** Name rules of query and form parameters: prototype-pollution names, and `_method` unless allowed. */
    const nameRules = (ctx: RequestContext): NameRules => ({ forbiddenKeys, method: cfg.allow_method_override ? undefined : ctx.method });

    function routeExclusions(ctx: RequestContext): CompiledExclusion[] {
      if (exclusions.length === 0) return [];
      const out: CompiledExclusion[] = [];
      for (const { route, compiled } of exclusions) {
        if (route.path_prefix !== undefined && !ctx.path.startsWith(route.path_prefix)) continue;
        if (route.operation !== undefined && ctx.operation?.id !== route.operation) continue;
        if (route.methods !== undefined && !route.methods.includes(ctx.method)) continue;
        out.push(compiled);
      }
      return out;
    }

    /** Inspects everything but the body; returns a rejection for a limit or encoding breach. */
    function inspectHead(ctx: RequestContext, scan: Scan): Verdict {
      // path segments, decoded strictly (RFC 3986 §2.1, RFC 3629 §3)
      const segs = ctx.path.split('/');
      let decodedPath = '';
      for (let i = 1; i < segs.length; i++) {
        const raw = segs[i] as string;
        const seg = percentDecode(raw, false, true);
        if (seg === null)
          return deny(
            new Problem(400, 'invalid-encoding', 'Invalid Encoding', {
              detail: `Malformed UTF-8 in path segment ${i}.`,
              extensions: { location: `path:${i}` },
            }),
            'medium',
            { location: `path:${i}` },
          );
        decodedPath += `/${seg}`;
        if (seg.length > 0 && scan.inspect(seg, false, () => `path:${i}`)) return undefined;
      }
      const lower = normalize(decodedPath);
      const restricted = detectRestrictedPath(lower);
      if (restricted && scan.add('lfi', restricted.rule, restricted.paranoia, 'path:', lower)) return undefined;
      if (lower.includes('..') && scan.inspect(decodedPath, false, () => 'path:')) return undefined;
      // query
      if (ctx.rawQuery !== '') {
        try {
          walkUrlEncoded(
            ctx.rawQuery,
            L.query_params,
            L.query_value_bytes,
            true,
            (v, isName, path) => scan.inspect(v, isName, () => `query:${path[0] as string}`),
            [],
            nameRules(ctx),
          );
        } catch (e) {
          if (e instanceof BodyParseError)
            return deny(
              new Problem(400, 'invalid-encoding', 'Invalid Encoding', { detail: 'Malformed UTF-8 in the query string.', extensions: { location: 'query' } }),
              'medium',
              { location: 'query' },
            );
          if (e instanceof BodyLimitError && e.code !== 'form-limit-exceeded') return bodyRuleProblem(e, 'query');
          if (e instanceof BodyLimitError)
            return deny(
              new Problem(400, 'parameter-limit-exceeded', 'Too Many Parameters', { detail: `Query string: ${e.message}`, extensions: { limit: e.limit } }),
              'low',
              { location: 'query', limit: e.limit },
            );
          throw e;
        }
        if (scan.blocked && engine.opts.stopAtThreshold) return undefined;
      }
      // chosen headers
      const h = ctx.headers;
      for (const name of allHeaders ? Object.keys(h) : headerNames) {
        const skippable = allHeaders && (skipHeaders.has(name) || isClientHint(name));
        if (skippable && name === 'cookie') continue; // inspected cookie by cookie below
        const v = h[name];
        if (v === undefined) continue;
        const vals = Array.isArray(v) ? v : [v];
        for (const one of vals) {
          // a skip-listed header goes uninspected only when its value fits the header's grammar
          if (skippable && fitsHeaderGrammar(name, one)) continue;
          if (one.length > L.header_value_bytes)
            return deny(tooLarge('A header value', L.header_value_bytes, `header:${name}`), 'low', { location: `header:${name}` });
          if (CREDENTIAL_HEADERS.has(name)) {
            for (const part of credentialParts(headerText(one))) if (scan.inspect(part, false, () => `header:${name}`)) return undefined;
          } else if (scan.inspect(headerText(one), false, () => `header:${name}`)) return undefined;
          if (UPLOAD_NAME_HEADERS.has(name)) {
            const u = detectRestrictedUpload(one.toLowerCase());
            if (u && scan.add('lfi', u.rule, u.paranoia, `header:${name}`, one)) return undefined;
          }
        }
      }
      // cookies (RFC 6265 §4.2.1)
      const cookie = h.cookie;
      if (cfg.cookies && cookie !== undefined && cookie !== '') {
        let count = 0;
        for (const pair of headerText(cookie).split(';')) {
          const eq = pair.indexOf('=');
          const name = (eq === -1 ? '' : pair.slice(0, eq)).trim();
          const rawValue = (eq === -1 ? pair : pair.slice(eq + 1)).trim();
          if (++count > L.cookies)
            return deny(
              new Problem(400, 'parameter-limit-exceeded', 'Too Many Cookies', { detail: `More than ${L.cookies} cookies.`, extensions: { limit: L.cookies } }),
              'low',
              { location: 'cookie' },
            );
          if (rawValue.length > L.cookie_bytes)
            return deny(tooLarge('A cookie value', L.cookie_bytes, `cookie:${name}`), 'low', { location: `cookie:${name}` });
          const value = percentDecode(rawValue, false) as string;
          if (scan.inspect(name, true, () => `cookie:${name}`)) return undefined;
          if (scan.inspect(value, false, () => `cookie:${name}`)) return undefined;
        }
      }
      return undefined;
    }

    async function inspectBody(ctx: RequestContext, scan: Scan): Promise<Verdict> {
      const h = ctx.headers;
      const cl = h['content-length'];
      if ((cl === undefined || cl === '0') && h['transfer-encoding'] === undefined) return undefined;
      const { kind, type, charset, boundary, duplicate } = bodyKind(h['content-type']);
      if (duplicate !== undefined)
        return deny(
          new Problem(400, 'content-type-ambiguous', 'Ambiguous Content-Type', {
            detail: `The Content-Type names the parameter "${duplicate.slice(0, 40)}" twice; parsers disagree on which one counts.`,
            extensions: { parameter: duplicate.slice(0, 40) },
          }),
          'high',
          { parameter: duplicate.slice(0, 40) },
        );
      // Content-Encoding (RFC 9110 §8.4): the body is inspected decoded, as the backend's body
      // parser (express body-parser, Go, Werkzeug middleware) decodes it; the upstream gets the original bytes
      const encoding = h['content-encoding'];
      const coding = parseCoding(encoding);
      if (coding === undefined) {
        if (cfg.body.unknown_encoding === 'pass') return undefined;
        const value = String(encoding).slice(0, 40);
        return deny(
          new Problem(415, 'unsupported-content-encoding', 'Unsupported Content Encoding', {
            detail: `The request body's Content-Encoding "${value}" cannot be decoded for inspection (gzip, deflate and br can).`,
            extensions: { encoding: value },
          }),
          'medium',
          { encoding: value },
        );
      }
      const max = Math.min(cfg.body.max_bytes ?? ctx.maxBodyBytes, ctx.maxBodyBytes);
      if (kind === 'unknown' && !cfg.body.inspect_unknown) {
        // Many backends parse JSON whatever the declared type: a body of missing or unknown type is
        // read when its declared length fits the inspection limit. Chunked or larger bodies of
        // unknown type (uploads) keep streaming untouched.
        if (cl === undefined || h['transfer-encoding'] !== undefined) return undefined;
        const len = Number(cl);
        if (!(len > 0 && len <= max)) return undefined;
      }
      let buf = await ctx.body.read(max);
      if (buf.length === 0) return undefined;
      if (coding !== null) {
        try {
          buf = (await decodeBody(buf, coding, max)) as Buffer;
        } catch (e) {
          if (e instanceof DecodedTooLargeError)
            return deny(
              new Problem(413, 'body-too-large', 'Content Too Large', {
                detail: `The request body decodes (Content-Encoding ${coding}) to more than ${max} bytes.`,
                extensions: { limit: max, encoding: coding },
              }),
              'medium',
              { limit: max, encoding: coding },
            );
          if (e instanceof CorruptEncodingError)
            return deny(
              new Problem(400, 'invalid-content-encoding', 'Invalid Content Encoding', {
                detail: `The request body is not valid ${coding} data: ${e.message}.`,
                extensions: { encoding: coding },
              }),
              'medium',
              { encoding: coding },
            );
          throw e;
        }
        if (buf.length === 0) return undefined;
      }
      // one location function for the whole body (not a closure per leaf): it reads the path of the leaf being inspected
      let leafPath: PathStack = [];
      const location = (): string => `body:${pointer(leafPath)}`;
      const visit = (v: string, isName: boolean, path: PathStack, classes?: number): boolean => {
        leafPath = path;
        return scan.inspect(v, isName, location, classes);
      };
      /** Walks one reading of a non-multipart body under its kind. */
      const walkText = (text: string): void => {
        if (kind === 'json') walkJson(text, jsonLimits, visit);
        else if (kind === 'xml') walkXml(text, xmlLimits, visit);
        else if (kind === 'form') {
          // one field without `=` holding JSON (`{"url":"..."}` posted as a form): clients that
          // mislabel JSON, and backends that parse the lone key as JSON, see a document
          if (text.indexOf('=') === -1 && text.indexOf('&') === -1) {
            const lone = percentDecode(text, true, false);
            if (lone !== null && looksLikeJson(lone)) {
              try {
                walkJson(lone, jsonLimits, visit);
              } catch (e) {
                if (!(e instanceof BodyParseError)) throw e;
              }
              if (scan.blocked && engine.opts.stopAtThreshold) return;
            }
          }
          walkUrlEncoded(text, formLimits.maxFields, formLimits.maxFieldBytes, true, visit, [], nameRules(ctx));
        } else if (!looksLikeJson(text)) scan.inspect(text, false, () => 'body:');
        else {
          // text/plain or unknown type holding JSON: inspect it as JSON when it parses, else as one text leaf
          try {
            walkJson(text, jsonLimits, visit);
          } catch (e) {
            if (!(e instanceof BodyParseError)) throw e;
            scan.inspect(text, false, () => 'body:');
          }
        }
      };
      try {
        if (kind === 'multipart') {
          walkMultipart(buf, boundary, { ...formLimits, ...nameRules(ctx), json: jsonLimits, xml: xmlLimits, formData: type === 'multipart/form-data' }, visit);
          return undefined;
        }
        // Form, text and unknown-type bodies: Werkzeug, PHP and Go read the raw bytes whatever the
        // charset, so a charset that reads ASCII bytes otherwise (UTF-16, UTF-7, EBCDIC, one the
        // decoder does not know) is refused, and a legacy ASCII-compatible one is inspected in both
        // readings. JSON and XML keep their declared charset (Express and Python's json decode
        // UTF-16 JSON as declared; a mismatch does not parse and is refused as malformed).
        const rawReader = kind === 'form' || kind === 'text' || kind === 'unknown';
        const reading = charsetReading(charset);
        if (rawReader && reading === 'incompatible') return charsetProblem(charset as string);
        let text: string;
        let rawText: string | undefined;
        if (reading === 'utf-8') {
          try {
            text = utf8.decode(buf);
          } catch {
            if (kind === 'unknown') return undefined; // opaque bytes: nothing to inspect
            return deny(
              new Problem(400, 'invalid-encoding', 'Invalid Encoding', {
                detail: 'The request body is not well-formed UTF-8 (RFC 3629).',
                extensions: { location: 'body' },
              }),
              'medium',
              { location: 'body' },
            );
          }
        } else if (rawReader) {
          const readings = textReadings(buf, charset);
          text = readings[0] as string;
          rawText = readings[1];
        } else {
          let dec: InstanceType<typeof TextDecoder>;
          try {
            dec = new TextDecoder(charset);
          } catch {
            return charsetProblem(charset as string);
          }
          text = dec.decode(buf);
        }
        if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
        walkText(text);
        if (rawText !== undefined && !(scan.blocked && engine.opts.stopAtThreshold)) walkText(rawText);
      } catch (e) {
        if (e instanceof BodyParseError) {
          if (e.kind === 'utf-8')
            return deny(
              new Problem(400, 'invalid-encoding', 'Invalid Encoding', { detail: `The ${kind} body has ${e.message}.`, extensions: { location: 'body' } }),
              'medium',
              { location: 'body' },
            );
          return deny(
            new Problem(400, 'body-malformed', 'Malformed Request Body', {
              detail: `The body is not valid ${kind.toUpperCase()}: ${e.message}.`,
              extensions: { parser: e.kind, error: e.message },
            }),
            'low',
            { parser: e.kind, error: e.message },
          );
        }
        if (e instanceof BodyLimitError) {
          return bodyRuleProblem(e);
        }
        if (e instanceof UnsupportedCharsetError) return charsetProblem(e.charset, e.message);
        if (e instanceof RangeError) {
          // stack exhaustion or similar in a parser: refuse the body, never crash
          return deny(
            new Problem(400, 'body-malformed', 'Malformed Request Body', {
              detail: `The ${kind} body could not be parsed.`,
              extensions: { parser: kind, error: 'too complex' },
            }),
            'low',
            { parser: kind },
          );
        }
        throw e;
      }
      return undefined;
    }

    function verdictOf(ctx: RequestContext, scan: Scan): Verdict {
      if (scan.hits.length === 0) return undefined;
      const block = cfg.mode === 'block' && scan.blocked;
      if (!block) {
        const action = cfg.mode === 'monitor' ? 'monitor' : 'alert';
        for (const d of scan.hits.slice(0, 10)) {
          ctx.emit({
            control: CONTROL,
            reason: 'injection-detected',
            action,
            severity: 'medium',
            details: {
              detector: d.detector,
              location: d.location,
              snippet: snippetFor(d),
              rule: d.rule,
              paranoia_level: d.paranoia,
              anomaly_score: scan.score,
              threshold: cfg.anomaly_threshold,
            },
          });
        }
        return undefined;
      }
      const first = scan.hits[0] as (typeof scan.hits)[number];
      return deny(
        new Problem(403, 'injection-detected', 'Injection Detected', {
          detail: `The ${first.detector} detector matched ${first.location}.`,
          extensions: {
            detector: first.detector,
            location: first.location,
            detections: scan.hits.map((d) => ({ detector: d.detector, location: d.location })),
          },
        }),
        'high',
        {
          detector: first.detector,
          location: first.location,
          snippet: snippetFor(first),
          rule: first.rule,
          anomaly_score: scan.score,
          threshold: cfg.anomaly_threshold,
          paranoia_level: cfg.paranoia_level,
          detections: scan.hits.map((d) => ({ detector: d.detector, location: d.location, rule: d.rule, snippet: snippetFor(d) })),
        },
      );
    }

    return {
      request: [
        {
          control: CONTROL,
          phase: 'inspection',
          async run(ctx) {
            const scan = engine.scan(routeExclusions(ctx));
            const head = inspectHead(ctx, scan);
            if (head !== undefined) return head;
            if (!(scan.blocked && cfg.mode === 'block')) {
              const body = await inspectBody(ctx, scan);
              if (body !== undefined) return body;
            }
            return verdictOf(ctx, scan);
          },
        },
      ],
    };
  },
});
