/**
 * Body parsers for inspection. Each walks a body once and hands every name and string leaf to a
 * visitor together with its location, enforcing structural limits as it goes (OWASP API Security
 * Top 10 2023 API4; OWASP Mass Assignment and XXE Prevention Cheat Sheets).
 *
 * - JSON (RFC 8259): our own single-pass parser, so that duplicate member names (RFC 8259 §4 leaves
 *   their meaning undefined), depth, member counts, array lengths, string lengths and number
 *   magnitudes are checked before anything is materialised, and prototype-pollution names
 *   (`__proto__`, `constructor`, `prototype`) are refused.
 * - XML: fast-xml-parser, with any DOCTYPE or ENTITY declaration refused first (XXE, billion laughs).
 * - application/x-www-form-urlencoded (WHATWG URL §5.1) and multipart/form-data (RFC 7578, our own
 *   parser: fields and files decided as backends decide them, ambiguous parts refused).
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { CLASS, NORM } from './engine.ts';
import { percentDecode } from './normalize.ts';

/** A location path: JSON Pointer-like segments from the body root (RFC 6901 escaping applied on output). */
export type PathStack = (string | number)[];

/**
 * Receives each name (`isName` true: member names, parameter names, element and attribute names)
 * and each string value. Returning `true` stops the walk (enough evidence to block). `classes`, when
 * given and not negative, is the engine's character-class mask of `value` ({@link CLASS}), computed
 * by the parser while it validated the string.
 */
export type Visitor = (value: string, isName: boolean, path: PathStack, classes?: number) => boolean | undefined;

/** A body that does not parse under its declared content type: 400, naming the parser error. */
export class BodyParseError extends Error {
  readonly kind: string;
  /** @param kind `json`, `xml`, `form`, `multipart` or `utf-8`. */
  constructor(kind: string, message: string) {
    super(message);
    this.name = 'BodyParseError';
    this.kind = kind;
  }
}

/** A body that parses but breaks a structural limit or rule (`code` is the problem reason code). */
export class BodyLimitError extends Error {
  readonly code: string;
  readonly limit: string;
  constructor(code: string, limit: string, message: string) {
    super(message);
    this.name = 'BodyLimitError';
    this.code = code;
    this.limit = limit;
  }
}

/**
 * A declared charset under which the gateway's reading and a raw-byte reading disagree on ASCII
 * (Werkzeug, PHP and Go ignore the charset of form, multipart and text bodies and read the bytes):
 * 415 `unsupported-charset`.
 */
export class UnsupportedCharsetError extends Error {
  /** The declared charset label (lower case, at most 40 characters). */
  readonly charset: string;
  constructor(charset: string, where: string) {
    const c = charset.slice(0, 40);
    super(`The charset "${c}" of ${where} is not ASCII-compatible or not known; it cannot be read one way only.`);
    this.name = 'UnsupportedCharsetError';
    this.charset = c;
  }
}

/**
 * WHATWG encodings (Encoding Standard §4.2 names) in which bytes 0x00-0x7F do not always stand for
 * the ASCII characters: UTF-16 (two bytes a character: `' or 1=1--` read as UTF-16LE is CJK
 * text), ISO-2022-JP (escape sequences switch ASCII bytes to JIS X 0208) and the `replacement`
 * decoder (ISO-2022-KR, HZ-GB-2312, ISO-2022-CN: the whole body becomes one U+FFFD).
 */
const ASCII_INCOMPATIBLE = new Set(['utf-16le', 'utf-16be', 'iso-2022-jp', 'replacement']);

/**
 * How a declared charset relates to the raw bytes a backend that ignores it reads:
 * - `utf-8`: none declared, or UTF-8/US-ASCII (one reading);
 * - `ascii-compatible`: a WHATWG encoding (Encoding Standard) that reads bytes 0x00-0x7F as
 *   ASCII — single-byte Latin/Cyrillic/IBM866 and the CJK multi-byte encodings (whose trail bytes
 *   may still swallow an ASCII byte, so the raw reading is inspected too);
 * - `incompatible`: {@link ASCII_INCOMPATIBLE} or a label the decoder does not know (UTF-32,
 *   UTF-7, EBCDIC `cp037`/`ibm037`, `x-unknown`): fail closed.
 * @param charset the lower-cased `charset` parameter, or `undefined`.
 */
export function charsetReading(charset: string | undefined): 'utf-8' | 'ascii-compatible' | 'incompatible' {
  if (charset === undefined || charset === 'utf-8' || charset === 'utf8' || charset === 'us-ascii') return 'utf-8';
  let enc: string;
  try {
    enc = new TextDecoder(charset).encoding;
  } catch {
    return 'incompatible';
  }
  if (enc === 'utf-8') return 'utf-8';
  return ASCII_INCOMPATIBLE.has(enc) ? 'incompatible' : 'ascii-compatible';
}

/**
 * The readings of textual bytes declared in `charset` (after {@link charsetReading} said it is not
 * `incompatible`): the declared decoding first, then the raw-byte reading as UTF-8 (lenient) when
 * it differs, as Werkzeug, PHP and Go read it. A leading BOM is dropped from each.
 */
export function textReadings(bytes: Buffer, charset: string | undefined): string[] {
  const raw = stripBom(lenientUtf8.decode(bytes));
  if (charsetReading(charset) === 'utf-8') return [raw];
  const declared = stripBom(new TextDecoder(charset).decode(bytes));
  return declared === raw ? [declared] : [declared, raw];
}

function stripBom(t: string): string {
  return t.charCodeAt(0) === 0xfeff ? t.slice(1) : t;
}

/** Structural limits of JSON bodies. */
export interface JsonLimits {
  maxDepth: number;
  /** Members per object. */
  maxKeys: number;
  /** Elements per array. */
  maxArray: number;
  /** UTF-16 code units per string (names and values). */
  maxString: number;
  /** Largest absolute value of a number literal (`Infinity`: no magnitude limit). */
  maxNumber: number;
  /** Digits of a number literal's mantissa, integer and fraction parts together (a 64-bit integer has up to 20). */
  maxNumberDigits: number;
  /** Largest absolute exponent written in a number literal (`e±N`; 308 is the IEEE 754 binary64 range). */
  maxNumberExponent: number;
  duplicateKeys: 'reject' | 'allow';
  /** Member names refused anywhere (prototype pollution). */
  forbiddenKeys: ReadonlySet<string>;
}

