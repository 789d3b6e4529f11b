/**
 * Streaming DLP inspection for bodies too large to buffer, and NDJSON streams of unknown length.
 *
 * A {@link StreamScanner} takes the decoded body chunk by chunk and gives back the bytes that may
 * be sent, holding back only what is not yet proven safe (memory stays bounded by
 * {@link SEGMENT_MAX_BYTES} plus one chunk):
 *
 * - A small state machine over the bytes (strings, escapes, nesting) counts records as they
 *   arrive: objects in the outermost arrays (`[{…}]`, `{"data": [{…}]}`), NDJSON lines, CSV rows;
 *   the same rule as the buffered scanner.
 * - JSON is cut into segments at a `,` between two values once {@link SEGMENT_BYTES} are held;
 *   NDJSON is released line by line as whole lines arrive (at most once per chunk);
 *   each segment is scanned by the same JSON scanner as buffered bodies, wrapped in the open
 *   containers and their keys (`{"data":[` … `]}`), so key context (`ssn`, `order_id`) works as
 *   it does on a whole document. Text, CSV and HTML (and JSON with no
 *   `,` for {@link SEGMENT_MAX_BYTES}) are scanned in windows that keep the last
 *   {@link OVERLAP_BYTES} back, so a value across a chunk boundary is seen whole.
 * - A segment is released only after it was scanned and redacted, and only while the limits
 *   hold: when a record or distinct-value limit is passed, or a `block` detector fires, `stop` is
 *   set and nothing more is released (the caller aborts the response).
 *
 * Paths in streamed findings carry `[*]` for array indices (segments do not know their index).
 */
import { applyReplacementsToBuffer, type Finding, type Scanner } from './scanner.ts';

/** Bytes held before a JSON body is cut at the next `,` (and the text window size). */
export const SEGMENT_BYTES = 16 * 1024;
/** Most bytes held without a place to cut: then the held bytes are scanned as text. */
export const SEGMENT_MAX_BYTES = 1024 * 1024;
/** Bytes kept back at the end of a text window (longer than any value a detector finds, PEM aside). */
export const OVERLAP_BYTES = 512;
/** Bytes before a text window kept as context for the next one (nearby words, lookbehind). */
const CONTEXT_BYTES = 64;
const MAX_DEPTH = 4096;
const MAX_KEY_BYTES = 256;

/** How a streamed body is read. `csv` is text whose lines (after the header) are records. */
export type StreamMode = 'json' | 'ndjson' | 'text' | 'csv';

/** Limits checked before any bytes are released (`Infinity` = no limit). */
export interface StreamLimits {
  maxRecords: number;
  maxSensitiveValues: number;
  /** Most distinct values remembered (for counting); at least `maxSensitiveValues + 1` when that is finite. */
  distinctCap: number;
}

/** Why a stream must be cut off. */
export type StreamStop = 'records' | 'sensitive_values' | 'blocked';

/** What one {@link StreamScanner.write} or {@link StreamScanner.end} gives back. */
export interface StreamStep {
  /** Bytes that may be sent, in order. */
  out: Buffer[];
  /** Findings in the released bytes (and, on a stop, in the segment that stopped it). */
  findings: Finding[];
  /** Set once a limit is passed or a blocking detector fires: release nothing more. */
  stop: StreamStop | undefined;
}

/**
 * Incremental scanner for one response body. Not reusable; `write` after a stop or `end` returns
 * nothing.
 */
export class StreamScanner {
  private readonly scanner: Scanner;
  private readonly mode: StreamMode;
  private readonly redact: ReadonlySet<string>;
  private readonly block: ReadonlySet<string>;
  private readonly limits: StreamLimits;
  /** Held bytes: `ctx` bytes already sent (context only), then bytes not yet sent. */
  private pending: Buffer = Buffer.alloc(0);
  private ctx = 0;
  /** Offset in `pending` up to which the state machine has read. */
  private pos = 0;
  /** The held bytes start inside a value (after a text flush): scan them as text up to the next cut. */
  private textCarry = false;
  // State machine.
  private inStr = false;
  private esc = false;
  private strStart = -1;
  private depth = 0;
  private arrDepth = 0;
  private readonly isArr = new Uint8Array(MAX_DEPTH);
  /** Raw key (JSON-escaped, without quotes) each object level sits under in its parent ('' when unknown). */
  private readonly levelKey: string[] = [];
  private keyExpected = false;
  private lastKeyStart = -1;
  private lastKeyEnd = -1;
  private lineHasContent = false;
  private tooDeep = false;
  /** Records (lines, for CSV and text) counted so far, including bytes still held. */
  private records = 0;
  /** Distinct sensitive values (`detector:canonical`), at most `distinctCap` kept, in the order found. */
  readonly distinct = new Set<string>();
  /** Set when a segment did not parse as JSON (it was still scanned, as text where it broke). */
  malformed: string | undefined;
  private stopped: StreamStop | undefined;
  private bytesIn = 0;

