/**
 * IP allow and deny lists: IPv4 and IPv6 addresses and CIDR blocks (RFC 4632, RFC 4291 §2.3) in a
 * `net.BlockList`, from inline entries and from files reloaded when they change.
 *
 * File format: one address or CIDR block per line; `#` starts a comment; blank lines are ignored.
 */
import { type FSWatcher, watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { BlockList, isIP } from 'node:net';
import { basename, dirname, resolve } from 'node:path';

/** A parsed list entry. */
export interface CidrEntry {
  address: string;
  /** Prefix length; 32 (IPv4) or 128 (IPv6) for a single address. */
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

/**
 * Parses `1.2.3.4`, `10.0.0.0/8`, `2001:db8::/32`. IPv4-mapped IPv6 (`::ffff:1.2.3.4`) is taken as
 * the IPv4 address, the way the gateway normalises client addresses.
 * @throws {Error} `invalid IP address or CIDR block "..."`.
 */
export function parseCidr(text: string): CidrEntry {
  const s = text.trim();
  const slash = s.indexOf('/');
  let ip = slash === -1 ? s : s.slice(0, slash);
  const bits = slash === -1 ? undefined : s.slice(slash + 1);
  if (ip.toLowerCase().startsWith('::ffff:') && isIP(ip.slice(7)) === 4) ip = ip.slice(7);
  const v = isIP(ip);
  const max = v === 4 ? 32 : 128;
  if (v === 0 || (bits !== undefined && (!/^\d{1,3}$/.test(bits) || Number(bits) > max))) {
    throw new Error(`invalid IP address or CIDR block "${s}"`);
  }
  return { address: ip, prefix: bits === undefined ? max : Number(bits), family: v === 4 ? 'ipv4' : 'ipv6' };
}

/**
 * Parses a list file's text.
 * @throws {Error} `line N: invalid IP address or CIDR block "..."`.
 */
export function parseListText(text: string): CidrEntry[] {
  const out: CidrEntry[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const hash = (lines[i] as string).indexOf('#');
    const line = (hash === -1 ? (lines[i] as string) : (lines[i] as string).slice(0, hash)).trim();
    if (line === '') continue;
    try {
      out.push(parseCidr(line));
    } catch (e) {
      throw new Error(`line ${i + 1}: ${(e as Error).message}`);
    }
  }
  return out;
}

/** Builds a BlockList of entries. */
export function blockListFrom(entries: readonly CidrEntry[]): BlockList {
  const bl = new BlockList();
  for (const e of entries) bl.addSubnet(e.address, e.prefix, e.family);
  return bl;
}

/**
 * Whether `ip` is in `bl`. An address that is not an IP (never the case for the gateway's client
 * address) is in no list.
 */
export function listHas(bl: BlockList, ip: string): boolean {
  const v = isIP(ip);
  if (v === 0) return false;
  return bl.check(ip, v === 4 ? 'ipv4' : 'ipv6');
}

/** Callbacks of a {@link WatchedList} for reloads. */
export interface ListReloadHooks {
  /** A file was re-read and the list swapped in. */
  onReload?(file: string, entries: number): void;
  /** A changed file could not be read or parsed; the previous list stays in force. */
  onError?(file: string, err: Error): void;
}

/**
 * An IP list from inline entries plus files. The files are read at creation and re-read when they
 * change (`fs.watch` on their directories, so editors that replace the file are seen too; changes
 * are debounced by `debounceMs`). A file that becomes unreadable or invalid leaves the previous
 * list in force and is reported through `hooks.onError`.
 */
export class WatchedList {
  /** Whether the list has any entry (inline or from a file) right now. */
  empty: boolean;
  private list: BlockList;
  private readonly inline: CidrEntry[];
  private readonly files: string[];
  private readonly fromFiles = new Map<string, CidrEntry[]>();
  private readonly watchers: FSWatcher[] = [];
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private closed = false;

  private constructor(inline: CidrEntry[], files: string[]) {
    this.inline = inline;
    this.files = files;
    this.list = new BlockList();
    this.empty = true;
  }

  /**
   * Reads the files and starts watching them.
   * @param inline inline entries (already validated by the schema, parsed again here).
   * @param files list files, relative to `baseDir`.
   * @throws {Error} naming the file (and line) when a file cannot be read or has an invalid entry,
   *   or naming the inline entry that is invalid.
   */
  static async create(
    inline: readonly string[],
    files: readonly string[],
    baseDir: string,
    hooks: ListReloadHooks = {},
    debounceMs = 100,
  ): Promise<WatchedList> {
    const parsed = inline.map((c) => parseCidr(c));
    const abs = files.map((f) => resolve(baseDir, f));
    const wl = new WatchedList(parsed, abs);
    for (const f of abs) wl.fromFiles.set(f, await readList(f));
    wl.rebuild();
    try {
      wl.watch(hooks, debounceMs);
    } catch (e) {
      wl.close();
      throw e;
    }
    return wl;
  }

  /** Whether `ip` is on the list. */
  has(ip: string): boolean {
    return !this.empty && listHas(this.list, ip);
  }

  /** Stops watching the files. */
  close(): void {
    this.closed = true;
    for (const w of this.watchers) w.close();
    for (const t of this.timers.values()) clearTimeout(t);
    this.watchers.length = 0;
    this.timers.clear();
  }

  private rebuild(): void {
    const all = [...this.inline];
    for (const f of this.files) all.push(...(this.fromFiles.get(f) ?? []));
    this.list = blockListFrom(all);
    this.empty = all.length === 0;
  }

  private watch(hooks: ListReloadHooks, debounceMs: number): void {
    const byDir = new Map<string, Set<string>>();
    for (const f of this.files) {
      const d = dirname(f);
      if (!byDir.has(d)) byDir.set(d, new Set());
      byDir.get(d)?.add(basename(f));
    }
    for (const [dir, names] of byDir) {
      const w = watch(dir, { persistent: false }, (_ev, name) => {
        // Some platforms give no file name: re-read every list of the directory then.
        const changed = name ? (names.has(name.toString()) ? [name.toString()] : []) : [...names];
        for (const n of changed) this.schedule(resolve(dir, n), hooks, debounceMs);
      });
      w.on('error', (e) => hooks.onError?.(dir, e));
      this.watchers.push(w);
    }
  }

  private schedule(file: string, hooks: ListReloadHooks, debounceMs: number): void {
    const t = this.timers.get(file);
    if (t) clearTimeout(t);
    this.timers.set(
      file,
      setTimeout(() => {
        this.timers.delete(file);
        void readList(file).then(
          (entries) => {
            if (this.closed) return;
            this.fromFiles.set(file, entries);
            this.rebuild();
            hooks.onReload?.(file, entries.length);
          },
          (e: Error) => {
            if (!this.closed) hooks.onError?.(file, e);
          },
        );
      }, debounceMs),
    );
  }
}

/**
 * Reads and parses one list file.
 * @throws {Error} `IP list file "PATH": ...` when unreadable or invalid.
 */
export async function readList(file: string): Promise<CidrEntry[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new Error(`IP list file "${file}" cannot be read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    return parseListText(text);
  } catch (e) {
    throw new Error(`IP list file "${file}": ${(e as Error).message}`);
  }
}

/**
 * The network an address belongs to at a prefix length: `203.0.113.0/24`, `2001:db8:1::/48`.
 * Used to bind tokens to where they were first seen.
 * @returns `undefined` when `ip` is not an IP address.
 */
export function networkPrefix(ip: string, v4Bits: number, v6Bits: number): string | undefined {
  const v = isIP(ip);
  if (v === 4) {
    const p = ip.split('.').map(Number);
    const n = (((p[0] as number) << 24) | ((p[1] as number) << 16) | ((p[2] as number) << 8) | (p[3] as number)) >>> 0;
    const masked = v4Bits === 0 ? 0 : (n & (~0 << (32 - v4Bits))) >>> 0;
    return `${masked >>> 24}.${(masked >>> 16) & 255}.${(masked >>> 8) & 255}.${masked & 255}/${v4Bits}`;
  }
  if (v === 6) {
    const words = expandV6(ip);
    if (words === undefined) return undefined;
    const out: number[] = [];
    for (let i = 0; i < 8; i++) {
      const keep = Math.max(0, Math.min(16, v6Bits - i * 16));
      const mask = keep === 0 ? 0 : (0xffff << (16 - keep)) & 0xffff;
      out.push((words[i] as number) & mask);
    }
    return `${out.map((w) => w.toString(16)).join(':')}/${v6Bits}`;
  }
  return undefined;
}

/** The eight 16-bit words of an IPv6 address (with an embedded IPv4 tail handled). */
function expandV6(ip: string): number[] | undefined {
  let s = ip;
  const pct = s.indexOf('%');
  if (pct !== -1) s = s.slice(0, pct);
  let tail: number[] = [];
  const lastColon = s.lastIndexOf(':');
  const last = s.slice(lastColon + 1);
  if (last.includes('.')) {
    const p = last.split('.').map(Number);
    tail = [((p[0] as number) << 8) | (p[1] as number), ((p[2] as number) << 8) | (p[3] as number)];
    s = `${s.slice(0, lastColon + 1)}0:0`;
  }
  const [head, rest] = s.split('::') as [string, string | undefined];
  const h = head === '' ? [] : head.split(':').map((x) => Number.parseInt(x, 16));
  const r = rest === undefined ? [] : rest === '' ? [] : rest.split(':').map((x) => Number.parseInt(x, 16));
  const fill = rest === undefined ? 0 : 8 - h.length - r.length;
  const words = [...h, ...new Array(fill).fill(0), ...r];
  if (words.length !== 8) return undefined;
  if (tail.length) {
    words[6] = tail[0] as number;
    words[7] = tail[1] as number;
  }
  return words;
}