const WS = new Uint8Array(128);
WS[32] = 1;
WS[9] = 1;
WS[10] = 1;
WS[13] = 1;

/**
 * Per ASCII code unit inside a JSON string: the engine's character classes ({@link CLASS}), or -1
 * for the code units that end the fast scan (`"`, `\`, control characters).
 */
const STR_CLASS = new Int32Array(128);
for (let c = 0; c < 128; c++) STR_CLASS[c] = c < 32 || c === 34 || c === 92 ? -1 : (CLASS[c] as number);

// Results of `scanString` (module state instead of an allocated pair: one string at a time).
let strEnd = 0;
let strMask = 0;

const lenientUtf8 = new TextDecoder('utf-8');
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function jsonFail(what: string, at: number): never {
  throw new BodyParseError('json', `${what} at offset ${at}`);
}

/**
 * Reads the JSON string whose opening quote is at `open`. Sets `strEnd` to the offset after the
 * closing quote and `strMask` to the engine's character classes of the result, or -1 when escapes
 * were decoded (the engine then computes them).
 */
function scanString(text: string, open: number, maxString: number): string {
  const n = text.length;
  const start = open + 1;
  let j = start;
  let m = 0;
  // fast path, no escapes: one table look-up per code unit both validates and classifies it
  for (;;) {
    if (j >= n) jsonFail('unterminated string', j);
    const c = text.charCodeAt(j);
    if (c < 128) {
      const t = STR_CLASS[c] as number;
      if (t < 0) break;
      m |= t;
    } else m |= NORM;
    j++;
  }
  if (text.charCodeAt(j) === 34) {
    if (j - start > maxString)
      throw new BodyLimitError('json-limit-exceeded', 'max_string', `A JSON string exceeds ${maxString} characters at offset ${start}.`);
    strEnd = j + 1;
    strMask = m;
    return text.slice(start, j);
  }
  // escapes (or a control character): decode segment by segment
  let out = '';
  let seg = start;
  for (;;) {
    if (j >= n) jsonFail('unterminated string', j);
    const c = text.charCodeAt(j);
    if (c === 34) break;
    if (c < 32) jsonFail('control character in string', j);
    if (c === 92) {
      out += text.slice(seg, j);
      const e = text.charCodeAt(j + 1);
      switch (e) {
        case 34:
          out += '"';
          break;
        case 92:
          out += '\\';
          break;
        case 47:
          out += '/';
          break;
        case 98:
          out += '\b';
          break;
        case 102:
          out += '\f';
          break;
        case 110:
          out += '\n';
          break;
        case 114:
          out += '\r';
          break;
        case 116:
          out += '\t';
          break;
        case 117: {
          const h = text.slice(j + 2, j + 6);
          if (!/^[0-9a-fA-F]{4}$/.test(h)) jsonFail('invalid \\u escape', j);
          out += String.fromCharCode(Number.parseInt(h, 16));
          j += 4;
          break;
        }
        default:
          jsonFail('invalid escape', j);
      }
      j += 2;
      seg = j;
      if (j - start > maxString) break;
      continue;
    }
    j++;
  }
  if (j - start > maxString) throw new BodyLimitError('json-limit-exceeded', 'max_string', `A JSON string exceeds ${maxString} characters at offset ${start}.`);
  strEnd = j + 1;
  strMask = -1;
  return out + text.slice(seg, j);
}

/** Reads the number literal at `start`, checks it against the limits and returns the offset after it. */
function scanNumber(text: string, start: number, limits: JsonLimits): number {
  const n = text.length;
  let i = start;
  let c: number;
  if (text.charCodeAt(i) === 45) i++;
  const intStart = i;
  const d0 = text.charCodeAt(i);
  if (d0 === 48) i++;
  else if (d0 >= 49 && d0 <= 57) while (i < n && (c = text.charCodeAt(i)) >= 48 && c <= 57) i++;
  else jsonFail('invalid number', i);
  let digits = i - intStart;
  if (text.charCodeAt(i) === 46) {
    i++;
    const f = i;
    while (i < n && (c = text.charCodeAt(i)) >= 48 && c <= 57) i++;
    if (i === f) jsonFail('invalid number', i);
    digits += i - f;
  }
  const e = text.charCodeAt(i);
  let exp = 0;
  const hasExp = e === 101 || e === 69;
  if (hasExp) {
    i++;
    const sign = text.charCodeAt(i);
    if (sign === 45 || sign === 43) i++;
    const f = i;
    while (i < n && (c = text.charCodeAt(i)) >= 48 && c <= 57) i++;
    if (i === f) jsonFail('invalid number', i);
    // more than 6 digits is out of any range: do not parse it
    exp = i - f > 6 ? Number.POSITIVE_INFINITY : Number(text.slice(f, i));
  }
  if (digits > limits.maxNumberDigits)
    throw new BodyLimitError(
      'json-number-out-of-range',
      'max_number_digits',
      `A JSON number has more than ${limits.maxNumberDigits} digits at offset ${start}.`,
    );
  if (exp > limits.maxNumberExponent)
    throw new BodyLimitError(
      'json-number-out-of-range',
      'max_number_exponent',
      `A JSON number's exponent exceeds ${limits.maxNumberExponent} in magnitude at offset ${start}.`,
    );
  // without an exponent, 308 digits or fewer are below 1e308, finite: with no magnitude limit (the
  // default) there is nothing left to check and the literal need not be converted
  if (!hasExp && digits <= 308 && limits.maxNumber === Number.POSITIVE_INFINITY) return i;
  const v = Math.abs(Number(text.slice(start, i)));
  if (!Number.isFinite(v))
    throw new BodyLimitError('json-number-out-of-range', 'finite', `A JSON number is not finite as a 64-bit float (RFC 8259 §6) at offset ${start}.`);
  if (!(v <= limits.maxNumber))
    throw new BodyLimitError('json-limit-exceeded', 'max_number', `A JSON number exceeds ${limits.maxNumber} in magnitude at offset ${start}.`);
  return i;
}

