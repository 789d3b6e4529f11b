/**
 * Cross-site scripting detection with a small HTML tokeniser (HTML Living Standard §13.2.5, tag
 * open / tag name / attribute states, simplified): dangerous elements, event-handler attributes,
 * `javascript:`/`vbscript:`/`data:text/html` URLs in attributes or standing alone, and attribute
 * break-outs (`" onmouseover=`). One left-to-right pass; linear in the input.
 * OWASP XSS Prevention Cheat Sheet; WSTG-INPV-01/02; CWE-79.
 */

/** Elements that execute script or load active content. */
const DANGEROUS_TAGS = new Set([
  'script',
  'iframe',
  'frame',
  'frameset',
  'object',
  'embed',
  'applet',
  'svg',
  'math',
  'base',
  'link',
  'meta',
  'style',
  'form',
  'isindex',
  'xml',
  'import',
  'template',
  'portal',
  'xss',
  'vmlframe',
  'bgsound',
  'layer',
  'ilayer',
  'animate',
  'set',
  'handler',
  'listener',
  'image',
  'xmp',
  'noscript',
  'plaintext',
  'marquee',
  'video',
  'audio',
  'source',
  'details',
]);
/** Attributes that take a URL (scheme checked) or script. */
const URL_ATTRS = new Set([
  'href',
  'src',
  'action',
  'formaction',
  'data',
  'xlink:href',
  'background',
  'lowsrc',
  'dynsrc',
  'poster',
  'codebase',
  'srcdoc',
  'to',
  'from',
  'values',
  'by',
  'style',
]);

/**
 * Two JavaScript `\u00XX` escapes of ASCII letters inside one identifier (`\u0076\u0061lue`): nothing
 * but obfuscation spells a letter that way. Linear: `[a-z]*` and the backslash do not overlap.
 */
const ESCAPED_IDENTIFIER = /(?:\\u00(?:[46][1-9a-f]|[57][0-9a])[a-z0-9_$]*){2}/;

/** Attributes of a plain link (`<a>`): none of them runs script or loads anything. */
const LINK_ATTRS = new Set(['href', 'title', 'rel', 'target', 'class', 'id', 'name', 'lang', 'hreflang', 'type']);
/**
 * An href of a plain link: an http(s) URL, a path on the same site, or an anchor (no quotes, spaces or
 * angle brackets).
 */
