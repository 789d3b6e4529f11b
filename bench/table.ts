/**
 * Aligned plain-text tables for benchmark reports. Every benchmark prints through here so the
 * output of `node bench/run.ts` looks the same across scenarios.
 *
 * ```
 * target        req/s   p50 ms  p99 ms
 * ------------  ------  ------  ------
 * upstream      41,203    1.00    3.00
 * bare proxy    18,772    2.00    6.00
 * ```
 */

/** A cell value. Numbers are right-aligned; `null`/`undefined` print as `-`. */
export type Cell = string | number | boolean | null | undefined;

/** One table row: cell values by column key. */
export type Row = Record<string, Cell>;

/** A column of a table. */
export interface Column {
  /** Key of the cell in each {@link Row}. */
  key: string;
  /** Header text; default: `key`. */
  header?: string;
  /** Alignment; default: `right` when every non-empty cell is a number, else `left`. */
  align?: 'left' | 'right';
  /** Formats a cell; default: {@link formatCell}. */
  format?: (value: Cell) => string;
}

/** Options of {@link formatTable} and {@link printTable}. */
export interface TableOptions {
  /** Columns in order, as keys or {@link Column}s; default: the keys of the first row. */
  columns?: Array<string | Column>;
  /** A title printed above the table. */
  title?: string;
  /** Spaces between columns; default 2. */
  gap?: number;
}

/**
 * Default cell formatting: integers get thousands separators (`12,345`), other finite numbers
 * two decimals (`3.14`), non-finite numbers and `null`/`undefined` print `-`, the rest `String()`.
 */
export function formatCell(value: Cell): string {
  if (value === null || value === undefined) return '-';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return '-';
    if (Number.isInteger(value)) return value.toLocaleString('en-US');
    return value.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }
  return String(value);
}

/**
 * Renders `rows` as an aligned text table: a header line, a dashed rule, one line per row,
 * no trailing spaces, lines joined by `\n` (no final newline).
 */
export function formatTable(rows: Row[], options: TableOptions = {}): string {
  const gap = ' '.repeat(options.gap ?? 2);
  const specs = (options.columns ?? Object.keys(rows[0] ?? {})).map((c) => (typeof c === 'string' ? { key: c } : c));
  const columns = specs.map((c) => {
    const values = rows.map((r) => r[c.key]);
    const numeric = values.some((v) => typeof v === 'number') && values.every((v) => v == null || typeof v === 'number');
    const cells = values.map((v) => (c.format ?? formatCell)(v));
    const header = c.header ?? c.key;
    const width = Math.max(header.length, ...cells.map((s) => s.length));
    return { header, cells, width, align: c.align ?? (numeric ? 'right' : 'left') };
  });
  const pad = (s: string, width: number, align: 'left' | 'right'): string => (align === 'right' ? s.padStart(width) : s.padEnd(width));
  const line = (parts: string[]): string =>
    parts
      .map((p, i) => pad(p, columns[i]?.width ?? 0, columns[i]?.align ?? 'left'))
      .join(gap)
      .trimEnd();
  const out: string[] = [];
  if (options.title) out.push(options.title);
  out.push(line(columns.map((c) => c.header)));
  out.push(columns.map((c) => '-'.repeat(c.width)).join(gap));
  for (let r = 0; r < rows.length; r++) out.push(line(columns.map((c) => c.cells[r] ?? '')));
  return out.join('\n');
}

/** Writes {@link formatTable}`(rows, options)` plus a newline to stdout. */
export function printTable(rows: Row[], options: TableOptions = {}): void {
  process.stdout.write(`${formatTable(rows, options)}\n`);
}