/**
 * Parses `text` as JSON (RFC 8259), calling `visit` for every member name and string value (with
 * the value's character classes when it had no escapes). Number, boolean and null leaves are
 * checked but not visited. One loop with an explicit stack of open containers (depth is bounded
 * by `limits.maxDepth`); linear in the length of `text`.
 * @throws {BodyParseError} on malformed JSON (message names the offset).
 * @throws {BodyLimitError} on a limit breach, duplicate or forbidden member name.
 */
export function walkJson(text: string, limits: JsonLimits, visit: Visitor): void {
  const n = text.length;
  const { maxDepth, maxKeys, maxArray, maxString, forbiddenKeys } = limits;
  const rejectDuplicates = limits.duplicateKeys === 'reject';
  // lengths and first code units (both mod 32) of the forbidden names: a name matching neither
  // cannot be one of them and is not hashed for the set look-up
  let forbiddenLengths = 0;
  let forbiddenFirsts = 0;
  for (const k of forbiddenKeys) {
    forbiddenLengths |= 1 << (k.length & 31);
    forbiddenFirsts |= 1 << (k.charCodeAt(0) & 31);
  }
  const path: PathStack = [];
  // per open container (index depth - 1): object or array, members or elements so far, and for objects
  // the first 16 names and their character classes (duplicate check: a linear scan over these, as
  // objects are small, a Set beyond)
  const isObject: boolean[] = [];
  const count: number[] = [];
  const firstKeys: string[][] = [];
  const firstMasks: number[][] = [];
  const seen: (Set<string> | undefined)[] = [];
  let depth = 0;
  let i = 0;
  let c = 0;
  for (;;) {
    // a value at i (for an object member: its name and ':' have been read)
    c = text.charCodeAt(i);
    if (c <= 32) {
      while (i < n && (c = text.charCodeAt(i)) < 128 && WS[c] === 1) i++;
      c = text.charCodeAt(i);
    }
    if (c === 34) {
      const s = scanString(text, i, maxString);
      i = strEnd;
      if (visit(s, false, path, strMask) === true) return;
    } else if (c === 123 || c === 91) {
      if (depth >= maxDepth) throw new BodyLimitError('json-limit-exceeded', 'max_depth', `JSON nesting exceeds depth ${maxDepth}.`);
      const object = c === 123;
      i++;
      c = text.charCodeAt(i);
      if (c <= 32) {
        while (i < n && (c = text.charCodeAt(i)) < 128 && WS[c] === 1) i++;
        c = text.charCodeAt(i);
      }
      if (c === (object ? 125 : 93))
        i++; // empty: a complete value
      else {
        isObject[depth] = object;
        count[depth] = 0;
        if (object) {
          if (firstKeys[depth] === undefined) {
            firstKeys[depth] = [];
            firstMasks[depth] = [];
          }
          seen[depth] = undefined;
        }
        depth++;
        if (object) {
          i = member(i, depth - 1);
          if (i < 0) return;
        } else {
          if (0 >= maxArray) throw new BodyLimitError('json-limit-exceeded', 'max_array', `A JSON array has more than ${maxArray} elements.`);
          path.push(0);
        }
        continue;
      }
    } else if (c === 116) i = literal(text, i, 'true');
    else if (c === 102) i = literal(text, i, 'false');
    else if (c === 110) i = literal(text, i, 'null');
    else if (c === 45 || (c >= 48 && c <= 57)) i = scanNumber(text, i, limits);
    else jsonFail(i >= n ? 'unexpected end of input' : 'unexpected character', i);
    // a value is complete: continue or close the containers it ends
    for (;;) {
      if (depth === 0) {
        while (i < n && (c = text.charCodeAt(i)) < 128 && WS[c] === 1) i++;
        if (i < n) jsonFail('unexpected data after the JSON value', i);
        return;
      }
      const d = depth - 1;
      path.pop();
      c = text.charCodeAt(i);
      if (c <= 32) {
        while (i < n && (c = text.charCodeAt(i)) < 128 && WS[c] === 1) i++;
        c = text.charCodeAt(i);
      }
      if (isObject[d] === true) {
        if (c === 44) {
          i = member(i + 1, d);
          if (i < 0) return;
          break;
        }
        if (c !== 125) jsonFail("expected ',' or '}'", i);
      } else {
        const idx = (count[d] as number) + 1;
        count[d] = idx;
        if (c === 44) {
          i++;
          if (idx >= maxArray) throw new BodyLimitError('json-limit-exceeded', 'max_array', `A JSON array has more than ${maxArray} elements.`);
          path.push(idx);
          break;
        }
        if (c !== 93) jsonFail("expected ',' or ']'", i);
      }
      i++;
      depth--;
    }
  }

  /** Reads a member name and its `:` from `at` for the object open at index `d`; -1 when the visitor stops the walk. */
  function member(at: number, d: number): number {
    let j = at;
    let w = text.charCodeAt(j);
    if (w <= 32) while (j < n && (w = text.charCodeAt(j)) < 128 && WS[w] === 1) j++;
    if (text.charCodeAt(j) !== 34) jsonFail('expected member name', j);
    const prior = count[d] as number;
    const keys = firstKeys[d] as string[];
    const masks = firstMasks[d] as number[];
    let key: string;
    let keyMask: number;
    // the name at this position in the previous object at this depth (arrays of records repeat their
    // names): when the text holds it again, unescaped and closed, it is taken without a second scan
    const cached = prior < 16 ? keys[prior] : undefined;
    if (cached !== undefined && (masks[prior] as number) >= 0 && text.charCodeAt(j + 1 + cached.length) === 34 && text.startsWith(cached, j + 1)) {
      key = cached;
      keyMask = masks[prior] as number;
      j += cached.length + 2;
    } else {
      key = scanString(text, j, maxString);
      keyMask = strMask;
      j = strEnd;
    }
    const k = prior + 1;
    count[d] = k;
    if (k > maxKeys) throw new BodyLimitError('json-limit-exceeded', 'max_keys', `A JSON object has more than ${maxKeys} members.`);
    if (((forbiddenLengths >>> (key.length & 31)) & 1) === 1 && ((forbiddenFirsts >>> (key.charCodeAt(0) & 31)) & 1) === 1 && forbiddenKeys.has(key))
      throw new BodyLimitError('prototype-pollution', 'forbidden_keys', `The member name "${key}" is not allowed (prototype pollution).`);
    if (rejectDuplicates) {
      let dup = false;
      const set = seen[d];
      if (set === undefined) {
        // a linear scan over the first 16 names (entries from `prior` on are a previous object's)
        const len = key.length;
        for (let x = 0; x < prior; x++) {
          const other = keys[x] as string;
          if (other.length === len && other === key) {
            dup = true;
            break;
          }
        }
        if (prior >= 16) {
          const s = new Set(keys.slice(0, 16));
          s.add(key);
          seen[d] = s;
        }
      } else {
        dup = set.has(key);
        set.add(key);
      }
      if (dup) throw new BodyLimitError('duplicate-key', 'duplicate_keys', `The member name "${key.slice(0, 64)}" appears twice in one object.`);
    }
    if (prior < 16) {
      keys[prior] = key;
      masks[prior] = keyMask;
    }
    path.push(key);
    if (visit(key, true, path, keyMask) === true) return -1;
    if (text.charCodeAt(j) <= 32) while (j < n && (w = text.charCodeAt(j)) < 128 && WS[w] === 1) j++;
    if (text.charCodeAt(j) !== 58) jsonFail("expected ':'", j);
    return j + 1;
  }
}

