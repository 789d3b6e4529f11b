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
 * - application/x-www-form-urlencoded (WHATWG URL §5.1) and multipart/form-data (RFC 7578, busboy).
 */
import busboy from 'busboy';
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

/**
 * Parses `text` as XML, refusing DTDs first, and visits element/attribute names, attribute values
 * and text nodes. Locations are `/root/child/@attr` paths (element names, not positions).
 * @throws {BodyLimitError} `xml-dtd-refused` (XXE, entity expansion) or `xml-limit-exceeded`.
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
  // iterative walk over preserveOrder nodes: [{ tag: [children], ':@': { '@a': 'v' } }, { '#text': 't' }]
  const stack: { nodes: unknown[]; idx: number; depth: number; pathLen: number }[] = [{ nodes: doc as unknown[], idx: 0, depth: 0, pathLen: 0 }];
  const path: PathStack = [];
  while (stack.length > 0) {
    const top = stack[stack.length - 1] as (typeof stack)[number];
    if (top.idx >= top.nodes.length) {
      stack.pop();
      path.length = stack.length > 0 ? (stack[stack.length - 1] as (typeof stack)[number]).pathLen : 0;
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
        if (t.trim() !== '' && visit(t, false, path) === true) return;
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
        if (visit(k, true, [...path, k]) === true) return;
        const attrs = node[':@'] as Record<string, unknown> | undefined;
        path.push(k);
        if (attrs) {
          for (const [a, av] of Object.entries(attrs)) {
            path.push(a);
            if (visit(a.slice(1), true, path) === true) return;
            if (typeof av === 'string' && visit(av, false, path) === true) return;
            path.pop();
          }
        }
        stack.push({ nodes: val, idx: 0, depth: top.depth + 1, pathLen: path.length });
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

/**
 * Walks an application/x-www-form-urlencoded body or query string: names and values, each
 * percent-decoded once (`+` is a space).
 * @param strict reject malformed UTF-8 after percent-decoding (overlong forms included).
 * @throws {BodyParseError} kind `utf-8` on malformed UTF-8 (strict only).
 * @throws {BodyLimitError} `form-limit-exceeded` when there are more than `maxFields` pairs.
 */
export function walkUrlEncoded(text: string, maxFields: number, maxValueBytes: number, strict: boolean, visit: Visitor, pathPrefix: PathStack = []): void {
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
      path[last] = name;
      if (visit(name, true, path) === true) return;
      if (value !== '' && visit(value, false, path) === true) return;
    }
    start = end + 1;
  }
}

/**
 * Walks a multipart/form-data body (RFC 7578) with busboy: field names and values, and file part
 * names and filenames (file contents are not inspected).
 * @throws {BodyParseError} kind `multipart` on a malformed body.
 * @throws {BodyLimitError} `multipart-limit-exceeded` on a field, file or size limit.
 */
export function walkMultipart(body: Buffer, contentType: string, limits: FormLimits, visit: Visitor): Promise<void> {
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (err?: Error): void => {
      if (done) return;
      done = true;
      if (err) reject(err);
      else resolve();
    };
    let bb: busboy.Busboy;
    try {
      bb = busboy({
        headers: { 'content-type': contentType },
        preservePath: true, // inspect the filename as sent (`../../x`), not its basename
        limits: {
          fields: limits.maxFields,
          files: limits.maxFiles,
          parts: limits.maxFields + limits.maxFiles,
          fieldSize: limits.maxFieldBytes,
          fileSize: limits.maxFileBytes,
          fieldNameSize: 1024,
          headerPairs: 64,
        },
      });
    } catch (e) {
      finish(new BodyParseError('multipart', (e as Error).message));
      return;
    }
    const limit = (what: string) => () => finish(new BodyLimitError('multipart-limit-exceeded', what, `The multipart body exceeds the ${what} limit.`));
    let stop = false;
    bb.on('field', (name, value, info) => {
      if (stop || done) return;
      if (info.valueTruncated || info.nameTruncated) return limit('max_field_bytes')();
      if (visit(name, true, [name]) === true || (value !== '' && visit(value, false, [name]) === true)) stop = true;
    });
    bb.on('file', (name, stream, info) => {
      stream.on('limit', limit('max_file_bytes'));
      stream.resume();
      if (stop || done) return;
      if (visit(name, true, [name]) === true) stop = true;
      else if (info.filename && visit(info.filename, false, [name, 'filename']) === true) stop = true;
    });
    bb.on('fieldsLimit', limit('max_fields'));
    bb.on('filesLimit', limit('max_files'));
    bb.on('partsLimit', limit('max_parts'));
    bb.on('error', (e: Error) => finish(new BodyParseError('multipart', e.message)));
    bb.on('close', () => finish());
    bb.end(body);
  });
}
