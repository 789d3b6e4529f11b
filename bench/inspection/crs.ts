/**
 * Corpus measurement: runs the OWASP CRS regression corpus through Rampart's inspection control and,
 * in the same command, through nginx + ModSecurity v3 + CRS 4 at paranoia levels 1 and 2 (Rampart at
 * paranoia levels 1, 2 and 3), and
 * prints per attack class the detection rate on attack cases and the false-positive rate on
 * must-pass cases.
 *
 * Usage: node bench/inspection/crs.ts <corpus-dir> [--split tune|holdout|all[,...]] [--json out.json]
 *          [--cases out.json] [--only SQLI,XSS] [--misses CLASS] [--pl 1|2] [--crs-cache FILE]
 *   <corpus-dir> holds `tests/` (go-ftw YAML) and `rules/` (CRS rules); e.g. ../shared/corpora/crs
 *   --split     prints one table per named half: the corpus is split deterministically by a hash of
 *               each case id (FNV-1a 32-bit, even = tune, odd = holdout); detectors are tuned on the
 *               tune half only and the holdout half measures how well that generalises. Default all.
 *   --json      per-table summary; --cases: per-case statuses of every engine (to diff runs).
 *   --misses    lists Rampart's misses and false positives of a class, in the first half --split
 *               names (tune it with `--split tune`), at paranoia level --pl (1-3, default 1).
 *   --crs-cache reuses ModSecurity/CRS statuses saved in FILE (measured and saved when FILE does
 *               not exist): for quick iterations only; final figures are measured live.
 *
 * Every engine receives the same raw request bytes over TCP. A case counts as blocked when the
 * engine answers with a status >= 400 (ModSecurity denies with 403; Rampart with 403 or 400; a
 * server's own HTTP parser may refuse a malformed request with 400 for either engine).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { inspectionControl } from '../../src/controls/inspection/index.ts';
import type { BodyAccess } from '../../src/pipeline/context.ts';
import { RequestContext } from '../../src/pipeline/context.ts';
import { Problem } from '../../src/pipeline/problem.ts';
import type { RequestStage } from '../../src/pipeline/stage.ts';
import { MemoryStore } from '../../src/state/memory.ts';
import { type CorpusCase, fnv1a, loadCorpus } from './corpus.ts';
import { runAll, startNginx } from './modsec.ts';

const args = process.argv.slice(2);
const VALUE_OPTS = new Set(['--json', '--only', '--misses', '--split', '--cases', '--pl', '--crs-cache']);
const corpusDir = resolve(args.find((a, i) => !a.startsWith('--') && !VALUE_OPTS.has(args[i - 1] as string)) ?? '');
if (!existsSync(join(corpusDir, 'tests')) && !existsSync(corpusDir)) {
  console.error('usage: node bench/inspection/crs.ts <corpus-dir>   (holding tests/ and rules/)');
  process.exit(2);
}
const opt = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i === -1 ? undefined : args[i + 1];
};
const only = opt('--only')?.split(',');
const missesFor = opt('--misses');
const splits = (opt('--split') ?? 'all').split(',') as ('tune' | 'holdout' | 'all')[];
for (const sp of splits) if (sp !== 'tune' && sp !== 'holdout' && sp !== 'all') throw new Error(`--split: unknown half ${sp}`);
const missesPl = Number(opt('--pl') ?? 1);
const crsCache = opt('--crs-cache');

/** The half a case belongs to. */
const halfOf = (id: string): 'tune' | 'holdout' => (fnv1a(id) % 2 === 0 ? 'tune' : 'holdout');