function literal(text: string, at: number, word: string): number {
  if (!text.startsWith(word, at)) jsonFail('unexpected token', at);
  return at + word.length;
}

/** Structural limits of XML bodies. */
export interface XmlLimits {
  maxDepth: number;
  maxString: number;
}

const DTD = /<!\s*(?:doctype|entity|element|attlist)/i;

/** Characters of joined text content gathered per XML element for inspection (see {@link walkXml}). */
export const XML_JOIN_CAP = 8192;

/** Appends `t` to an element's joined text up to {@link XML_JOIN_CAP}; reaching the cap marks it full. */
function join(f: { joined: string; full: boolean }, t: string): void {
  const room = XML_JOIN_CAP - f.joined.length;
  if (t.length < room) f.joined += t;
  else {
    f.joined += t.slice(0, room);
    f.full = true;
  }
}

/**
 * Parses `text` as XML, refusing DTDs first, and visits element/attribute names, attribute values
 * and text nodes, and each element's joined text content (capped, never refused for its length).
 * Locations are `/root/child/@attr` paths (element names, not positions).
 * @throws {BodyLimitError} `xml-dtd-refused` (XXE, entity expansion) or `xml-limit-exceeded`
 *   (nesting past `maxDepth`, one text node past `maxString`).
 * @throws {BodyParseError} on malformed XML (message from the validator, with line and column).
 */
export function walkXml(text: string, limits: XmlLimits, visit: Visitor): void {
  if (DTD.test(text))
    throw new BodyLimitError('xml-dtd-refused', 'doctype', 'XML document type declarations and entity declarations are not accepted (XXE, entity expansion).');
  const v = XMLValidator.validate(text, { allowBooleanAttributes: true });
  if (v !== true) throw new BodyParseError('xml', `${v.err.msg} (line ${v.err.line}, column ${v.err.col})`);
  let doc: unknown;
  try {
    const parser = new XMLParser({
      preserveOrder: true,
      ignoreAttributes: false,
      attributeNamePrefix: '@',
      allowBooleanAttributes: true,
      parseTagValue: false,
      parseAttributeValue: false,
      processEntities: false,
      htmlEntities: false,
      trimValues: false,
      maxNestedTags: limits.maxDepth,
    });
    doc = parser.parse(text);
  } catch (e) {
    const msg = (e as Error).message;
    if (/nest/i.test(msg)) throw new BodyLimitError('xml-limit-exceeded', 'max_depth', `XML nesting exceeds depth ${limits.maxDepth}.`);
    throw new BodyParseError('xml', msg);
  }
  // iterative walk over preserveOrder nodes: [{ tag: [children], ':@': { '@a': 'v' } }, { '#text': 't' }].
  // Each open element also gathers its joined text content (DOM `textContent`: its text nodes and
  // CDATA sections, and its child elements' text, in document order, comments and processing
  // instructions dropped), which is inspected when it is made of two or more non-blank pieces: a
  // payload split by `<![CDATA[`, `<?x?>` or a child element is seen whole, as the backend's DOM
  // sees it. The joined text is an inspection aid, not a limit: at most XML_JOIN_CAP characters
  // are gathered per element; once an element's cap is reached it stops joining, and so do its
  // ancestors (what was gathered is inspected). Each element copies at most the cap, so the work
  // is at most min(`maxDepth` × text length, elements × cap).
  type Frame = { nodes: unknown[]; idx: number; depth: number; pathLen: number; joined: string; pieces: number; full: boolean };
  const stack: Frame[] = [{ nodes: doc as unknown[], idx: 0, depth: 0, pathLen: 0, joined: '', pieces: 0, full: false }];
  const path: PathStack = [];
  while (stack.length > 0) {
    const top = stack[stack.length - 1] as Frame;
    if (top.idx >= top.nodes.length) {
      stack.pop();
      if (stack.length > 0) {
        const parent = stack[stack.length - 1] as Frame;
        if (top.pieces > 1) {
          path.length = top.pathLen;
          if (visit(top.joined, false, path) === true) return;
        }
        // a child counts as one piece: a parent holding only it has the same text, not inspected twice
        if (parent.depth > 0) {
          if (!parent.full) {
            join(parent, top.joined);
            if (top.full) parent.full = true;
          }
          if (top.pieces > 0) parent.pieces++;
        }
        path.length = parent.pathLen;
      } else path.length = 0;
      continue;
    }
    const node = top.nodes[top.idx++] as Record<string, unknown>;
    path.length = top.pathLen;
    for (const k of Object.keys(node)) {
      const val = node[k];
      if (k === '#text') {
        const t = String(val);
        if (t.length > limits.maxString)
          throw new BodyLimitError('xml-limit-exceeded', 'max_string', `An XML text node exceeds ${limits.maxString} characters.`);
        if (top.depth > 0 && !top.full) join(top, t);
        if (t.trim() !== '') {
          top.pieces++;
          if (visit(t, false, path) === true) return;
        }
      } else if (k === ':@') {
        for (const [a, av] of Object.entries(val as Record<string, unknown>)) {
          path.push(a);
          if (visit(a.slice(1), true, path) === true) return;
          if (typeof av === 'string' && visit(av, false, path) === true) return;
          path.pop();
        }
      } else if (k.startsWith('?')) {
      } else if (Array.isArray(val)) {
        if (top.depth + 1 > limits.maxDepth) throw new BodyLimitError('xml-limit-exceeded', 'max_depth', `XML nesting exceeds depth ${limits.maxDepth}.`);
        path.push(k);
        if (visit(k, true, path) === true) return;
        const attrs = node[':@'] as Record<string, unknown> | undefined;
        if (attrs) {
          for (const [a, av] of Object.entries(attrs)) {
            path.push(a);
            if (visit(a.slice(1), true, path) === true) return;
            if (typeof av === 'string' && visit(av, false, path) === true) return;
            path.pop();
          }
        }
        stack.push({ nodes: val, idx: 0, depth: top.depth + 1, pathLen: path.length, joined: '', pieces: 0, full: false });
        break;
      }
    }
  }
}