/** An escaped quote that opens an attribute value of markup held in a script string (`\x22`, `\u0027`, `\"`). */
const ESCAPED_QUOTE = /^\\(?:x2[27]|u002[27]|["'])/;
const PAGE_URL = /^(?:https?:\/\/[a-z0-9.-]+(?::\d+)?(?:[/?#][^\s"'<>`]*)?|\/(?!\/)[^\s"'<>`]*|#[^\s"'<>`]*)$/;

/** A detected XSS pattern. */
export interface XssHit {
  rule: string;
  /** Offset in the normalised value. */
  index: number;
  paranoia: number;
}

function isAlpha(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90);
}
function isWs(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 12 || c === 13 || c === 47;
}

/**
 * Strips whitespace and control characters (browsers ignore them inside a scheme: `java\tscript:`)
 * and reports whether what follows offset `i` starts a script URL.
 */
function scriptUrlAt(s: string, i: number): string | undefined {
  let buf = '';
  for (let j = i; j < s.length && buf.length < 16; j++) {
    const c = s.charCodeAt(j);
    if (c <= 32 || c === 34 || c === 39 || c === 96) continue;
    buf += s[j];
  }
  if (buf.startsWith('javascript:')) return 'javascript-url';
  if (buf.startsWith('vbscript:')) return 'vbscript-url';
  if (buf.startsWith('livescript:')) return 'javascript-url';
  if (buf.startsWith('data:text/html') || buf.startsWith('data:image/svg') || buf.startsWith('data:application/x')) return 'data-url';
  return undefined;
}

/**
 * A closing tag in the US-ASCII high-bit spelling (CRS 941310): bytes 0xBC and 0xBE read as `<` and
 * `>` by a decoder that drops the eighth bit, so `¼/script¾` is `</script>`. The bytes arrive as the
 * characters U+00BC/U+00BE, their NFKC forms `1⁄4`/`3⁄4`, or JavaScript escapes `\xbc`/`\xbe`. A
 * closing tag (`¼/name` then `¾` or `>`, or `</name` then `¾`) has no reading outside that trick.
 * @returns the offset of the tag, or -1. Linear: one forward scan per opener kind.
 */
function highBitClosingTag(s0: string): number {
  const esc = s0.indexOf('\\xb') !== -1;
  if (!(esc || s0.indexOf('\u00bc') !== -1 || s0.indexOf('\u00be') !== -1 || s0.indexOf('\u2044') !== -1)) return -1;
  let s = s0;
  if (esc) s = s.replaceAll('\\xbc', '\u00bc').replaceAll('\\xbe', '\u00be');
  if (s.indexOf('\u2044') !== -1) s = s.replaceAll('1\u20444', '\u00bc').replaceAll('3\u20444', '\u00be');
  const closerAfter = (from: number, gt: boolean): boolean => s.indexOf('\u00be', from) !== -1 || (gt && s.indexOf('>', from) !== -1);
  for (const [open, gt] of [
    ['\u00bc', true],
    ['<', false],
  ] as const) {
    for (let q = s.indexOf(open); q !== -1; q = s.indexOf(open, q + 1)) {
      let k = q + 1;
      while (k < s.length && (s.charCodeAt(k) === 32 || (s.charCodeAt(k) >= 9 && s.charCodeAt(k) <= 13))) k++;
      if (s.charCodeAt(k) !== 47) continue;
      k++;
      while (k < s.length && (s.charCodeAt(k) === 32 || (s.charCodeAt(k) >= 9 && s.charCodeAt(k) <= 13))) k++;
      if (!isAlpha(s.charCodeAt(k))) continue;
      // the first candidate decides: a later opener of this kind has no closer if this one has none
      if (closerAfter(k, gt)) return q;
      break;
    }
  }
  return -1;
}

/**
 * `url(javascript`, `url( 'vbscript`: a CSS URL with a script scheme (CRS 941140). The quote and its
 * spaces form one optional group, so no two `\s*` compete for the same run of spaces (the former
 * `\s*['"]?\s*` backtracked quadratically on `url(` and a long run of spaces).
 */
const CSS_SCRIPT_URL = /url\(\s*(?:['"]\s*)?(?:java|vb)script/;
const CSS_SCRIPT_URL_AT = /^url\(\s*(?:['"]\s*)?(?:java|vb)script/;

/**
 * The whitespace around each dot removed (what a global replace of `\s*` `.` `\s*` by `.` did) in one
 * pass. The regex tried
 * every start inside a run of spaces and scanned the run each time (quadratic on `(` + spaces + `x .`).
 */
export function joinDots(s: string): string {
  let out = '';
  let from = 0;
  for (let d = s.indexOf('.'); d !== -1; d = s.indexOf('.', d + 1)) {
    let a = d;
    while (a > from && isJsSpace(s.charCodeAt(a - 1))) a--;
    let b = d + 1;
    while (b < s.length && isJsSpace(s.charCodeAt(b))) b++;
    out += `${s.slice(from, a)}.`;
    from = b;
    d = b - 1;
  }
  return out + s.slice(from);
}

/** JavaScript's `\s` (WhiteSpace and LineTerminator, ECMA-262 §12.2-12.3). */
function isJsSpace(c: number): boolean {
  return (
    (c >= 9 && c <= 13) ||
    c === 32 ||
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000 ||
    c === 0xfeff
  );
}

const JS_SINKS =
  /(?:\balert|\bprompt|\bconfirm|\beval|fromcharcode|\bexecscript|\bsettimeout|\bsetinterval|\bfunction)\s*[(`]|document\s*\.\s*(?:cookie|write|domain|location)|window\s*\.\s*(?:location|name|open)|\.innerhtml\s*=|\blocation\s*(?:\.\s*href\s*)?=|\bconstructor\s*\(|\bimport\s*\(|top\s*\[/;

/**
 * Detects XSS in a normalised (decoded, lower-case) value.
 * @returns the first hit, or `undefined`.
 */
export function detectXss(s0: string): XssHit | undefined {
  let s = s0;
  // UTF-7 (`+ADw-script+AD4-`) and the US-ASCII high-bit trick (`¼script¾`): legacy charsets that turn these into markup
  if (s.indexOf('+ad') !== -1) s = s.replace(/\+ad([w4ic])-?/g, (_m, c: string) => (c === 'w' ? '<' : c === '4' ? '>' : c === 'i' ? '"' : "'"));
  if (s.indexOf('\u00bc') !== -1 && s.indexOf('\u00be') !== -1) s = s.replaceAll('\u00bc', '<').replaceAll('\u00be', '>');
  // the same after NFKC, which spells ¼ and ¾ as 1⁄4 and 3⁄4 (U+2044 fraction slash)
  if (s.indexOf('1\u20444') !== -1 && s.indexOf('3\u20444') !== -1) s = s.replaceAll('1\u20444', '<').replaceAll('3\u20444', '>');
  const n = s.length;
  let weak: XssHit | undefined;
  let lt = s.indexOf('<');
  while (lt !== -1 && lt < n - 1) {
    let i = lt + 1;
    let c = s.charCodeAt(i);
    if (c === 47 /* </ */) {
      i++;
      c = s.charCodeAt(i);
    }
    if (c === 33 /* <! */) {
      if (s.startsWith('[cdata[', i + 1) || s.startsWith('entity', i + 1) || s.startsWith('doctype', i + 1))
        return { rule: 'markup-declaration', index: lt, paranoia: 1 };
    } else if (c === 63 /* <? */) {
      if (s.startsWith('xml-stylesheet', i + 1) || s.startsWith('import', i + 1)) return { rule: 'processing-instruction', index: lt, paranoia: 1 };
    } else if (c === 32 || c === 9 || c === 10 || c === 13 || c === 12) {
      // `< x: script`, `< script`: a tag name after spaces, or a namespace prefix set apart by spaces
      // (XML-aware parsers and legacy filters read it as a tag; CRS 941160, paranoia level 2)
      if (weak === undefined || weak.paranoia > 2) {
        const t = spacedTagAt(s, i);
        if (t !== undefined) weak = { rule: `spaced-tag:${t}`, index: lt, paranoia: 2 };
      }
    } else if (isAlpha(c) || c === 58) {
      // tag name
      let j = i;
      while (j < n) {
        const d = s.charCodeAt(j);
        if (isWs(d) || d === 62 || d === 60 || d === 0 || d === 61) break;
        j++;
      }
      const name = s.slice(i, j);
      const bare = name.includes(':') ? name.slice(name.indexOf(':') + 1) : name;
      // `<x: script`: a namespace prefix, then spaces before the local name
      if (bare === '' && name.endsWith(':') && (weak === undefined || weak.paranoia > 2)) {
        const t = spacedTagAt(s, i);
        if (t !== undefined) weak = { rule: `spaced-tag:${t}`, index: lt, paranoia: 2 };
      }
      if (DANGEROUS_TAGS.has(bare)) return { rule: `tag:${bare}`, index: lt, paranoia: 1 };
      if (name === 'xi:include' || (bare.length > 6 && DANGEROUS_TAGS.has(bare.slice(0, 6)) && bare.startsWith('import')))
        return { rule: `tag:${name}`, index: lt, paranoia: 1 };
      // `<noscript#`, `<svg!x`: a dangerous element name followed by a character that is not a letter or digit (CRS 941320, PL2)
      if (weak === undefined || weak.paranoia > 2) {
        let a = 0;
        while (a < bare.length && (isAlpha(bare.charCodeAt(a)) || (bare.charCodeAt(a) >= 48 && bare.charCodeAt(a) <= 57))) a++;
        if (a > 0 && a < bare.length && DANGEROUS_TAGS.has(bare.slice(0, a))) weak = { rule: `tag-prefix:${bare.slice(0, a)}`, index: lt, paranoia: 2 };
      }
      // attributes until '>' (or end of input: an unterminated tag still counts)
      let k = j;
      let tagHasAttr = false;
      // `<a href="https://…">`: a link to a web page or a page anchor, nothing else set (see below)
      let plainLink = bare === 'a';
      while (k < n) {
        let d = s.charCodeAt(k);
        if (d === 62 || d === 60) break;
        if (isWs(d) || d === 34 || d === 39) {
          k++;
          continue;
        }
        const a0 = k;
        while (k < n) {
          d = s.charCodeAt(k);
          if (isWs(d) || d === 61 || d === 62 || d === 60) break;
          k++;
        }
        const attr = s.slice(a0, k);
        tagHasAttr = true;
        if (plainLink && !LINK_ATTRS.has(attr)) plainLink = false;
        if (attr.length > 2 && attr.startsWith('on') && isAlpha(attr.charCodeAt(2)))
          return { rule: `event-handler:${attr.slice(0, 24)}`, index: a0, paranoia: 1 };
        if (attr === 'xmlns:xi' || attr === 'xsi:schemalocation' || attr === 'xsi:nonamespaceschemalocation')
          return { rule: `xml-namespace:${attr}`, index: a0, paranoia: 1 };
        while (k < n && (s.charCodeAt(k) === 32 || s.charCodeAt(k) === 9 || s.charCodeAt(k) === 10 || s.charCodeAt(k) === 13)) k++;
        if (s.charCodeAt(k) === 61 /* = */) {
          // `<input pattern="…">`: a validation regex an attacker sets to leak or lock input (CRS 941130)
          if (attr === 'pattern') return { rule: 'attribute-vector:pattern', index: a0, paranoia: 1 };
          k++;
          while (k < n && (s.charCodeAt(k) === 32 || s.charCodeAt(k) === 9 || s.charCodeAt(k) === 10 || s.charCodeAt(k) === 13)) k++;
          const q = s.charCodeAt(k);
          let v0 = k;
          let v1: number;
          // `\x22…\x22`, `\"…\"`: markup inside a script string literal quotes its values with escapes
          const escq = q === 92 ? ESCAPED_QUOTE.exec(s.slice(k, k + 7)) : null;
          if (q === 34 || q === 39 || q === 96) {
            v0 = k + 1;
            v1 = s.indexOf(String.fromCharCode(q), v0);
            if (v1 === -1) v1 = n;
            k = v1 + 1;
          } else if (escq !== null) {
            v0 = k + escq[0].length;
            v1 = s.indexOf(escq[0], v0);
            if (v1 === -1) v1 = n;
            k = Math.min(n, v1 + escq[0].length);
          } else {
            // an unquoted value ends at whitespace or `>`; it also stops at `<`, where the next tag
            // starts its own scan (the outer loop), so no stretch of the input is scanned once per `<`
            // before it (`<x=<x=<x=…` was quadratic). A value cut at `<` is no plain link (PAGE_URL
            // excludes `<`); CSS after the `<` is left to the value-wide CSS checks below.
            v1 = k;
            while (v1 < n) {
              const d = s.charCodeAt(v1);
              if (isWs(d) || d === 62 || d === 60) break;
              v1++;
            }
            k = v1;
            if (s.charCodeAt(v1) === 60) plainLink = false;
          }
          if (attr === 'href' && plainLink && !PAGE_URL.test(s.slice(v0, v1))) plainLink = false;
          if (URL_ATTRS.has(attr)) {
            const u = scriptUrlAt(s, v0);
            if (u !== undefined) return { rule: `${u}:${attr}`, index: v0, paranoia: 1 };
            if (attr === 'style') {
              const v = s.slice(v0, v1);
              if (v.includes('expression(') || v.includes('-moz-binding') || v.includes('behavior:') || CSS_SCRIPT_URL.test(v))
                return { rule: 'style-script', index: v0, paranoia: 1 };
            }
          }
        }
      }
      // an `<a>` start tag whose only URL is an http(s) page, a site path or an anchor is a link a comment
      // or a document may hold (the CRS corpus passes one, 941130-21): no HTML-injection evidence by itself
      if (plainLink) tagHasAttr = false;
      if (
        tagHasAttr &&
        (bare === 'img' || bare === 'body' || bare === 'input' || bare === 'a' || bare === 'div' || bare === 'table' || bare === 'td' || bare === 'bgsound')
      ) {
        // a tag with attributes but nothing dangerous: HTML injection, weaker evidence
        weak ??= { rule: `html-tag:${bare}`, index: lt, paranoia: 2 };
      }
    }
    lt = s.indexOf('<', lt + 1);
  }
  // `¼/script¾`, `\xbc/test\xbe`: a closing tag in the US-ASCII high-bit spelling (CRS 941310)
  const hb = highBitClosingTag(s0);
  if (hb !== -1) return { rule: 'us-ascii-markup', index: hb, paranoia: 1 };
  // `<f o r m`: a tag name spelt with spaces
  if (lt0(s) && SPACED_TAG.test(s)) {
    const m = SPACED_TAG.exec(s) as RegExpExecArray;
    const name = (m[1] as string).replaceAll(' ', '');
    if (DANGEROUS_TAGS.has(name) || SPACED_ONLY.has(name)) return { rule: 'spaced-tag', index: m.index, paranoia: 1 };
  }
  // markup declarations outside a tag: `!ENTITY % x SYSTEM`
  const ent = s.indexOf('!entity');
  if (ent !== -1 && /^!entity\s+%?\s*[\w.-]{1,64}\s+(?:system|public)\b/.test(s.slice(ent, ent + 100)))
    return { rule: 'markup-declaration', index: ent, paranoia: 1 };
  // CSS that runs script
  for (const css of ['-moz-binding', 'expression(', 'behavior:url', 'behaviour:url']) {
    const q = s.indexOf(css);
    if (q !== -1 && (css !== 'expression(' || /(?:^|[\s;:{"'])expression\(/.test(s.slice(Math.max(0, q - 1), q + 11))))
      return { rule: 'css-script', index: q, paranoia: 1 };
  }
  // `url(javascript`: a CSS URL with a script scheme, colon or not (CRS 941140)
  for (let q = s.indexOf('url('); q !== -1; q = s.indexOf('url(', q + 4)) {
    if (CSS_SCRIPT_URL_AT.test(s.slice(q, q + 24))) return { rule: 'css-script', index: q, paranoia: 1 };
  }
  // ES module import of named bindings: `import { a, b } from "./x.js"` (CRS 941390 domain, PL2)
  const imp = s.indexOf('import');
  if (imp !== -1 && (weak === undefined || weak.paranoia > 2) && /^import\s*\{[^}]{0,200}\}\s*from\s*['"`]/.test(s.slice(imp, imp + 260)))
    weak = { rule: 'js-import', index: imp, paranoia: 2 };
  // `-->`: closing an HTML comment to break out of it (CRS 941181). Level 2 when it opens or ends the
  // value or comes right before markup (`-->`, `x-->`, `--><b>`); an arrow between words ("a --> b",
  // Markdown and prose) only at level 3
  if (weak === undefined || weak.paranoia > 2) {
    const cc = s.indexOf('-->');
    if (cc !== -1) {
      const edge = s.slice(0, cc).trim() === '' || s.slice(cc + 3).trim() === '' || s.charCodeAt(cc + 3) === 60;
      if (edge || weak === undefined) weak = { rule: 'comment-close', index: cc, paranoia: edge ? 2 : 3 };
    }
  }
  // browsers drop tabs and newlines anywhere in a URL (WHATWG URL, "remove all ASCII tab or newline"):
  // `v&newline;b&tab;script:` is `vbscript:` (CRS 941220)
  let p = s.indexOf('script');
  if (p === -1 && s.indexOf(':') !== -1 && (s.indexOf('\t') !== -1 || s.indexOf('\n') !== -1 || s.indexOf('\r') !== -1)) p = 0;
  if (p !== -1) {
    // browsers drop tabs and newlines inside a scheme: compare without whitespace and controls
    const compact = s.replace(/[\u0000-\u0020]+/g, '');
    const q = compact.search(/(?:java|vb|live)script:/);
    if (q !== -1) return { rule: compact.startsWith('vb', q) ? 'vbscript-url' : 'javascript-url', index: Math.max(0, p - 4), paranoia: 1 };
  }
  p = s.indexOf('data:');
  if (p !== -1 && (scriptUrlAt(s, p) !== undefined || dataUrlMarkup(s, p))) return { rule: 'data-url', index: p, paranoia: 1 };
  // attribute break-out: a quote (or space/slash) then an event handler and '='
  p = s.indexOf('on');
  while (p !== -1) {
    const prev = p === 0 ? 32 : s.charCodeAt(p - 1);
    const quoteOrSpace = prev === 34 || prev === 39 || prev === 32 || prev === 47 || prev === 9 || prev === 10 || prev === 13 || prev === 96 || prev === 59;
    if (quoteOrSpace || HANDLER_PREV(prev)) {
      let j = p + 2;
      while (j < n && isAlpha(s.charCodeAt(j))) j++;
      const len = j - p - 2;
      if (len >= 3) {
        let k = j;
        while (k < n && (s.charCodeAt(k) === 32 || s.charCodeAt(k) === 9 || s.charCodeAt(k) === 10 || s.charCodeAt(k) === 13)) k++;
        if (quoteOrSpace && s.charCodeAt(k) === 61 && (EVENT_NAMES.has(s.slice(p + 2, j)) || (len > 10 && prev !== 32)))
          return { rule: 'attribute-breakout', index: p, paranoia: 1 };
        // CRS 941120 (paranoia level 2 here): `on` + 3-50 letters after a separator, digit or '=' and then
        // `=` and a value (`5onabcd=x` in a signature header, `  onabcdefgh= `): any name, since browsers
        // keep adding events; a bare trailing `=` (base64 padding) or `==` is not an assignment
        if (len <= 50 && (weak === undefined || weak.paranoia > 2)) {
          while (k < n && HANDLER_GAP(s.charCodeAt(k))) k++;
          if (s.charCodeAt(k) === 61 && k + 1 < n && s.charCodeAt(k + 1) !== 61) weak = { rule: 'attribute-breakout', index: p, paranoia: 2 };
        }
      }
    }
    p = s.indexOf('on', p + 2);
  }
  // dangerous attributes after a quote break-out: `'formaction=`, `" srcdoc=`
  for (const a of ['formaction', 'srcdoc', 'xlink:href']) {
    const q = s.indexOf(a);
    if (q > 0 && /["'`]\s*$/.test(s.slice(Math.max(0, q - 3), q)) && /^\s*=/.test(s.slice(q + a.length, q + a.length + 4)))
      return { rule: 'attribute-breakout', index: q, paranoia: 1 };
  }
  // `\u0076\u0061l\u0075e\u004f\u0066`: an identifier spelt with JavaScript escapes of ASCII letters (CRS 941330, PL2)
  if ((weak === undefined || weak.paranoia > 2) && s.indexOf('\\u00') !== -1) {
    const m = ESCAPED_IDENTIFIER.exec(s);
    if (m) weak = { rule: 'escaped-identifier', index: m.index, paranoia: 2 };
  }
  // script outside markup: DOM sinks and globals, JS obfuscation (CRS 941180, 941360, 941370, 941390, 941400)
  const js = jsEvidence(s);
  if (js) return js;
  if (weak === undefined || weak.paranoia > 2) {
    const qa = quoteThenMemberAssignment(s);
    if (qa !== -1) weak = { rule: 'quote-member-assignment', index: qa, paranoia: 2 };
  }
  return weak;
}

/** Characters that may precede an event-handler name in CRS 941120: whitespace, quotes, `(`, `,`, `/`, digits, `;`, `=`. */
function HANDLER_PREV(c: number): boolean {
  return (c >= 9 && c <= 13) || c === 32 || c === 34 || c === 39 || c === 40 || c === 44 || (c >= 47 && c <= 57) || c === 59 || c === 61 || c === 96;
}
/** Characters CRS 941120 allows between a handler name and its `=`. */
function HANDLER_GAP(c: number): boolean {
  return (c >= 9 && c <= 13) || c === 32 || c === 40 || c === 44 || c === 59;
}

/** Elements worth reporting when their name is set apart by spaces (`< script`, `<x: script`). */
const SPACED_STRONG = new Set([
  'script',
  'iframe',
  'frame',
  'frameset',
  'object',
  'embed',
  'applet',
  'svg',
  'math',
  'base',
  'meta',
  'style',
  'form',
  'xml',
  'portal',
  'template',
]);

/**
 * The dangerous element named at offset `i` (just after `<`) when spaces set it apart: `< script`,
 * `< x: script`, `<x: script` (namespace prefix). `undefined` when there is no such name, or when
 * the name runs on into more letters or digits.
 */
function spacedTagAt(s: string, i: number): string | undefined {
  const n = s.length;
  const ws = (c: number): boolean => c === 32 || c === 9 || c === 10 || c === 13 || c === 12;
  const word = (c: number): boolean => isAlpha(c) || (c >= 48 && c <= 57) || c === 95 || c === 45 || c === 46;
  let k = i;
  while (k < n && ws(s.charCodeAt(k))) k++;
  let w0 = k;
  while (k < n && word(s.charCodeAt(k)) && k - w0 < 32) k++;
  let w1 = k;
  while (k < n && ws(s.charCodeAt(k))) k++;
  if (s.charCodeAt(k) === 58 /* : */ && w1 > w0 && isAlpha(s.charCodeAt(w0))) {
    k++;
    while (k < n && ws(s.charCodeAt(k))) k++;
    w0 = k;
    while (k < n && word(s.charCodeAt(k)) && k - w0 < 32) k++;
    w1 = k;
  }
  const name = s.slice(w0, w1);
  return SPACED_STRONG.has(name) ? name : undefined;
}

/**
 * Whether the `data:` URL at offset `p` carries markup (`data:,<x>`, `data: text/html , <b>`): an
 * empty or `type/subtype` media type, then a comma, then a tag (CRS 941170's `data:.*,.*<.*\w.*>`,
 * narrowed to a real media type so that prose such as "data: a, <b>" is not one).
 */
function dataUrlMarkup(s: string, p: number): boolean {
  const comma = s.indexOf(',', p + 5);
  if (comma === -1 || comma - p > 120) return false;
  const mt = s.slice(p + 5, comma).trim();
  if (mt !== '' && !/^[a-z]+\/[a-z0-9.+-]+\s*(?:;[^,]*)?$/.test(mt)) return false;
  const lt = s.indexOf('<', comma + 1);
  if (lt === -1) return false;
  const c = s.charCodeAt(lt + 1);
  return (isAlpha(c) || c === 33 || c === 47 || c === 63) && s.indexOf('>', lt + 2) !== -1;
}

/** Identifier characters of JavaScript (ASCII subset): letters, digits, `_`, `$`. */
function isIdent(c: number): boolean {
  return isAlpha(c) || (c >= 48 && c <= 57) || c === 95 || c === 36;
}

/**
 * A string break-out followed by a property assignment (CRS 941340, the IE8 XSS filter rule, at
 * paranoia level 2): a quote, spaces, then a non-word character or the `in` operator, and later a
 * member assignment `a.b =` (not `==`): `'  in foo.bar=`, `"-x.y=1`. CRS accepts any `.` followed
 * by any `=`, which matches every `key="a.b", k=v` list (Digest credentials, `Forwarded`, JSON);
 * here the dot must join two identifiers right before the `=`.
 * @returns the quote's offset or -1. Linear: one backward walk per `=` (each walk stops at the
 *   previous non-identifier character) and one forward pass over the quotes.
 */
function quoteThenMemberAssignment(s: string): number {
  if (s.indexOf('.') === -1 || (s.indexOf("'") === -1 && s.indexOf('"') === -1)) return -1;
  const n = s.length;
  // the last `ident.ident =` (by the offset of its dot)
  let dot = -1;
  for (let e = s.indexOf('='); e !== -1; e = s.indexOf('=', e + 1)) {
    if (s.charCodeAt(e + 1) === 61 || s.charCodeAt(e - 1) === 61) continue;
    let k = e - 1;
    while (k >= 0 && (s.charCodeAt(k) === 32 || s.charCodeAt(k) === 9)) k--;
    const prop = k;
    while (k >= 0 && isIdent(s.charCodeAt(k))) k--;
    if (k === prop || s.charCodeAt(k) !== 46 || !isIdent(s.charCodeAt(k - 1))) continue;
    dot = k;
  }
  if (dot === -1) return -1;
  for (let q = 0; q < dot; q++) {
    const c = s.charCodeAt(q);
    if (c !== 34 && c !== 39) continue;
    let k = q + 1;
    while (k < n && s.charCodeAt(k) === 32) k++;
    let start: number;
    if (s.startsWith('in', k)) start = k + 2;
    else {
      const d = s.charCodeAt(k);
      if (isIdent(d) || d === 126 || d === 58 || d === 39 || d === 32 || d === 36) continue;
      start = k + 1;
    }
    return dot >= start + 1 ? q : -1;
  }
  return -1;
}

const SPACED_TAG = /<((?:[a-z] ){2,9}[a-z])\b/;
/** Elements that only count spelt with spaces (`<d i a l o g`): spelling a harmless tag that way is still deliberate. */
const SPACED_ONLY = new Set(['dialog', 'img', 'body', 'input', 'div', 'table', 'video', 'audio']);
function lt0(s: string): boolean {
  return s.indexOf('<') !== -1;
}

/** JavaScript sinks that are script even without markup (a DOM global, then a member or call). */
const JS_STRONG =
  /\b(?:document\.(?:cookie|domain|write(?:ln)?\s*\(|location|body\.appendchild|createelement\s*\(|documentelement|queryselector(?:all)?\s*\(|getelements?by[a-z]{2,9}\s*\()|window\.(?:location|open\s*\(|name\b|eval)|(?:self|top|parent|frames|globalthis|window|this|document)\s*(?:\)\s*)?\[\s*['"`[(]|(?:alert|prompt|confirm|eval|atob|btoa|settimeout|setinterval|execscript|fromcharcode)\s*[(`]|new\s+function\s*\(|\.call\s*`|\.(?:constructor|__proto__)\s*[([])/;

/** Script evidence outside markup. JS comments (`document/*x*\/.cookie`) are removed first. */
function jsEvidence(s: string): XssHit | undefined {
  if (s.length < 5) return undefined;
  // JSFuck-style obfuscation: []+![], +!![], (![]+[])
  if (s.indexOf('[]') !== -1 && /!\s*\[\s*\]|\[\s*\]\s*\[|\(\s*!\s*\[/.test(s)) return { rule: 'jsfuck', index: s.indexOf('[]'), paranoia: 1 };
  if (!(s.indexOf('(') !== -1 || s.indexOf('.') !== -1 || s.indexOf('[') !== -1 || s.indexOf('`') !== -1)) return undefined;
  let c = s;
  if (c.indexOf('/*') !== -1) c = c.replace(/\/\*[^*]{0,200}\*\//g, '');
  if (c.indexOf(' ') !== -1 && (c.indexOf(' .') !== -1 || c.indexOf('. ') !== -1)) c = joinDots(c);
  const m = JS_STRONG.exec(c);
  if (m) {
    // comments or spaces inside a member access (`document/*x*/./*y*/cookie`) are deliberate obfuscation
    const obfuscated = c !== s && !JS_STRONG.test(s);
    // prose says "alert (for staff)" and "confirm (yes/no)": a space before the parenthesis is not a call
    const call = /^(?:alert|prompt|confirm)\s+\(/.test(m[0]);
    // a bare `document.cookie` (a page title, a path segment) is only a mention; with an assignment,
    // concatenation or call around it, it is script
    const bare =
      /^(?:document|window)\.[a-z]+$/.test(m[0]) &&
      !/[=(+;,]/.test(c.slice(Math.max(0, m.index - 3), m.index) + c.slice(m.index + m[0].length, m.index + m[0].length + 3));
    return { rule: 'script-sink', index: m.index, paranoia: call || (bare && !obfuscated) ? 2 : 1 };
  }
  if (s.length > 5 && (s.indexOf('(') !== -1 || s.indexOf('=') !== -1 || s.indexOf('`') !== -1)) {
    const m2 = JS_SINKS.exec(s);
    if (m2) return { rule: 'script-sink', index: m2.index, paranoia: 2 };
  }
  return undefined;
}

/** DOM event handler names (without `on`), HTML Living Standard §8.1.8.2 and common vendor ones. */
const EVENT_NAMES = new Set(
  'abort afterprint animationend animationiteration animationstart auxclick beforecopy beforecut beforeinput beforepaste beforeprint beforeunload begin blur canplay canplaythrough change click close contextmenu copy cuechange cut dblclick drag dragend dragenter dragleave dragover dragstart drop durationchange emptied end ended error focus focusin focusout formdata hashchange input invalid keydown keypress keyup load loadeddata loadedmetadata loadstart message mousedown mouseenter mouseleave mousemove mouseout mouseover mouseup mousewheel offline online pagehide pageshow paste pause play playing pointerdown pointerenter pointerleave pointermove pointerout pointerover pointerrawupdate pointerup popstate progress ratechange readystatechange repeat reset resize scroll scrollend search securitypolicyviolation seeked seeking select selectionchange selectstart show stalled storage submit suspend timeupdate toggle touchend touchmove touchstart transitioncancel transitionend transitionrun transitionstart unload volumechange waiting webkitanimationend webkittransitionend wheel activate beforeactivate focusout bounce finish start zoom open cancel beforetoggle beforematch slotchange afterscriptexecute beforescriptexecute animationcancel compositionstart compositionend compositionupdate contentvisibilityautostatechange devicemotion deviceorientation fullscreenchange fullscreenerror gotpointercapture lostpointercapture pointercancel touchcancel visibilitychange orientationchange propertychange filterchange beforeeditfocus beforedeactivate deactivate controlselect losecapture rowenter rowexit rowsdelete rowsinserted cellchange dataavailable datasetchanged datasetcomplete errorupdate help move moveend movestart loadend timeout dragexit draggesture formchange forminput unhandledrejection rejectionhandled svgload svgunload svgerror svgabort svgresize svgscroll svgzoom domactivate domattrmodified domcharacterdatamodified domfocusin domfocusout dommousescroll domnodeinserted domnodeinsertedintodocument domnoderemoved domnoderemovedfromdocument domsubtreemodified mozfullscreenchange webkitanimationiteration webkitanimationstart webkitmouseforcedown webkitmouseforcewillbegin pagereveal pageswap'.split(
    ' ',
  ),
);