/** A Rampart inspection stage behind a plain HTTP server (the gateway's request path, minus proxying). */
async function startRampart(paranoia: number): Promise<{ port: number; server: Server }> {
  const store = new MemoryStore({ maxKeys: 1000 } as never);
  const inst = await inspectionControl.create(inspectionControl.schema.parse({ paranoia_level: paranoia }), {
    apiName: 'bench',
    configDir: '.',
    store,
    emit() {},
    log: { info() {}, warn() {}, error() {} },
  });
  const stage = (inst.request as RequestStage[])[0] as RequestStage;
  const server = createServer({ maxHeaderSize: 65536 }, async (req: IncomingMessage, res) => {
    const ac = new AbortController();
    const body: BodyAccess & { buffered: Buffer | undefined } = {
      buffered: undefined,
      async read(max = Number.POSITIVE_INFINITY) {
        if (this.buffered) return this.buffered;
        const chunks: Buffer[] = [];
        let n = 0;
        for await (const c of req) {
          n += (c as Buffer).length;
          if (n > max) throw new Problem(413, 'body-too-large', 'Content Too Large');
          chunks.push(c as Buffer);
        }
        this.buffered = Buffer.concat(chunks);
        return this.buffered;
      },
    };
    const ctx = new RequestContext(
      {
        id: '1',
        req,
        method: req.method ?? 'GET',
        target: req.url ?? '/',
        clientIp: '127.0.0.1',
        peerIp: '127.0.0.1',
        scheme: 'http',
        host: 'localhost',
        apiName: 'bench',
        body,
        emit() {},
        signal: ac.signal,
      },
      10 * 1024 * 1024,
    );
    let status = 200;
    let reason = 'ok';
    try {
      const v = await stage.run(ctx);
      if (v) {
        status = v.problem.status;
        reason = `${v.problem.code} ${String(v.details?.detector ?? '')} ${String(v.details?.location ?? '')} ${String(v.details?.rule ?? '')}`;
      }
    } catch (e) {
      status = e instanceof Problem ? e.status : 500;
      reason = e instanceof Problem ? e.code : `internal-error ${(e as Error).message}`;
    }
    res.writeHead(status, { 'content-type': 'text/plain', connection: 'close', 'x-reason': reason.replace(/[^\x20-\x7e]/g, '?').slice(0, 200) });
    res.end();
    req.resume();
  });
  server.on('clientError', (_e, sock) => {
    if (sock.writable) sock.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nx-reason: http-parser\r\n\r\n');
    else sock.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, server };
}

const blocked = (r: { status: number }): boolean => r.status >= 400;

async function main(): Promise<void> {
  let cases = loadCorpus(corpusDir);
  if (only) cases = cases.filter((c) => only.includes(c.cls));
  const engines: { name: string; port: number }[] = [];
  const rampart = [await startRampart(1), await startRampart(2), await startRampart(3)];
  engines.push(...rampart.map((r, i) => ({ name: `Rampart PL${i + 1}`, port: r.port })));
  const crsDir = existsSync(join(corpusDir, 'rules')) ? corpusDir : resolve(corpusDir, '..');
  const results: Record<string, { status: number; reason: string }[]> = {};
  let nginxNote = '';
  let ng: Awaited<ReturnType<typeof startNginx>> = 'not started';
  if (crsCache && existsSync(crsCache)) {
    const cached = JSON.parse(readFileSync(crsCache, 'utf8')) as Record<string, Record<string, number>>;
    for (const name of ['CRS PL1', 'CRS PL2']) {
      results[name] = cases.map((c) => ({ status: cached[c.id]?.[name] ?? 0, reason: 'cached' }));
    }
    nginxNote = `CRS figures read from ${crsCache} (not measured in this run)`;
  } else {
    ng = await startNginx(crsDir);
    if (typeof ng === 'string') nginxNote = `ModSecurity/CRS not measured: ${ng}`;
    else engines.push({ name: 'CRS PL1', port: ng.pl1 }, { name: 'CRS PL2', port: ng.pl2 });
  }
  for (const e of engines) {
    const t0 = performance.now();
    results[e.name] = await runAll(cases, e.port);
    const r = results[e.name] as { status: number }[];
    const noAnswer = r.filter((x) => x.status === 0).length;
    console.error(
      `${e.name}: ${cases.length} requests in ${((performance.now() - t0) / 1000).toFixed(1)} s; ${noAnswer} without an HTTP answer (counted as passed)`,
    );
  }
  if (typeof ng !== 'string') ng.proc.kill('SIGTERM');
  for (const r of rampart) r.server.close();
  if (crsCache && !existsSync(crsCache) && results['CRS PL1']) {
    const out: Record<string, Record<string, number>> = {};
    cases.forEach((c, i) => {
      out[c.id] = {
        'CRS PL1': (results['CRS PL1'] as { status: number }[])[i]?.status ?? 0,
        'CRS PL2': (results['CRS PL2'] as { status: number }[])[i]?.status ?? 0,
      };
    });
    writeFileSync(crsCache, JSON.stringify(out));
  }
  if (results['CRS PL1'] && !engines.some((e) => e.name === 'CRS PL1')) engines.push({ name: 'CRS PL1', port: 0 }, { name: 'CRS PL2', port: 0 });
  const casesOut = opt('--cases');
  if (casesOut) {
    const out: Record<string, Record<string, number | string>> = {};
    cases.forEach((c, i) => {
      const row: Record<string, number | string> = { cls: c.cls, attack: c.attack ? 1 : 0, half: halfOf(c.id) };
      for (const e of engines) row[e.name] = (results[e.name] as { status: number }[])[i]?.status ?? 0;
      out[c.id] = row;
    });
    writeFileSync(casesOut, JSON.stringify(out, null, 1));
  }

  const classes = [...new Set(cases.map((c) => c.cls))];
  const head = ['class', 'attacks', 'must-pass', ...engines.flatMap((e) => [`${e.name} det`, `${e.name} FP`])];
  const summary: Record<string, unknown> = {};
  const pct = (a: number, b: number): string => (b === 0 ? '-' : `${((100 * a) / b).toFixed(1)}%`);
  const order = ['SQLI', 'XSS', 'RCE', 'LFI'];
  const sorted = [...order.filter((c) => classes.includes(c)), ...classes.filter((c) => !order.includes(c)).sort()];
  for (const split of splits) {
    const inSplit = (i: number): boolean => split === 'all' || halfOf((cases[i] as CorpusCase).id) === split;
    const rows: string[][] = [];
    const sum: Record<string, unknown> = {};
    const addRow = (label: string, idx0: number[]): void => {
      const idx = idx0.filter(inSplit);
      const att = idx.filter((i) => (cases[i] as CorpusCase).attack);
      const neg = idx.filter((i) => !(cases[i] as CorpusCase).attack);
      const row = [label, String(att.length), String(neg.length)];
      const s: Record<string, unknown> = { attacks: att.length, must_pass: neg.length };
      for (const e of engines) {
        const r = results[e.name] as { status: number }[];
        const det = att.filter((i) => blocked(r[i] as { status: number })).length;
        const fp = neg.filter((i) => blocked(r[i] as { status: number })).length;
        row.push(`${pct(det, att.length)} (${det})`, `${pct(fp, neg.length)} (${fp})`);
        s[e.name] = { detected: det, false_positives: fp };
      }
      rows.push(row);
      sum[label] = s;
    };
    for (const c of sorted)
      addRow(
        c,
        cases.map((x, i) => (x.cls === c ? i : -1)).filter((i) => i >= 0),
      );
    addRow(
      'TARGET (SQLI+XSS+RCE+LFI)',
      cases.map((x, i) => (order.includes(x.cls) ? i : -1)).filter((i) => i >= 0),
    );
    addRow(
      'ALL',
      cases.map((_x, i) => i),
    );
    summary[split] = sum;
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
    const line = (r: string[]): string => r.map((c, i) => c.padEnd(widths[i] as number)).join(' | ');
    console.log(
      `\nCorpus: ${corpusDir}, split ${split} (${cases.filter((_c, i) => inSplit(i)).length} request cases; det = attack cases blocked, FP = must-pass cases blocked)`,
    );
    console.log(line(head));
    console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
    for (const r of rows) console.log(line(r));
  }
  if (nginxNote) console.log(nginxNote);
  const jsonOut = opt('--json');
  if (jsonOut) writeFileSync(jsonOut, JSON.stringify(summary, null, 2));
  if (missesFor) {
    const r = results[`Rampart PL${missesPl}`] as { status: number; reason: string }[];
    const crs2 = results['CRS PL2'];
    const crs1 = results['CRS PL1'];
    const missSplit = splits[0] as string;
    for (let i = 0; i < cases.length; i++) {
      const c = cases[i] as CorpusCase;
      if (c.cls !== missesFor) continue;
      if (missSplit !== 'all' && halfOf(c.id) !== missSplit) continue;
      const ours = blocked(r[i] as { status: number });
      const fn = c.attack && !ours;
      const fp = !c.attack && ours;
      if (!fn && !fp) continue;
      const raw = c.raw.toString('latin1');
      const first = raw.slice(0, raw.indexOf('\r\n'));
      const bodyAt = raw.indexOf('\r\n\r\n');
      const hdrs = raw
        .slice(raw.indexOf('\r\n') + 2, bodyAt)
        .split('\r\n')
        .filter(
          (h) =>
            !/^(?:host|accept|accept-encoding|accept-language|content-length|connection|keep-alive|proxy-connection|content-type: application\/x-www-form-urlencoded|user-agent: owasp crs test agent)\b/i.test(
              h,
            ),
        )
        .join(' | ');
      console.log(
        `${fn ? 'MISS' : 'FP  '} ${c.id} crs1=${crs1 ? (crs1[i] as { status: number }).status : '-'} crs2=${crs2 ? (crs2[i] as { status: number }).status : '-'} ${(r[i] as { reason: string }).reason} :: ${first.slice(0, 160)} :: ${hdrs.slice(0, 160)} :: ${raw.slice(bodyAt + 4, bodyAt + 164).replace(/\r?\n/g, '\\n')}`,
      );
    }
  }
}

await main();