/** Limits of form bodies (urlencoded and multipart). */
export interface FormLimits {
  maxFields: number;
  maxFiles: number;
  /** Bytes per field value. */
  maxFieldBytes: number;
  /** Bytes per uploaded file. */
  maxFileBytes: number;
}

/** Name rules of query strings and form bodies (urlencoded and multipart field names). */
export interface NameRules {
  /**
   * Names refused as any segment of a parameter name split at `[`, `]` and `.` (`__proto__[x]`,
   * `a[constructor][prototype]`, `__proto__.x`): the prototype-pollution names the JSON parser refuses.
   */
  forbiddenKeys?: ReadonlySet<string>;
  /**
   * The request's method when `_method` overrides are refused: a `_method` parameter (any case)
   * whose value is a method name other than this one is refused. Absent: overrides allowed.
   */
  method?: string;
}

/**
 * Checks a decoded parameter name against the prototype-pollution names: qs, jQuery-param and
 * similar decoders build nested objects from `a[b][c]` and `a.b.c`, so `__proto__[isAdmin]=1`
 * reaches `Object.prototype` (CWE-1321) in the backend unless refused here.
 * @throws {BodyLimitError} `prototype-pollution`.
 */
export function checkParamName(name: string, forbidden: ReadonlySet<string> | undefined): void {
  if (forbidden === undefined || forbidden.size === 0) return;
  for (const k of forbidden) {
    if (name.indexOf(k) === -1) continue;
    for (const seg of name.split(/[[\].]/))
      if (forbidden.has(seg))
        throw new BodyLimitError('prototype-pollution', 'forbidden_keys', `The parameter name "${name.slice(0, 64)}" is not allowed (prototype pollution).`);
    return;
  }
}

/**
 * A method name as `_method` carries it: 3 to 10 letters, any case (CRS 920650's `^[a-z]{3,10}$`;
 * every method Symfony, Laravel and Rack accept there fits, from GET to PROPPATCH).
 */
const METHOD_NAME = /^[A-Za-z]{3,10}$/;

/**
 * Refuses a `_method` parameter (name compared case-insensitively) whose value names another HTTP
 * method than the request's: Laravel, Symfony (`http_method_parameter_override`), Rails
 * (Rack::MethodOverride) and express method-override run the named method, which the gateway
 * never authorised (OWASP API5 Broken Function Level Authorization).
 * @throws {BodyLimitError} `method-override-refused`.
 */
export function checkMethodOverride(name: string, value: string, method: string | undefined): void {
  if (method === undefined || name.length !== 7 || name.toLowerCase() !== '_method') return;
  const v = value.trim();
  if (METHOD_NAME.test(v) && v.toUpperCase() !== method.toUpperCase())
    throw new BodyLimitError(
      'method-override-refused',
      'allow_method_override',
      `The parameter "${name}" asks for method ${v.toUpperCase()} on a ${method.toUpperCase()} request.`,
    );
}

/**
 * Walks an application/x-www-form-urlencoded body or query string: names and values, each
 * percent-decoded once (`+` is a space).
 * @param strict reject malformed UTF-8 after percent-decoding (overlong forms included).
 * @param rules prototype-pollution names and `_method` overrides to refuse ({@link NameRules}).
 * @throws {BodyParseError} kind `utf-8` on malformed UTF-8 (strict only).
 * @throws {BodyLimitError} `form-limit-exceeded` when there are more than `maxFields` pairs;
 *   `prototype-pollution` or `method-override-refused` under `rules`.
 */