  constructor(scanner: Scanner, mode: StreamMode, redact: ReadonlySet<string>, block: ReadonlySet<string>, limits: StreamLimits) {
    this.scanner = scanner;
    this.mode = mode;
    this.redact = redact;
    this.block = block;
    this.limits = limits;
  }

  /** Records so far: CSV lines after the header, otherwise as counted. */
  get recordCount(): number {
    return this.mode === 'csv' ? Math.max(0, this.records - 1) : this.mode === 'text' ? 0 : this.records;
  }

  /** Total bytes given to `write`. */
  get bytesReceived(): number {
    return this.bytesIn;
  }

  /** Takes the next decoded chunk; returns what may be sent now. */
  write(chunk: Buffer): StreamStep {
    const step: StreamStep = { out: [], findings: [], stop: this.stopped };
    if (this.stopped !== undefined) return step;
    this.bytesIn += chunk.length;
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    if (this.mode === 'text' || this.mode === 'csv') this.advanceText(step, false);
    else this.advanceJson(step);
    step.stop = this.stopped;
    return step;
  }

  /**
   * The body ended: scans and returns what is held. A JSON body that ends inside a value (a
   * truncated upstream body) has that value cut off, never sent half-masked; `truncated` says so.
   */
  end(): StreamStep & { truncated: boolean } {
    const step = { out: [] as Buffer[], findings: [] as Finding[], stop: this.stopped, truncated: false };
    if (this.stopped !== undefined) return step;
    if (this.mode === 'text' || this.mode === 'csv') {
      if (this.mode === 'csv' && this.lineHasContent) this.records++;
      if (this.recordCount > this.limits.maxRecords) this.stopped = 'records';
      if (this.stopped === undefined) this.advanceText(step, true);
      step.stop = this.stopped;
      return step;
    }
    if (this.mode === 'ndjson' && this.lineHasContent && !this.inStr) {
      this.records++;
      this.checkRecords();
    }
    if (this.stopped !== undefined) {
      step.stop = this.stopped;
      return step;
    }
    let cut = this.pending.length;
    if (this.inStr || this.depth > 0 || this.tooDeep) {
      step.truncated = this.inStr || this.depth > 0;
      this.malformed ??= this.tooDeep ? 'too-deep' : 'truncated';
      if (this.inStr && this.strStart >= this.ctx) cut = this.strStart;
      else {
        // A number cut short at the end is a truncated value too.
        let k = cut;
        while (k > this.ctx && isNumberByte(this.pending[k - 1] as number)) k--;
        if (k < cut && this.depth > 0) cut = k;
      }
      this.textCarry = true;
    }
    this.emitSegment(step, cut, this.afterCut, '', this.textCarry, this.mode === 'ndjson');
    step.stop = this.stopped;
    return step;
  }

  // ---------------------------------------------------------------- JSON / NDJSON

