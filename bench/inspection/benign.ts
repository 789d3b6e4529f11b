/**
 * False-positive measurement of the inspection control on legitimate API traffic: the example
 * requests of every operation of real OpenAPI documents (see benign-lib.ts for what is taken as a
 * legitimate value and how it is serialised), and the documents' `description` prose sent as
 * free-text JSON bodies `{"text": "..."}` (a stand-in for user comments and support tickets; it
 * holds Markdown, HTML and code samples, so some blocks there are defensible). Every request runs
 * through the inspection stage in-process at paranoia levels 1, 2 and 3; every request is
 * legitimate, so every block is a false positive (or, for prose quoting code, a defensible one).
 *
 * Usage: node bench/inspection/benign.ts <dir-of-openapi-docs> [--list] [--json out.json] [--only stripe,github]
 *   e.g. node bench/inspection/benign.ts /work/shared/corpora/openapi --list
 *   --list   lists the blocked requests: the level at which each is first blocked, the operation
 *            (or the description's JSON pointer), detector, rule, location, the value sent there
 *            (truncated) and the detector's snippet; for a description also the shortest run of its
 *            words that is still blocked (which words the detector reacts to).
 *   --json   writes every blocked request, per level, to a file.
 *   --crs    <dir> also sends every request, as raw HTTP over TCP, through nginx + ModSecurity v3 +
 *            OWASP CRS 4 at paranoia levels 1 and 2 (Debian's nginx and libnginx-mod-http-modsecurity;
 *            <dir> holds the CRS `rules/` and `crs-setup.conf.example`, e.g. ../shared/corpora/crs)
 *            and prints their block rates beside Rampart's (CRS set up for an API: PUT, PATCH and
 *            DELETE allowed, rule 900200).
 *   --vendor writes a deterministic sample of values that pass at every level (field values and
 *            descriptions of the documents whose licence allows it) to a file: how
 *            test/fixtures/benign/values.json was made.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { RequestStage } from '../../src/pipeline/stage.ts';
import {
  type Description,
  type FieldValue,
  type ExampleRequest,
  extractDescriptions,
  extractFieldValues,
  extractRequests,
  fieldRequest,
  fnv1a,
  inspectionStage,
  minimalFragment,
  type Outcome,
  rawRequest,
  runStage,
  type StageRequest,
  textRequest,
} from './benign-lib.ts';
import { API_METHODS, runAll, startNginx } from './modsec.ts';

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i === -1 ? undefined : args[i + 1];
};
const dirArg = args.find((a, i) => !a.startsWith('--') && !['--json', '--only', '--vendor', '--crs'].includes(args[i - 1] as string));
if (dirArg === undefined) {
  console.error('usage: node bench/inspection/benign.ts <dir-of-openapi-docs> [--list] [--json out.json] [--only name,...]');
  process.exit(2);
}
const dir = resolve(dirArg);
const list = args.includes('--list');
const jsonOut = opt('--json');
const only = opt('--only')?.split(',');
const crsDir = opt('--crs');
const LEVELS = [1, 2, 3] as const;
const vendorOut = opt('--vendor');
/** Documents whose licence lets us vendor snippets (see test/fixtures/benign/SOURCE.md). */
const VENDOR_DOCS = new Set(['github.json', 'stripe.json']);
/** A value worth vendoring: bounded length, and punctuation some detector reacts to. */
const vendorable = (v: string, min: number, max: number): boolean => v.length >= min && v.length <= max && /["'`<>()[\]{};&|$\\*#%=:]/.test(v);
const fieldPool: { source: string; in: string; name: string; value: string }[] = [];
const prosePool: { source: string; text: string }[] = [];

const files = readdirSync(dir)
  .filter((f) => /\.(json|ya?ml)$/i.test(f))
  .filter((f) => only === undefined || only.some((o) => f.startsWith(o)))
  .sort();
const stages = await Promise.all(LEVELS.map((pl) => inspectionStage(pl)));

/** Printable, single-line, truncated. */
function show(s: string, n = 90): string {
  const t = s.replace(/[\r\n\t]+/g, ' ').replace(/[\u0000-\u001f\u007f]/g, '?');
  return JSON.stringify(t.length > n ? `${t.slice(0, n)}…` : t);
}

type Kind = 'requests' | 'fields' | 'descriptions';
const KINDS: readonly Kind[] = ['requests', 'fields', 'descriptions'];
interface Row {
  doc: string;
  kind: Kind;
  total: number;
  /** Values inspected (locations with a value), for the requests table. */
  values: number;
  blocked: number[];
  /** Raw requests for ModSecurity (with --crs). */
  raws?: Buffer[];
  /** Blocked by CRS at PL1 and PL2 (with --crs). */
  crs?: [number, number];
}
interface Blocked {
  doc: string;
  kind: string;
  /** Lowest level at which it is blocked, and the levels it is blocked at. */
  first: number;
  levels: number[];
  what: string;
  outcome: Outcome;
  values: Map<string, string> | undefined;
  text?: string;
  /** For a description: the shortest run of its words still blocked (with --list). */
  fragment?: string;
}
const rows: Row[] = [];
const blockedAll: Blocked[] = [];

for (const f of files) {
  const text = readFileSync(join(dir, f), 'utf8');
  const doc = (f.endsWith('.json') ? JSON.parse(text) : parseYaml(text, { maxAliasCount: 1000 })) as Record<string, unknown>;
  const reqs: ExampleRequest[] = extractRequests(doc);
  const descs: Description[] = extractDescriptions(doc);
  const fields = extractFieldValues(doc);
  for (const kind of KINDS) {
    type Item = { what: string; req: StageRequest; values: Map<string, string> | undefined; text?: string; field?: FieldValue };
    const items: Item[] =
      kind === 'requests'
        ? reqs.map((r) => ({ what: r.operation, req: r, values: r.values }))
        : kind === 'fields'
          ? fields.map((v) => {
              const req = fieldRequest(v);
              return { what: `${v.operation} ${v.in}:${v.name}`, req, values: new Map([[req.location, v.value]]), field: v };
            })
          : descs.map((d) => ({ what: d.pointer, req: textRequest(d.text), values: undefined, text: d.text }));
    const row: Row = {
      doc: f,
      kind,
      total: items.length,
      values: items.reduce((a, it) => a + (it.values?.size ?? 1), 0),
      blocked: LEVELS.map(() => 0),
      raws: crsDir === undefined ? undefined : items.map((it) => rawRequest(it.req)),
    };
    for (const it of items) {
      const outs: Outcome[] = [];
      for (const st of stages) outs.push(await runStage(st, it.req));
      const levels = LEVELS.filter((_, i) => (outs[i] as Outcome).blocked);
      levels.forEach((pl) => {
        row.blocked[pl - 1] = (row.blocked[pl - 1] as number) + 1;
      });
      if (levels.length > 0) {
        const first = levels[0] as number;
        blockedAll.push({ doc: f, kind, first, levels: [...levels], what: it.what, outcome: outs[first - 1] as Outcome, values: it.values, text: it.text });
      } else if (vendorOut !== undefined && VENDOR_DOCS.has(f)) {
        // candidates for the vendored regression sample: passing values with punctuation a detector looks at
        if (it.field && vendorable(it.field.value, 3, 300))
          fieldPool.push({ source: `${f} ${it.field.operation}`, in: it.field.in, name: it.field.name, value: it.field.value });
        if (kind === 'descriptions' && it.text !== undefined && vendorable(it.text, 40, 600)) prosePool.push({ source: `${f} ${it.what}`, text: it.text });
      }
    }
    rows.push(row);
  }
}

let crsNote = '';
if (crsDir !== undefined) {
  const ng = await startNginx(resolve(crsDir), [API_METHODS]);
  if (typeof ng === 'string') crsNote = `ModSecurity/CRS not measured: ${ng}`;
  else {
    try {
      for (const r of rows) {
        const [a, b] = [
          await runAll(
            (r.raws ?? []).map((raw) => ({ raw })),
            ng.pl1,
          ),
          await runAll(
            (r.raws ?? []).map((raw) => ({ raw })),
            ng.pl2,
          ),
        ];
        r.crs = [a.filter((x) => x.status >= 400).length, b.filter((x) => x.status >= 400).length];
      }
    } finally {
      ng.proc.kill('SIGTERM');
    }
  }
}

const pct = (n: number, d: number): string => (d === 0 ? '   -  ' : `${((100 * n) / d).toFixed(1).padStart(5)}%`);
const TITLES: Record<Kind, string> = {
  requests: 'Operation example requests, one per operation and named body example (every one legitimate: a block is a false positive)',
  fields: 'Field values: every distinct enum member, example and default of a request field, one request each (a block is a false positive)',
  descriptions: 'Free-text bodies: the documents\' description fields as {"text": ...} (Markdown prose, some with code samples)',
};
for (const kind of KINDS) {
  console.log(`\n${TITLES[kind]}`);
  const withCrs = rows.some((r) => r.crs !== undefined);
  console.log(
    `${'document'.padEnd(14)} | ${kind.padEnd(12)} | ${'values'.padStart(6)} | ${LEVELS.map((pl) => `PL${pl} blocked |  FP %  `).join(' | ')}${withCrs ? ' | CRS PL1 blocked |  FP %   | CRS PL2 blocked |  FP %  ' : ''}`,
  );
  const sel = rows.filter((r) => r.kind === kind);
  const total: Row = { doc: 'all', kind, total: 0, values: 0, blocked: LEVELS.map(() => 0), crs: withCrs ? [0, 0] : undefined };
  for (const r of [...sel, total]) {
    if (r !== total) {
      total.total += r.total;
      total.values += r.values;
      r.blocked.forEach((b, i) => {
        total.blocked[i] = (total.blocked[i] as number) + b;
      });
      if (total.crs && r.crs) total.crs = [total.crs[0] + r.crs[0], total.crs[1] + r.crs[1]];
    }
    const crsCols = r.crs ? ` | ${r.crs.map((b) => `${String(b).padStart(15)} | ${pct(b, r.total)}`).join(' | ')}` : '';
    console.log(
      `${r.doc.padEnd(14)} | ${String(r.total).padStart(12)} | ${String(r.values).padStart(6)} | ${r.blocked.map((b) => `${String(b).padStart(11)} | ${pct(b, r.total)}`).join(' | ')}${crsCols}`,
    );
  }
}

if (crsNote) console.log(`\n${crsNote}`);
const nonMonotone = blockedAll.filter((b) => b.levels.length !== LEVELS.length - b.first + 1);
if (nonMonotone.length > 0) console.log(`\nwarning: ${nonMonotone.length} request(s) blocked at a level but not at a higher one`);

if (list) {
  for (const kind of KINDS) {
    console.log(`\nBlocked ${kind} (first level at which each is blocked):`);
    for (const b of blockedAll.filter((x) => x.kind === kind).sort((x, y) => x.first - y.first || x.doc.localeCompare(y.doc))) {
      console.log(`PL${b.first} ${b.doc} ${b.what}  [${b.outcome.status} ${b.outcome.code}]`);
      for (const h of b.outcome.hits) {
        const v = b.values?.get(h.location);
        console.log(`    ${h.detector} ${h.rule} @ ${h.location}${v !== undefined ? `  value=${show(v)}` : ''}  snippet=${show(h.snippet, 60)}`);
      }
      if (b.text !== undefined)
        console.log(`    minimal fragment: ${show((b.fragment = await minimalFragment(stages[b.first - 1] as RequestStage, b.text)), 160)}`);
    }
  }
}

if (vendorOut !== undefined) {
  // a deterministic sample (FNV-1a order) of values that pass at every level: the regression fixture
  const pick = <T>(pool: T[], key: (x: T) => string, n: number): T[] =>
    pool
      .map((x) => ({ x, h: fnv1a(key(x)) }))
      .sort((a, b) => a.h - b.h)
      .slice(0, n)
      .map((e) => e.x);
  const fields = pick(fieldPool, (x) => x.source + x.name + x.value, 150);
  const prose = pick(prosePool, (x) => x.text, 60);
  writeFileSync(vendorOut, `${JSON.stringify({ fields, prose }, null, 1)}\n`);
  console.log(`\nvendored ${fields.length} of ${fieldPool.length} field values and ${prose.length} of ${prosePool.length} descriptions to ${vendorOut}`);
}

if (jsonOut !== undefined) {
  writeFileSync(
    jsonOut,
    JSON.stringify(
      {
        rows,
        blocked: blockedAll.map((b) => ({
          doc: b.doc,
          kind: b.kind,
          first: b.first,
          levels: b.levels,
          what: b.what,
          status: b.outcome.status,
          code: b.outcome.code,
          hits: b.outcome.hits.map((h) => ({ ...h, value: b.values?.get(h.location) })),
          fragment: b.fragment,
          text: b.text,
        })),
      },
      null,
      1,
    ),
  );
}
