/**
 * Grammars of the structured request headers the inspection control may skip. A header named in
 * `skip_headers` is skipped only when its value fits the grammar its specification gives (RFC 9110
 * content negotiation lists with q-values, Cache-Control directives, entity-tags and HTTP-dates; W3C
 * Trace Context; RFC 8941 structured fields for client hints; Fetch Metadata tokens; token-like
 * identifiers and keys); any other value is inspected like an ordinary header. The grammars are a
 * little stricter than the RFCs where these allow characters no browser, SDK or proxy sends in that
 * header (quotes, `$`, `{`, `<`, `|`): a value that needs them is unusual enough to be read.
 *
 * Every pattern is anchored and linear: each repetition starts with a character the previous part
 * cannot end with (`,`, `;`, `-`, `=`), so the backtracking engine has one way to match at every
 * position; element and list lengths are bounded.
 */

/** Optional white space (RFC 9110 §5.6.3). */
const OWS = '[ \\t]*';
/** A comma-separated list of `el`, optional white space around the commas (RFC 9110 §5.6.1 `#el`), at most 64 elements. */
const list = (el: string): RegExp => new RegExp(`^${OWS}${el}(?:${OWS},${OWS}${el}){0,63}${OWS}$`);
/** RFC 9110 §12.4.2 `weight`: `;q=0.8`. */
const WEIGHT = `(?:${OWS};${OWS}[qQ]=(?:0(?:\\.[0-9]{0,3})?|1(?:\\.0{0,3})?))?`;
/** A token without the characters RFC 9110 §5.6.2 allows but negotiation values never carry (quotes, `$`, `|`, backtick). */
const TOKEN = '[A-Za-z0-9!#%&*+._^~-]{1,128}';
/** A quoted-string (RFC 9110 §5.6.4) without quotes, backslashes, angle brackets, `$`, braces, backtick, `;` or `|` inside. */
const QUOTED = '"[A-Za-z0-9 !#%&()*+,./:=?@\\[\\]^_~-]{0,256}"';
/** One media-type parameter (RFC 9110 §5.6.6). */
const PARAM = `${OWS};${OWS}[A-Za-z0-9._+-]{1,64}=(?:${TOKEN}|${QUOTED})`;
/** A media range (RFC 9110 §12.5.1: `type/subtype`, `type/*`, `*\/*`, with parameters; `q` is one of them). */
const MEDIA = `[A-Za-z0-9*._+-]{1,127}/[A-Za-z0-9*._+-]{1,127}(?:${PARAM}){0,8}`;

/** RFC 9110 §12.5.1 Accept. */
const ACCEPT = list(MEDIA);
/** RFC 9110 §12.5.4 Accept-Language: language ranges (RFC 4647 §2.1) with weights. */
const ACCEPT_LANGUAGE = list(`(?:\\*|[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8}){0,7})${WEIGHT}`);
/** RFC 9110 §12.5.3 Accept-Encoding and (obsolete) §12.5.2 Accept-Charset: codings or charsets with weights. */
const ACCEPT_CODING = list(`[A-Za-z0-9*._+-]{1,64}${WEIGHT}`);
/** RFC 9111 §5.2 Cache-Control, §5.4 Pragma: `directive[=token|quoted-string]`. */
const CACHE_CONTROL = list(`[A-Za-z0-9._+-]{1,64}(?:=(?:[A-Za-z0-9._+-]{1,64}|"[A-Za-z0-9 ,._+-]{0,256}"))?`);
/** RFC 9110 §8.8.3 entity-tag characters seen in practice (hex, base64, `-`, `.`, `:`), no quotes, shell or markup. */
const ETAG = '(?:W/)?"[A-Za-z0-9+/=._:~@!#%*^-]{0,256}"';
/** RFC 9110 §13.1.1, §13.1.2 If-Match / If-None-Match: `*` or a list of entity-tags. */
const IF_MATCH = new RegExp(`^${OWS}\\*${OWS}$|${list(ETAG).source}`);
const DAY = '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)';
const MONTH = '(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)';
const TIME = '[0-9]{2}:[0-9]{2}:[0-9]{2}';
/** RFC 9110 §5.6.7 HTTP-date: IMF-fixdate, obsolete RFC 850 and asctime forms. */
const HTTP_DATE = new RegExp(
  `^${OWS}(?:${DAY}, [0-9]{2} ${MONTH} [0-9]{4} ${TIME} GMT|(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day, [0-9]{2}-${MONTH}-[0-9]{2} ${TIME} GMT|${DAY} ${MONTH} [ 0-9][0-9] ${TIME} [0-9]{4})${OWS}$`,
);
/** W3C Trace Context §3.2 traceparent: version, trace-id, parent-id, flags (later versions may append fields). */
const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}(?:-[0-9a-f]{1,64})?$/;
/**
 * W3C Trace Context §3.3 tracestate: `key=value` list members. Keys as specified (`vendor` or
 * `tenant@vendor`); values restricted to what tracers send (`00f067aa0ba902b7`, Datadog's
 * `s:1;o:rum;t.dm:-1`), no quotes, spaces, `$`, braces or angle brackets.
 */
const TRACESTATE = list('[a-z0-9][a-z0-9_*/-]{0,240}(?:@[a-z][a-z0-9_*/-]{0,13})?=[A-Za-z0-9_.:;+/~*!?#%^-]{1,256}');
/**
 * RFC 8941 structured-field lists and items as Client Hints send them (`"Chromium";v="124"`, `?0`,
 * `"Windows"`, `"x86"`): strings restricted to the GREASE brand characters Chromium uses (letters,
 * digits, space, `( ) - . / : ; = ? _`), tokens, booleans, numbers; parameters after `;`.
 */