export function walkUrlEncoded(
  text: string,
  maxFields: number,
  maxValueBytes: number,
  strict: boolean,
  visit: Visitor,
  pathPrefix: PathStack = [],
  rules: NameRules = {},
): void {
  if (text.length === 0) return;
  let start = 0;
  let count = 0;
  const path: PathStack = [...pathPrefix, ''];
  const last = path.length - 1;
  while (start <= text.length) {
    let end = text.indexOf('&', start);
    if (end === -1) end = text.length;
    if (end > start) {
      if (++count > maxFields) throw new BodyLimitError('form-limit-exceeded', 'max_fields', `More than ${maxFields} parameters.`);
      const eq = text.indexOf('=', start);
      const hasEq = eq !== -1 && eq < end;
      const rawName = text.slice(start, hasEq ? eq : end);
      const rawValue = hasEq ? text.slice(eq + 1, end) : '';
      if (rawValue.length > maxValueBytes)
        throw new BodyLimitError('form-limit-exceeded', 'max_value_bytes', `A parameter value exceeds ${maxValueBytes} bytes.`);
      const name = percentDecode(rawName, true, strict);
      const value = percentDecode(rawValue, true, strict);
      if (name === null || value === null) throw new BodyParseError('utf-8', `malformed UTF-8 in percent-encoded parameter ${count}`);
      checkParamName(name, rules.forbiddenKeys);
      checkMethodOverride(name, value, rules.method);
      path[last] = name;
      if (visit(name, true, path) === true) return;
      if (value !== '' && visit(value, false, path) === true) return;
    }
    start = end + 1;
  }
}

/** A parsed media type (RFC 9110 §8.3.1): lower-cased type/subtype and parameters. */
export interface MediaType {
  /** `type/subtype`, lower-cased, without parameters (`''` when absent). */
  type: string;
  /** Parameters by lower-cased name; quoted-string values unquoted. */
  params: Map<string, string>;
  /** The first parameter name that appears twice (`boundary=A; boundary=B`): the value is ambiguous. */
  duplicate?: string;
}

/**
 * Parses a media type with its parameters (RFC 9110 §5.6.6 `parameters`: token `=` token or
 * quoted-string). Lenient about white space and malformed parameters (skipped), strict about
 * repetition: a parameter named twice is reported in `duplicate`, since parsers disagree on which
 * one counts (busboy took the first boundary, Werkzeug takes the last).
 */
export function parseMediaType(value: string): MediaType {
  const semi = value.indexOf(';');
  const type = (semi === -1 ? value : value.slice(0, semi)).trim().toLowerCase();
  const params = new Map<string, string>();
  const out: MediaType = { type, params };
  if (semi === -1) return out;
  const n = value.length;
  let i = semi;
  while (i < n) {
    // at a ';'
    i++;
    while (i < n && (value[i] === ' ' || value[i] === '\t')) i++;
    let j = i;
    while (j < n && value[j] !== '=' && value[j] !== ';') j++;
    const name = value.slice(i, j).trim().toLowerCase();
    if (j >= n || value[j] === ';') {
      i = j;
      continue;
    }
    j++;
    while (j < n && (value[j] === ' ' || value[j] === '\t')) j++;
    let v = '';
    if (value[j] === '"') {
      j++;
      while (j < n && value[j] !== '"') {
        if (value[j] === '\\' && j + 1 < n) j++;
        v += value[j];
        j++;
      }
      j++;
      while (j < n && value[j] !== ';') j++;
    } else {
      const e = value.indexOf(';', j);
      const end = e === -1 ? n : e;
      v = value.slice(j, end).trim();
      j = end;
    }
    if (name !== '') {
      if (params.has(name) && out.duplicate === undefined) out.duplicate = name;
      params.set(name, v);
    }
    i = j;
  }
  return out;
}

/** Limits and rules of multipart bodies, and the parsers' limits for textual file contents. */
export interface MultipartOptions extends FormLimits, NameRules {
  json: JsonLimits;
  xml: XmlLimits;
  /**
   * The body is `multipart/form-data` (default). Any other `multipart/*` (mixed, related,
   * alternative: Tomcat and Spring read them as forms too, OData and Google batches carry requests
   * in them) also has parts without a field name, which are inspected as entities at `/<part
   * index>` and counted against `maxFields` and `maxFileBytes`.
   */
  formData?: boolean;
}

/** Content-Transfer-Encoding values that leave the part's bytes as they are (RFC 2045 §6.1, RFC 7578 §4.7). */
const IDENTITY_CTE = new Set(['7bit', '8bit', 'binary']);

/** A part of a multipart body whose headers cannot be read one way only. */
function ambiguous(message: string): BodyLimitError {
  return new BodyLimitError('multipart-part-ambiguous', 'part_headers', message);
}

const CRLFCRLF = Buffer.from('\r\n\r\n');
/** Bytes of one part's header block. */
const MAX_PART_HEADER_BYTES = 16 * 1024;

/**
 * Parses the parameters of a part's `Content-Disposition` (RFC 7578 §4.2, RFC 6266 §4.1):
 * `form-data; name="q"; filename="a.txt"`. Quoted strings take `\` escapes; `name*`/`filename*`
 * (RFC 8187 `charset'lang'pct-encoded`) are decoded.
 * @throws {BodyLimitError} `multipart-part-ambiguous` on a parameter named twice.
 * @throws {BodyParseError} on a malformed parameter list.
 */
function parseDisposition(v: string): Map<string, string> {
  const m = parseMediaType(v);
  if (m.duplicate !== undefined) throw ambiguous(`A multipart part's Content-Disposition names "${m.duplicate}" twice.`);
  for (const [k, val] of m.params) {
    if (!k.endsWith('*')) continue;
    const q1 = val.indexOf("'");
    const q2 = q1 === -1 ? -1 : val.indexOf("'", q1 + 1);
    if (q2 === -1) throw new BodyParseError('multipart', `malformed ${k} parameter`);
    m.params.set(k, percentDecode(val.slice(q2 + 1), false) ?? val);
  }
  return m.params;
}

/** Media types whose contents are text a backend may parse or render. */
function textualType(mt: string): boolean {
  return (
    mt.startsWith('text/') ||
    mt === 'application/json' ||
    mt.endsWith('+json') ||
    mt === 'application/xml' ||
    mt.endsWith('+xml') ||
    mt === 'application/x-www-form-urlencoded' ||
    mt === 'application/javascript' ||
    mt === 'application/x-sh' ||
    mt === 'application/sql' ||
    mt === 'application/graphql'
  );
}