  private advanceJson(step: StreamStep): void {
    let b = this.pending;
    const ndjson = this.mode === 'ndjson';
    let i = this.pos;
    let n = b.length;
    let lastLineEnd = -1; // NDJSON: end of the last whole line read in this call
    let overLimit = false;
    while (i < n) {
      const c = b[i] as number;
      if (this.inStr) {
        if (this.esc) this.esc = false;
        else if (c === 92) this.esc = true;
        else if (c === 34) {
          this.inStr = false;
          if (this.strStart === this.lastKeyStart) this.lastKeyEnd = i;
        }
        i++;
        continue;
      }
      if (c === 34) {
        this.inStr = true;
        this.strStart = i;
        if (this.keyExpected) {
          this.lastKeyStart = i;
          this.keyExpected = false;
        }
        if (this.depth === 0) this.lineHasContent = true;
      } else if (c === 123 || c === 91) {
        if (this.depth >= MAX_DEPTH) {
          this.tooDeep = true;
        } else {
          const arr = c === 91;
          if (!ndjson && !arr && this.depth > 0 && this.isArr[this.depth - 1] === 1 && this.arrDepth === 1) {
            this.records++;
            if (this.checkRecords()) break;
          }
          // The key this container sits under (its bytes are still held: no cut between a key and its value).
          let key = '';
          if (this.depth > 0 && this.isArr[this.depth - 1] === 0 && this.lastKeyStart >= 0 && this.lastKeyEnd > this.lastKeyStart) {
            if (this.lastKeyEnd - this.lastKeyStart - 1 <= MAX_KEY_BYTES) key = b.toString('latin1', this.lastKeyStart + 1, this.lastKeyEnd);
          }
          this.levelKey[this.depth] = key;
          this.isArr[this.depth] = arr ? 1 : 0;
          this.depth++;
          if (arr) this.arrDepth++;
          this.keyExpected = !arr;
          if (this.depth === 1) this.lineHasContent = true;
        }
      } else if (c === 125 || c === 93) {
        if (this.depth > 0) {
          this.depth--;
          if (this.isArr[this.depth] === 1) this.arrDepth--;
        }
        this.keyExpected = false;
      } else if (c === 44) {
        if (this.depth > 0) {
          this.keyExpected = this.isArr[this.depth - 1] === 0;
          if (!ndjson && i - this.ctx >= SEGMENT_BYTES && !this.tooDeep) {
            // Cut before the comma; the comma is sent as is.
            const { prefix, suffix } = this.wrapping();
            this.pos = i;
            const before = this.pending;
            this.emitSegment(step, i, prefix, suffix, this.textCarry, false, true);
            if (this.stopped !== undefined) return;
            this.textCarry = false;
            // emitSegment dropped `i + 1` bytes (segment and comma) from the held bytes.
            i -= before.length - this.pending.length;
            b = this.pending;
            n = b.length;
            this.afterCut = this.prefixAfterCut();
            i++;
            continue;
          }
        }
      } else if (c === 10 && this.depth === 0 && !this.tooDeep) {
        if (ndjson && this.lineHasContent) {
          this.records++;
          this.lineHasContent = false;
          if (this.records > this.limits.maxRecords) {
            // Release the whole lines before this one, then stop.
            overLimit = true;
            break;
          }
        }
        if (ndjson) lastLineEnd = i + 1;
      } else if (c !== 32 && c !== 9 && c !== 13 && c !== 10 && c !== 58 && this.depth === 0) {
        this.lineHasContent = true;
      }
      i++;
    }
    this.pos = i;
    // NDJSON: every whole line read is released now (a slow stream is never held back).
    if (this.stopped === undefined && lastLineEnd > this.ctx) {
      this.emitSegment(step, lastLineEnd, '', '', this.textCarry, true);
      if (this.stopped !== undefined) return;
      this.textCarry = false;
    }
    if (overLimit) {
      this.stopped = 'records';
      return;
    }
    if (this.stopped === undefined && this.pending.length - this.ctx > SEGMENT_MAX_BYTES) {
      // No place to cut in a megabyte: scan the held bytes as text, keeping an overlap back.
      this.advanceText(step, false);
      this.textCarry = true;
    }
  }

  /** Prefix for the segment after a cut (the open containers); computed at the cut. */
  private afterCut = '';

  private prefixAfterCut(): string {
    let p = '';
    for (let d = 0; d < this.depth; d++) {
      if (this.isArr[d] === 1) p += '[';
      else p += '{';
      // Outer levels name the key the next level sits under; the innermost level starts with a member.
      if (d < this.depth - 1 && this.isArr[d] === 0) p += `"${this.levelKey[d + 1] ?? ''}":`;
    }
    return p;
  }

  /** Prefix (containers open at the segment's start) and suffix (closing those open at the cut). */
  private wrapping(): { prefix: string; suffix: string } {
    let suffix = '';
    for (let d = this.depth - 1; d >= 0; d--) suffix += this.isArr[d] === 1 ? ']' : '}';
    return { prefix: this.afterCut, suffix };
  }

  /** Counts a record against the limit; true (and stop) when it is passed. */
  private checkRecords(): boolean {
    if (this.records > this.limits.maxRecords) {
      this.stopped = 'records';
      return true;
    }
    return false;
  }