const SF_ITEM = '(?:"[A-Za-z0-9 ()./:;=?_-]{0,128}"|\\?[01]|-?[0-9]{1,15}(?:\\.[0-9]{1,3})?|[A-Za-z*][A-Za-z0-9_.:/%*+-]{0,63})';
const SF_LIST = list(`${SF_ITEM}(?:;[a-z*][a-z0-9_.*-]{0,63}(?:=${SF_ITEM})?){0,8}`);
/** Fetch Metadata (W3C) `Sec-Fetch-Site`/`-Mode`/`-Dest` tokens and `Sec-Fetch-User: ?1`. */
const SEC_FETCH = /^(?:[a-z][a-z-]{0,31}|\?[01])$/;
/** A request id (UUID, hex, base64/base64url, `req_…`, `svc:123`). */
const REQUEST_ID = /^[A-Za-z0-9._:+/=-]{1,256}$/;
/** An API key or opaque token: token68-like (RFC 9110 §11.2) plus `:` and `_`, no space, quote or markup. */
const API_KEY = /^[A-Za-z0-9._~+/:=-]{1,4096}$/;
/** A JWS compact serialisation (RFC 7515 §7.1): DPoP proofs (RFC 9449). */
const JWS = /^[A-Za-z0-9_-]{1,4096}\.[A-Za-z0-9_-]{0,8192}\.[A-Za-z0-9_-]{0,4096}$/;
/** RFC 9110 §7.2 Host: reg-name or IP literal, optional port. */
const HOST = /^(?:[A-Za-z0-9._~-]{1,255}|\[[0-9A-Fa-f:.]{2,64}\])(?::[0-9]{1,5})?$/;
/** RFC 9110 §8.3 Content-Type: one media type with parameters (a multipart boundary may be quoted). */
const CONTENT_TYPE = new RegExp(`^${OWS}${MEDIA}${OWS}$`);
/** RFC 9112 §6.1 Transfer-Encoding and RFC 9110 §7.6.1 Connection: token lists. */
const TOKEN_LIST = list('[A-Za-z0-9._+-]{1,64}');

/** Header name (lower case) to the grammar its value must fit to be skipped. */
const GRAMMARS: ReadonlyMap<string, RegExp> = new Map([
  ['accept', ACCEPT],
  ['accept-language', ACCEPT_LANGUAGE],
  ['accept-encoding', ACCEPT_CODING],
  ['accept-charset', ACCEPT_CODING],
  ['cache-control', CACHE_CONTROL],
  ['pragma', CACHE_CONTROL],
  ['if-none-match', IF_MATCH],
  ['if-match', IF_MATCH],
  ['if-modified-since', HTTP_DATE],
  ['if-unmodified-since', HTTP_DATE],
  ['traceparent', TRACEPARENT],
  ['tracestate', TRACESTATE],
  ['sec-fetch-site', SEC_FETCH],
  ['sec-fetch-mode', SEC_FETCH],
  ['sec-fetch-dest', SEC_FETCH],
  ['sec-fetch-user', SEC_FETCH],
  ['upgrade-insecure-requests', /^1$/],
  ['x-request-id', REQUEST_ID],
  ['x-correlation-id', REQUEST_ID],
  ['x-api-key', API_KEY],
  ['x-auth-token', API_KEY],
  ['x-access-token', API_KEY],
  ['x-csrf-token', API_KEY],
  ['x-xsrf-token', API_KEY],
  ['dpop', JWS],
  ['host', HOST],
  ['content-length', /^[0-9]{1,20}$/],
  ['content-type', CONTENT_TYPE],
  ['transfer-encoding', TOKEN_LIST],
  ['connection', TOKEN_LIST],
]);

/** An empty value or an empty quoted string (`""`, Chrome's `Sec-CH-UA-Model` on desktop): nothing to inspect. */
const EMPTY = /^[ \t]*(?:""[ \t]*)?$/;

/**
 * Whether a header is a client hint: `Sec-CH-*` (RFC 8942, WICG User-Agent Client Hints, Media
 * Feature Client Hints: `sec-ch-ua-model`, `sec-ch-ua-full-version-list`,
 * `sec-ch-prefers-color-scheme`, ...). Browsers send the high-entropy ones after `Accept-CH`, all
 * as RFC 8941 structured fields, so every one is skipped when its value fits {@link SF_LIST},
 * whether or not `skip_headers` names it.
 * @param name lower-case header name.
 */
export function isClientHint(name: string): boolean {
  return name.length > 7 && name.startsWith('sec-ch-');
}

/**
 * Whether a skip-listed header's value may go uninspected: it fits the grammar of its header
 * (client hints, {@link isClientHint}, share the RFC 8941 structured-field grammar), or it is
 * empty or the empty quoted string `""` (no grammar's content, and no payload). Headers without a
 * known grammar (an operator's own additions to `skip_headers`) are the operator's decision: skipped.
 * @param name lower-case header name.
 * @param value the value as received (latin1 code units).
 */
export function fitsHeaderGrammar(name: string, value: string): boolean {
  if (value.length > 8192) return false;
  const g = GRAMMARS.get(name) ?? (isClientHint(name) ? SF_LIST : undefined);
  return g === undefined || g.test(value) || EMPTY.test(value);
}

/** Header names {@link fitsHeaderGrammar} knows a grammar for (besides every `sec-ch-*`). */
export const GRAMMAR_HEADERS: readonly string[] = [...GRAMMARS.keys()];
