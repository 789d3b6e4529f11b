/**
 * Loader for the OWASP CRS regression corpus (go-ftw YAML test files, `tests/<RULE-FILE>/<id>.yaml`).
 * Each test stage becomes one raw HTTP/1.1 request and an expectation: an attack case when the
 * stage expects rule ids to fire (`expect_ids`), a must-pass case when it only lists rules that
 * must not fire (`no_expect_ids`) or expects status 200. Requests are built as go-ftw builds them
 * with `autocomplete_headers` on (the default): `Content-Length` and `Connection: close` added,
 * and `Content-Type: application/x-www-form-urlencoded` when a body has none.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

/** One request from the corpus. */
export interface CorpusCase {
  /** `<rule_id>-<test_id>[-<stage>]`. */
  id: string;
  /** Attack class from the rule file, e.g. `SQLI`, `XSS`, `RCE`, `LFI`. */
  cls: string;
  /** True when the corpus expects the rules to fire. */
  attack: boolean;
  /** Raw request bytes. */
  raw: Buffer;
  /** Rule file directory, e.g. `REQUEST-942-APPLICATION-ATTACK-SQLI`. */
  file: string;
}

/** Attack class of a CRS rule file directory: the words after `APPLICATION-ATTACK-` or the file's theme. */
export function classOf(dir: string): string {
  const m = /^REQUEST-\d+-(?:APPLICATION-ATTACK-)?(.+)$/.exec(dir);
  return m ? (m[1] as string) : dir;
}

interface Stage {
  input?: Record<string, unknown>;
  output?: {
    log?: { expect_ids?: number[]; no_expect_ids?: number[] };
    status?: number | number[];
    expect_error?: boolean;
    log_contains?: string;
    no_log_contains?: string;
  };
}

function buildRaw(input: Record<string, unknown>): Buffer {
  if (typeof input.encoded_request === 'string') return Buffer.from(input.encoded_request.replace(/\s+/g, ''), 'base64');
  const method = String(input.method ?? 'GET');
  const uri = String(input.uri ?? '/');
  const version = String(input.version ?? 'HTTP/1.1');
  const headers: [string, string][] = Object.entries((input.headers ?? {}) as Record<string, unknown>).map(([k, v]) => [k, String(v)]);
  let data: Buffer | undefined;
  if (input.data !== undefined && input.data !== null) {
    const d = Array.isArray(input.data) ? input.data.map(String).join('\r\n') : String(input.data);
    data = Buffer.from(d, 'utf8');
  }
  const auto = input.autocomplete_headers !== false;
  const has = (n: string): boolean => headers.some(([k]) => k.toLowerCase() === n);
  if (auto) {
    if (!has('host')) headers.push(['Host', 'localhost']);
    if (data !== undefined && data.length > 0 && !has('content-type')) headers.push(['Content-Type', 'application/x-www-form-urlencoded']);
    if (data !== undefined && !has('content-length') && !has('transfer-encoding')) headers.push(['Content-Length', String(data.length)]);
    if (!has('connection')) headers.push(['Connection', 'close']);
  }
  const head = `${method} ${uri} ${version}\r\n${headers.map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`;
  return data === undefined ? Buffer.from(head, 'utf8') : Buffer.concat([Buffer.from(head, 'utf8'), data]);
}

/**
 * Loads every request-side test under `root` (the corpus directory, or its `tests/` directory).
 * Response-side files (`RESPONSE-*`), stages without an expectation and stages that expect a
 * client error are skipped.
 */
export function loadCorpus(root: string): CorpusCase[] {
  const dir = statSync(join(root, 'tests'), { throwIfNoEntry: false })?.isDirectory() ? join(root, 'tests') : root;
  const out: CorpusCase[] = [];
  for (const file of readdirSync(dir).sort()) {
    if (!file.startsWith('REQUEST-')) continue;
    const full = join(dir, file);
    if (!statSync(full).isDirectory()) continue;
    for (const f of readdirSync(full).sort()) {
      if (!f.endsWith('.yaml')) continue;
      const doc = parse(readFileSync(join(full, f), 'utf8')) as null | {
        rule_id?: number;
        tests?: { test_id?: number; stages?: (Stage & { stage?: Stage })[] }[];
      };
      for (const t of doc?.tests ?? []) {
        const stages = t.stages ?? [];
        stages.forEach((st0, si) => {
          const st = st0.stage ?? st0;
          if (!st.input || !st.output || st.output.expect_error) return;
          const expect = st.output.log?.expect_ids ?? [];
          const noExpect = st.output.log?.no_expect_ids ?? [];
          const status = st.output.status;
          let attack: boolean;
          if (expect.length > 0 || st.output.log_contains) attack = true;
          else if (noExpect.length > 0 || st.output.no_log_contains || status === 200 || (Array.isArray(status) && status.includes(200))) attack = false;
          else return;
          out.push({
            id: `${doc?.rule_id ?? f}-${t.test_id ?? '?'}${stages.length > 1 ? `-${si + 1}` : ''}`,
            cls: classOf(file),
            attack,
            raw: buildRaw(st.input),
            file,
          });
        });
      }
    }
  }
  return out;
}

/** FNV-1a (32-bit) of a string: the deterministic tune/holdout split of the corpus and sampling orders. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}