/** Whether `buf` looks like text: no NUL or C0 control bytes but TAB, LF, FF, CR and ESC in its first 4 KB. */
function sniffText(buf: Buffer): boolean {
  const n = Math.min(buf.length, 4096);
  for (let i = 0; i < n; i++) {
    const c = buf[i] as number;
    if (c < 32 && c !== 9 && c !== 10 && c !== 12 && c !== 13 && c !== 27) return false;
  }
  return true;
}

/**
 * Inspects an uploaded file's contents when they are text: declared textual ({@link textualType})
 * or, whatever the declared type, valid UTF-8 without control bytes. JSON (declared, or starting
 * with `{`/`[`) and XML (declared) are walked with the body parsers under `path`; markup a browser
 * renders (SVG, XHTML, HTML) and anything else textual is one text leaf at `path`. A textual file
 * that does not parse is one text leaf too (an upload is not refused for its syntax), but
 * prototype-pollution names in a JSON file are. Binary contents are not inspected.
 */
function walkFile(content: Buffer, mt: MediaType, path: PathStack, opts: MultipartOptions, visit: Visitor): boolean {
  if (content.length === 0) return false;
  const declared = textualType(mt.type);
  let readings: string[];
  if (declared) readings = textReadings(content, mt.params.get('charset')?.toLowerCase());
  else {
    if (!sniffText(content)) return false;
    try {
      readings = [stripBom(strictUtf8.decode(content))];
    } catch {
      return false;
    }
  }
  const text = readings[0] as string;
  // a legacy charset's raw-byte reading, as a backend that ignores the charset reads it: one text leaf
  if (readings.length > 1 && visit(readings[1] as string, false, path) === true) return true;
  const base = path.length;
  let stopped = false;
  const nested: Visitor = (v, isName, p, classes) => {
    const full = p.length === 0 ? path : [...path.slice(0, base), ...p];
    if (visit(v, isName, full, classes) === true) stopped = true;
    return stopped;
  };
  const t = mt.type;
  const markup = t === 'image/svg+xml' || t === 'application/xhtml+xml' || t === 'text/html';
  try {
    if (t === 'application/json' || t.endsWith('+json') || (!markup && (t === '' || !declared || t === 'text/plain') && looksLikeJsonText(text))) {
      walkJson(text, opts.json, nested);
      return stopped;
    }
    if (!markup && (t === 'application/xml' || t === 'text/xml' || t.endsWith('+xml'))) {
      walkXml(text, opts.xml, nested);
      return stopped;
    }
  } catch (e) {
    if (e instanceof BodyLimitError && e.code === 'prototype-pollution') throw e;
    if (!(e instanceof BodyParseError || e instanceof BodyLimitError)) throw e;
    if (stopped) return true;
  }
  return visit(text, false, path) === true;
}

/** Whether the first non-white-space character opens a JSON object or array. */
function looksLikeJsonText(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 32 || c === 9 || c === 10 || c === 13) continue;
    return c === 123 || c === 91;
  }
  return false;
}

/**
 * Walks a multipart/form-data body (RFC 7578, RFC 2046 §5.1.1) with our own parser, so that every
 * part is read the way the common backends read it and nothing a backend would see is skipped:
 *
 * - A part is a file exactly when its Content-Disposition has a `filename` (or `filename*`)
 *   parameter, as Werkzeug, PHP and Go decide; any other part is a field, whatever its
 *   Content-Type (busboy made `application/octet-stream` parts files and skipped them).
 * - Fields: name and value visited (value decoded as UTF-8; under a legacy ASCII-compatible
 *   charset both the declared and the raw-byte reading, {@link textReadings}).
 * - Files: name and filename(s) visited, and the contents when textual ({@link walkFile}).
 * - Other `multipart/*` (`opts.formData` false): parts without a field name are entities,
 *   inspected like files at `/<part index>`.
 * - Ambiguity is refused: a part with two Content-Disposition or Content-Type headers, a
 *   parameter named twice in one of them, or a Content-Transfer-Encoding other than
 *   `7bit`/`8bit`/`binary` (RFC 7578 §4.7 forbids it; Go decodes quoted-printable, the others do
 *   not) gets `multipart-part-ambiguous`; a part charset that is not ASCII-compatible
 *   ({@link charsetReading}) gets {@link UnsupportedCharsetError}.
 * - Names go through {@link checkParamName} and `_method` through {@link checkMethodOverride}.
 *
 * Linear: one boundary search (`Buffer.indexOf`) per part.
 * @param boundary the `boundary` parameter of the request's Content-Type.
 * @throws {BodyParseError} kind `multipart` on a malformed body.
 * @throws {BodyLimitError} `multipart-limit-exceeded` on a field, file or size limit,
 *   `multipart-part-ambiguous`, `prototype-pollution`, `method-override-refused`.
 * @throws {UnsupportedCharsetError} on a part charset that cannot be read one way only.
 */