  /**
   * Scans held bytes `[ctx, end)` (wrapped in `prefix`/`suffix` for JSON), and on success sends
   * them (plus the comma at `end` when `comma`) and drops them from the held bytes.
   */
  private emitSegment(step: StreamStep, end: number, prefix: string, suffix: string, asText: boolean, ndjson: boolean, comma = false): void {
    const seg = this.pending.subarray(this.ctx, end);
    let findings: Finding[];
    let reps: { start: number; end: number; text: string }[];
    if (asText || this.mode === 'text' || this.mode === 'csv') {
      const r = this.scanner.scan(this.pending.toString('latin1', 0, end), 'text', this.redact);
      findings = r.findings.filter((f) => f.at >= this.ctx);
      reps = r.replacements.filter((x) => x.start >= this.ctx).map((x) => ({ start: x.start - this.ctx, end: x.end - this.ctx, text: x.text }));
      for (const f of findings) f.path = '';
    } else {
      const body = prefix + seg.toString('latin1') + suffix;
      const r = this.scanner.scan(body, ndjson ? 'ndjson' : 'json', this.redact);
      if (r.malformed !== undefined) this.malformed ??= r.malformed.reason;
      const lo = prefix.length;
      const hi = lo + seg.length;
      findings = r.findings.filter((f) => f.at >= lo && f.at < hi);
      reps = r.replacements.filter((x) => x.start >= lo && x.end <= hi).map((x) => ({ start: x.start - lo, end: x.end - lo, text: x.text }));
      for (const f of findings) f.path = f.path.replace(/\[\d+\]/g, '[*]');
    }
    if (!this.account(findings, step)) return;
    const out = applyReplacementsToBuffer(seg, reps);
    if (out.length > 0) step.out.push(out);
    if (comma) step.out.push(Buffer.from(','));
    const drop = comma ? end + 1 : end;
    this.pending = this.pending.subarray(drop);
    this.ctx = 0;
    this.pos = Math.max(0, this.pos - drop);
    this.strStart -= drop;
    this.lastKeyStart -= drop;
    this.lastKeyEnd -= drop;
  }

  /** Adds findings to the step and the distinct set; false (and stop) when a limit or a block fires. */
  private account(findings: Finding[], step: StreamStep): boolean {
    for (const f of findings) {
      step.findings.push(f);
      if (this.block.has(f.detector)) this.stopped = 'blocked';
      if (this.distinct.size < this.limits.distinctCap) this.distinct.add(`${f.detector}:${f.value}`);
    }
    if (this.stopped === undefined && this.distinct.size > this.limits.maxSensitiveValues) {
      this.stopped = 'sensitive_values';
    }
    return this.stopped === undefined;
  }

  // ---------------------------------------------------------------- text windows

  /** Scans the held bytes as text; sends all but the overlap (or all, when `final`). */
  private advanceText(step: StreamStep, final: boolean): void {
    if (this.mode === 'csv') {
      const b = this.pending;
      for (let i = Math.max(this.pos, this.ctx); i < b.length; i++) {
        const c = b[i] as number;
        if (c === 10) {
          if (this.lineHasContent) this.records++;
          this.lineHasContent = false;
        } else if (c !== 13 && c !== 32 && c !== 9) this.lineHasContent = true;
      }
      this.pos = b.length;
      // The header line is not a record.
      if (this.recordCount > this.limits.maxRecords) {
        this.stopped = 'records';
        return;
      }
    }
    const held = this.pending.length - this.ctx;
    if (!final && held < SEGMENT_BYTES && this.mode !== 'json' && this.mode !== 'ndjson') return;
    const body = this.pending.toString('latin1');
    const r = this.scanner.scan(body, 'text', this.redact);
    let commit = final ? body.length : body.length - OVERLAP_BYTES;
    if (!final) {
      // A redacted value across the commit point is held back whole (found again next time).
      for (const x of r.replacements) if (x.start < commit && x.end > commit) commit = x.start;
      if (commit <= this.ctx) {
        if (held < SEGMENT_MAX_BYTES) return;
        commit = body.length - OVERLAP_BYTES; // a value longer than a megabyte: cut it
      }
    }
    const findings = r.findings.filter((f) => f.at >= this.ctx && f.at < commit);
    for (const f of findings) f.path = '';
    const reps = r.replacements.filter((x) => x.start >= this.ctx && x.start < commit);
    if (!this.account(findings, step)) return;
    const out = applyReplacementsToBuffer(this.pending, reps, commit).subarray(this.ctx);
    if (out.length > 0) step.out.push(out);
    // Keep context before the commit point, and the held tail.
    const keepFrom = Math.max(this.ctx, commit - CONTEXT_BYTES);
    const dropped = keepFrom;
    this.pending = this.pending.subarray(keepFrom);
    this.ctx = commit - keepFrom;
    this.pos = Math.max(0, this.pos - dropped);
    this.strStart -= dropped;
    this.lastKeyStart -= dropped;
    this.lastKeyEnd -= dropped;
  }
}

function isNumberByte(c: number): boolean {
  return (c >= 48 && c <= 57) || c === 46 || c === 45 || c === 43 || c === 101 || c === 69;
}
