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
import { percentDecode } from './normalize.ts';

/** A location path: JSON Pointer-like segments from the body root (RFC 6901 escaping applied on output). */
export type PathStack = (string | number)[];

/**
 * Receives each name (`isName` true: member names, parameter names, element and attribute names)
 * and each string value. Returning `true` stops the walk (enough evidence to block).
 */
export type Visitor = (value: string, isName: boolean, path: PathStack) => boolean | undefined;

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
 * Parses `text` as JSON (RFC 8259), calling `visit` for every member name and string value.
 * Number, boolean and null leaves are checked but not visited.
 * @throws {BodyParseError} on malformed JSON (message names the offset).
 * @throws {BodyLimitError} on a limit breach, duplicate or forbidden member name.
 */
export function walkJson(text: string, limits: JsonLimits, visit: Visitor): void {
  const n = text.length;
  let i = 0;
  const path: PathStack = [];
  const fail = (what: string): never => {
    throw new BodyParseError('json', `${what} at offset ${i}`);
  };
  const ws = (): void => {
    let c: number;
    while (i < n && (c = text.charCodeAt(i)) < 128 && WS[c] === 1) i++;
  };
  const str = (): string => {
    // i at opening quote
    const start = i + 1;
    let j = start;
    let out: string | undefined;
    let seg = start;
    for (;;) {
      if (j >= n) {
        i = j;
        fail('unterminated string');
      }
      const c = text.charCodeAt(j);
      if (c === 34) break;
      if (c < 32) {
        i = j;
        fail('control character in string');
      }
      if (c === 92) {
        out = (out ?? '') + text.slice(seg, j);
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
            if (!/^[0-9a-fA-F]{4}$/.test(h)) {
              i = j;
              fail('invalid \\u escape');
            }
            out += String.fromCharCode(Number.parseInt(h, 16));
            j += 4;
            break;
          }
          default:
            i = j;
            fail('invalid escape');
        }
        j += 2;
        seg = j;
        if (j - start > limits.maxString) break;
        continue;
      }
      j++;
    }
    if (j - start > limits.maxString) {
      i = start;
      throw new BodyLimitError('json-limit-exceeded', 'max_string', `A JSON string exceeds ${limits.maxString} characters at offset ${start}.`);
    }
    i = j + 1;
    return out === undefined ? text.slice(start, j) : out + text.slice(seg, j);
  };
  const num = (): void => {
    const start = i;
    if (text.charCodeAt(i) === 45) i++;
    const intStart = i;
    const d0 = text.charCodeAt(i);
    if (d0 === 48) i++;
    else if (d0 >= 49 && d0 <= 57) while (i < n && text.charCodeAt(i) >= 48 && text.charCodeAt(i) <= 57) i++;
    else fail('invalid number');
    let digits = i - intStart;
    if (text.charCodeAt(i) === 46) {
      i++;
      const f = i;
      while (i < n && text.charCodeAt(i) >= 48 && text.charCodeAt(i) <= 57) i++;
      if (i === f) fail('invalid number');
      digits += i - f;
    }
    const e = text.charCodeAt(i);
    let exp = 0;
    if (e === 101 || e === 69) {
      i++;
      const sign = text.charCodeAt(i);
      if (sign === 45 || sign === 43) i++;
      const f = i;
      while (i < n && text.charCodeAt(i) >= 48 && text.charCodeAt(i) <= 57) i++;
      if (i === f) fail('invalid number');
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
    const v = Math.abs(Number(text.slice(start, i)));
    if (!Number.isFinite(v))
      throw new BodyLimitError('json-number-out-of-range', 'finite', `A JSON number is not finite as a 64-bit float (RFC 8259 §6) at offset ${start}.`);
    if (!(v <= limits.maxNumber))
      throw new BodyLimitError('json-limit-exceeded', 'max_number', `A JSON number exceeds ${limits.maxNumber} in magnitude at offset ${start}.`);
  };
  const lit = (word: string): void => {
    if (!text.startsWith(word, i)) fail('unexpected token');
    i += word.length;
  };
  // explicit stack instead of recursion: depth is bounded by limits.maxDepth anyway
  const value = (depth: number): boolean => {
    ws();
    const c = text.charCodeAt(i);
    if (c === 34) {
      const s = str();
      return visit(s, false, path) === true;
    }
    if (c === 123 || c === 91) {
      if (depth >= limits.maxDepth) throw new BodyLimitError('json-limit-exceeded', 'max_depth', `JSON nesting exceeds depth ${limits.maxDepth}.`);
      i++;
      ws();
      if (c === 123) {
        let count = 0;
        // duplicate detection: a linear scan over the first keys (objects are small), a Set beyond
        let seen: Set<string> | undefined;
        const firstKeys: string[] = [];
        if (text.charCodeAt(i) === 125) {
          i++;
          return false;
        }
        for (;;) {
          ws();
          if (text.charCodeAt(i) !== 34) fail('expected member name');
          const key = str();
          if (++count > limits.maxKeys) throw new BodyLimitError('json-limit-exceeded', 'max_keys', `A JSON object has more than ${limits.maxKeys} members.`);
          if (limits.forbiddenKeys.has(key))
            throw new BodyLimitError('prototype-pollution', 'forbidden_keys', `The member name "${key}" is not allowed (prototype pollution).`);
          if (limits.duplicateKeys === 'reject') {
            let dup = false;
            if (seen === undefined) {
              for (let k = 0; k < firstKeys.length; k++) {
                if (firstKeys[k] === key) {
                  dup = true;
                  break;
                }
              }
              if (firstKeys.length < 16) firstKeys.push(key);
              else {
                seen = new Set(firstKeys);
                seen.add(key);
              }
            } else {
              dup = seen.has(key);
              seen.add(key);
            }
            if (dup) throw new BodyLimitError('duplicate-key', 'duplicate_keys', `The member name "${key.slice(0, 64)}" appears twice in one object.`);
          }
          path.push(key);
          if (visit(key, true, path) === true) return true;
          ws();
          if (text.charCodeAt(i) !== 58) fail("expected ':'");
          i++;
          if (value(depth + 1)) return true;
          path.pop();
          ws();
          const d = text.charCodeAt(i);
          if (d === 44) {
            i++;
            continue;
          }
          if (d === 125) {
            i++;
            return false;
          }
          fail("expected ',' or '}'");
        }
      }
      let idx = 0;
      if (text.charCodeAt(i) === 93) {
        i++;
        return false;
      }
      for (;;) {
        if (idx >= limits.maxArray) throw new BodyLimitError('json-limit-exceeded', 'max_array', `A JSON array has more than ${limits.maxArray} elements.`);
        path.push(idx);
        if (value(depth + 1)) return true;
        path.pop();
        idx++;
        ws();
        const d = text.charCodeAt(i);
        if (d === 44) {
          i++;
          continue;
        }
        if (d === 93) {
          i++;
          return false;
        }
        fail("expected ',' or ']'");
      }
    }
    if (c === 116) lit('true');
    else if (c === 102) lit('false');
    else if (c === 110) lit('null');
    else if (c === 45 || (c >= 48 && c <= 57)) num();
    else fail(i >= n ? 'unexpected end of input' : 'unexpected character');
    return false;
  };
  if (value(0)) return;
  ws();
  if (i < n) fail('unexpected data after the JSON value');
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
