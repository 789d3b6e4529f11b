/**
 * `contract` benchmark (in-process, no network):
 * 1. validation overhead per request of the contract request check (route, parameters, JSON body
 *    against its compiled schema) for a small (~100 B) and a ~10 KB body (Swagger Petstore
 *    `addPet`), and of the response filter (strip undeclared properties) on a demo user list;
 * 2. the time to load and compile each document of an OpenAPI corpus directory, the largest one
 *    (by file size) marked; target: the largest under 3 s.
 *
 * Usage: `node bench/contract/validate.ts [CORPUS_DIR]` (default `../shared/corpora/openapi`).
 * Prints a table and one JSON line (`{"contract": {...}}`) with the figures.
 */
import { readdirSync, statSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { contractSchema, createContract } from '../../src/controls/contract/index.ts';
import { UpstreamResponse } from '../../src/gateway/body.ts';
import { compileDocument } from '../../src/openapi/compile.ts';
import { loadOpenApi } from '../../src/openapi/load.ts';
import { RequestContext } from '../../src/pipeline/context.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function ctxOf(method: string, target: string, body?: Buffer): RequestContext {
  const headers: Record<string, string> = { host: 'bench', 'content-type': 'application/json' };
  if (body) headers['content-length'] = String(body.length);
  const req = { headers, rawHeaders: [], method, url: target } as unknown as IncomingMessage;
  return new RequestContext(
    {
      id: 'b',
      req,
      method,
      target,
      clientIp: '127.0.0.1',
      peerIp: '127.0.0.1',
      scheme: 'http',
      host: 'bench',
      apiName: 'bench',
      body: { read: async () => body ?? Buffer.alloc(0), buffered: body },
      emit: () => {},
      signal: new AbortController().signal,
    },
    1 << 20,
  );
}

/** Runs `fn` for about `ms` milliseconds after a warm-up; returns microseconds per call (median of 5 rounds). */
async function perCall(fn: () => Promise<unknown>, ms = 400): Promise<number> {
  for (let i = 0; i < 2000; i++) await fn();
  const rounds: number[] = [];
  for (let r = 0; r < 5; r++) {
    let n = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < ms) {
      for (let i = 0; i < 100; i++) await fn();
      n += 100;
    }
    rounds.push(((performance.now() - t0) * 1000) / n);
  }
  rounds.sort((a, b) => a - b);
  return rounds[2] as number;
}

const corpus = resolve(process.argv[2] ?? join(ROOT, '../shared/corpora/openapi'));

const pet = await createContract(contractSchema.parse({ openapi: join(ROOT, 'test/fixtures/openapi/petstore.yaml') }), ROOT);
const small = Buffer.from(
  JSON.stringify({ id: 10, name: 'doggie', category: { id: 1, name: 'Dogs' }, photoUrls: ['https://example.com/a.jpg'], status: 'available' }),
);
const bigPet = {
  id: 10,
  name: 'doggie',
  category: { id: 1, name: 'Dogs' },
  photoUrls: [] as string[],
  tags: [] as { id: number; name: string }[],
  status: 'available',
};
while (JSON.stringify(bigPet).length < 10 * 1024) {
  const i = bigPet.photoUrls.length;
  bigPet.photoUrls.push(`https://images.example.com/pets/doggie/${i}.jpg`);
  bigPet.tags.push({ id: i, name: `tag-${i}` });
}
const big = Buffer.from(JSON.stringify(bigPet));
for (const b of [small, big]) {
  const v = await pet.checkRequest(ctxOf('POST', '/pet', b));
  if (v !== undefined) throw new Error(`bench body rejected: ${JSON.stringify(v.problem.toBody())}`);
}
const routeOnly = await perCall(() => pet.checkRequest(ctxOf('GET', '/store/order/42')));
const smallUs = await perCall(() => pet.checkRequest(ctxOf('POST', '/pet', small)));
const bigUs = await perCall(() => pet.checkRequest(ctxOf('POST', '/pet', big)));

const demo = await createContract(contractSchema.parse({ openapi: join(ROOT, 'examples/openapi.yaml') }), ROOT);
const leaked = {
  id: 1002,
  name: 'Ada',
  email: 'ada@example.com',
  phone: null,
  address: null,
  role: 'customer',
  password_hash: '$2b$12$abc',
  ssn: '123-45-6789',
};
const listBody = Buffer.from(JSON.stringify({ items: new Array(20).fill(leaked), total: 20, limit: 20, offset: 0 }));
const filterUs = await perCall(async () => {
  const ctx = ctxOf('GET', '/users?limit=20');
  await demo.checkRequest(ctx);
  const res = new UpstreamResponse(200, { 'content-type': 'application/json', 'content-length': String(listBody.length) }, Readable.from([listBody]));
  await demo.checkResponse(ctx, res);
});

const compile: { file: string; bytes: number; operations: number; load_ms: number; compile_ms: number; cpu_ms: number }[] = [];
let files: string[] = [];
try {
  files = readdirSync(corpus).filter((f) => /\.(json|ya?ml)$/.test(f));
} catch {
  console.error(`no corpus at ${corpus}`);
}
for (const f of files) {
  const path = join(corpus, f);
  const t0 = performance.now();
  const loaded = await loadOpenApi(path, corpus);
  const t1 = performance.now();
  const c0 = process.cpuUsage();
  const doc = compileDocument(loaded, { validators: true, closeRequest: true, closeResponse: true, rejectReadOnly: true });
  const cu = process.cpuUsage(c0);
  compile.push({
    file: f,
    bytes: statSync(path).size,
    operations: doc.operations.length,
    load_ms: Math.round(t1 - t0),
    compile_ms: Math.round(performance.now() - t1),
    cpu_ms: Math.round((cu.user + cu.system) / 1000),
  });
}
compile.sort((a, b) => b.bytes - a.bytes);

const r1 = (n: number) => Math.round(n * 10) / 10;
console.log('contract validation overhead (µs per request, in-process, median of 5 rounds):');
console.log(`  route + parameters only (GET /store/order/{orderId})  ${r1(routeOnly)} µs`);
console.log(`  POST /pet, ${small.length} B JSON body                      ${r1(smallUs)} µs`);
console.log(`  POST /pet, ${big.length} B JSON body                    ${r1(bigUs)} µs`);
console.log(`  response filter, 20 users with 3 undeclared fields each   ${r1(filterUs)} µs (request check included)`);
console.log(`\ncompile time per document (${corpus}), largest first; target for the largest < 3000 ms:`);
for (const c of compile)
  console.log(
    `  ${c.file.padEnd(14)} ${(c.bytes / 1024).toFixed(0).padStart(6)} KiB ${String(c.operations).padStart(5)} ops  load ${String(c.load_ms).padStart(5)} ms  compile ${String(c.compile_ms).padStart(5)} ms (CPU ${c.cpu_ms} ms)`,
  );
console.log(
  JSON.stringify({
    contract: {
      route_us: r1(routeOnly),
      small_body_bytes: small.length,
      small_body_us: r1(smallUs),
      big_body_bytes: big.length,
      big_body_us: r1(bigUs),
      response_filter_us: r1(filterUs),
      compile,
      largest_ok:
        compile.length === 0 || (compile[0] as { load_ms: number; compile_ms: number }).load_ms + (compile[0] as { compile_ms: number }).compile_ms < 3000,
    },
  }),
);