export function walkMultipart(body: Buffer, boundary: string | undefined, opts: MultipartOptions, visit: Visitor): void {
  if (boundary === undefined || boundary === '' || boundary.length > 70)
    throw new BodyParseError('multipart', 'missing or invalid boundary parameter (RFC 2046 §5.1.1: 1 to 70 characters)');
  const dash = Buffer.from(`--${boundary}`);
  const delim = Buffer.from(`\r\n--${boundary}`);
  const limit = (what: string): BodyLimitError => new BodyLimitError('multipart-limit-exceeded', what, `The multipart body exceeds the ${what} limit.`);
  // the first delimiter: at the start, or after the preamble's CRLF
  let pos = body.indexOf(dash);
  while (pos > 0 && !(body[pos - 2] === 13 && body[pos - 1] === 10)) pos = body.indexOf(dash, pos + 1);
  if (pos === -1) throw new BodyParseError('multipart', 'no boundary delimiter found');
  // Werkzeug also splits at a boundary after a bare LF or CR, Go and PHP only after CRLF: such a
  // boundary could hide a part (inside a binary file, to us) that one backend reads
  for (let p = pos + 1; (p = body.indexOf(dash, p)) !== -1; p++) {
    const before = body[p - 1];
    if (before === 13 || (before === 10 && body[p - 2] !== 13))
      throw ambiguous('A multipart boundary follows a bare LF or CR (parsers disagree whether it delimits a part).');
  }
  let fields = 0;
  let files = 0;
  let partIndex = 0;
  for (;;) {
    let i = pos + dash.length;
    if (body[i] === 45 && body[i + 1] === 45) return; // close delimiter: the epilogue is ignored
    while (body[i] === 32 || body[i] === 9) i++; // transport padding
    if (!(body[i] === 13 && body[i + 1] === 10)) throw new BodyParseError('multipart', 'expected CRLF after a boundary delimiter');
    i += 2;
    // header block
    let contentStart: number;
    let headerText = '';
    if (body[i] === 13 && body[i + 1] === 10) contentStart = i + 2;
    else {
      const e = body.indexOf(CRLFCRLF, i);
      if (e === -1 || e - i > MAX_PART_HEADER_BYTES) {
        if (e === -1 && body.length - i <= MAX_PART_HEADER_BYTES) throw new BodyParseError('multipart', 'unterminated part headers');
        throw limit('max_header_bytes');
      }
      headerText = lenientUtf8.decode(body.subarray(i, e));
      contentStart = e + 4;
    }
    // an empty part's delimiter may start with the header block's last CRLF: search from contentStart - 2
    const end = body.indexOf(delim, contentStart - 2);
    if (end === -1) throw new BodyParseError('multipart', 'unexpected end of the body (no closing boundary)');
    const content = body.subarray(contentStart, Math.max(contentStart, end));
    pos = end + 2;
    // headers (RFC 5322 fields, obsolete folding joined)
    let disposition: string | undefined;
    let ctype: string | undefined;
    let cte: string | undefined;
    let pairs = 0;
    if (headerText !== '') {
      const lines = headerText.split('\r\n');
      for (let k = 0; k < lines.length; k++) {
        let line = lines[k] as string;
        while (k + 1 < lines.length && /^[ \t]/.test(lines[k + 1] as string)) line += ` ${(lines[++k] as string).trim()}`;
        // a bare LF or CR ends a header line for Werkzeug, not for Go or PHP
        if (line.indexOf('\n') !== -1 || line.indexOf('\r') !== -1) throw ambiguous('A multipart part header contains a bare LF or CR.');
        const colon = line.indexOf(':');
        if (colon <= 0) throw new BodyParseError('multipart', 'malformed part header line');
        if (++pairs > 64) throw limit('header_pairs');
        const hn = line.slice(0, colon).trim().toLowerCase();
        const hv = line.slice(colon + 1).trim();
        if (hn === 'content-disposition') {
          if (disposition !== undefined) throw ambiguous('A multipart part has two Content-Disposition headers.');
          disposition = hv;
        } else if (hn === 'content-type') {
          if (ctype !== undefined) throw ambiguous('A multipart part has two Content-Type headers.');
          ctype = hv;
        } else if (hn === 'content-transfer-encoding') {
          // RFC 7578 §4.7: senders MUST NOT use it in form-data; Go's mime/multipart decodes
          // quoted-printable transparently, others hand the encoded bytes over
          if (cte !== undefined) throw ambiguous('A multipart part has two Content-Transfer-Encoding headers.');
          cte = hv.toLowerCase();
          if (!IDENTITY_CTE.has(cte))
            throw ambiguous(`A multipart part has Content-Transfer-Encoding "${hv.slice(0, 40)}" (RFC 7578 §4.7; backends disagree whether to decode it).`);
        }
      }
    }
    const disp = disposition === undefined ? undefined : parseDisposition(disposition);
    const plainName = disp?.get('name');
    const extName = disp?.get('name*');
    if (plainName !== undefined && extName !== undefined && plainName !== extName)
      throw ambiguous('A multipart part names two different fields (name and name*).');
    const name = extName ?? plainName;
    const filename = disp?.get('filename');
    const extFilename = disp?.get('filename*');
    const mt = parseMediaType(ctype ?? '');
    if (mt.duplicate !== undefined) throw ambiguous(`A multipart part's Content-Type names "${mt.duplicate}" twice.`);
    const charset = mt.params.get('charset')?.toLowerCase();
    if (charsetReading(charset) === 'incompatible') throw new UnsupportedCharsetError(charset as string, 'a multipart part');
    const isFile = filename !== undefined || extFilename !== undefined;
    partIndex++;
    if (name === undefined && opts.formData === false) {
      // an entity of multipart/mixed, related or alternative (an attachment's filename too): what
      // the backend reads is its contents
      if (++fields > opts.maxFields) throw limit('max_fields');
      if (content.length > opts.maxFileBytes) throw limit('max_file_bytes');
      const at: PathStack = [partIndex - 1];
      const fname = extFilename ?? filename;
      if (fname !== undefined && fname !== '' && visit(fname, false, [partIndex - 1, 'filename']) === true) return;
      if (walkFile(content, mt, at, opts, visit)) return;
      continue;
    }
    if (isFile) {
      if (++files > opts.maxFiles) throw limit('max_files');
      if (content.length > opts.maxFileBytes) throw limit('max_file_bytes');
    } else {
      if (++fields > opts.maxFields) throw limit('max_fields');
      if (content.length > opts.maxFieldBytes) throw limit('max_field_bytes');
    }
    // a part without a name reaches no backend's form
    if (name === undefined) continue;
    if (name.length > 1024) throw limit('max_field_name_bytes');
    checkParamName(name, opts.forbiddenKeys);
    const path: PathStack = [name];
    if (visit(name, true, path) === true) return;
    if (isFile) {
      if (filename !== undefined && filename !== '' && visit(filename, false, [name, 'filename']) === true) return;
      if (extFilename !== undefined && extFilename !== filename && extFilename !== '' && visit(extFilename, false, [name, 'filename']) === true) return;
      if (walkFile(content, mt, path, opts, visit)) return;
    } else {
      // the declared charset's reading, and the raw bytes' when they differ (a legacy charset)
      for (const value of textReadings(content, charset)) {
        checkMethodOverride(name, value, opts.method);
        if (value !== '' && visit(value, false, path) === true) return;
      }
    }
  }
}
