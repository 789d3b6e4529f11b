/**
 * Speed of the inspection stage on JSON bodies of 1 KB, 10 KB, 100 KB and 1 MB (realistic API
 * payloads: records with names, e-mails, free text, URLs, numbers and nested arrays; no attacks, so
 * every leaf is inspected). Prints the median and p99 time per request and the cost per KB.
 * Target (issue 7): 10 KB median <= 100 µs; cost linear in size.
 *
 * Usage: node bench/inspection/speed.ts [--paranoia 2]
 */
import type { IncomingMessage } from 'node:http';
import { inspectionControl } from '../../src/controls/inspection/index.ts';
import { RequestContext } from '../../src/pipeline/context.ts';
import type { RequestStage } from '../../src/pipeline/stage.ts';
import { MemoryStore } from '../../src/state/memory.ts';

const pl = Number(process.argv[process.argv.indexOf('--paranoia') + 1] ?? 1) || 1;
const WORDS =
  'the quick brown fox jumps over lazy dog order account payment shipping address customer review great product would buy again delivery was fast and the support team helped me with my question about the invoice'.split(
    ' ',
  );
let seed = 42;
const rnd = (n: number): number => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed % n;
};
const sentence = (k: number): string => Array.from({ length: k }, () => WORDS[rnd(WORDS.length)]).join(' ');
function record(i: number): unknown {
  return {
    id: i,
    name: `${sentence(1)} ${sentence(1)}`,
    email: `user${i}@example.com`,
    url: `https://shop.example.com/products/${i}?ref=home`,
    price: rnd(100000) / 100,
    active: rnd(2) === 1,
    tags: [sentence(1), sentence(1), sentence(1)],
    comment: `${sentence(12)}. ${sentence(8)}, really.`,
    address: { street: `${rnd(200)} ${sentence(2)} Street`, city: 'Berlin', zip: String(10000 + rnd(89999)) },
  };
}
/** `JSON.stringify({ items })` for the fewest records reaching `bytes` (built in linear time). */
function bodyOf(bytes: number): Buffer {
  const parts: string[] = [];
  let len = '{"items":[]}'.length - 1; // the first record adds no comma
  for (let i = 0; ; i++) {
    const r = JSON.stringify(record(i));
    parts.push(r);
    len += r.length + 1;
    if (len >= bytes) break;
  }
  return Buffer.from(`{"items":[${parts.join(',')}]}`);
}

const inst = await inspectionControl.create(inspectionControl.schema.parse({ paranoia_level: pl }), {
  apiName: 'bench',
  configDir: '.',
  store: new MemoryStore(),
  emit() {},
  log: { info() {}, warn() {}, error() {} },
});
const stage = (inst.request as RequestStage[])[0] as RequestStage;

async function measure(body: Buffer, iterations: number): Promise<{ median: number; p99: number }> {
  const headers = { host: 'api.test', 'content-type': 'application/json', 'content-length': String(body.length), 'user-agent': 'bench/1.0' };
  const req = { headers, rawHeaders: Object.entries(headers).flat() } as unknown as IncomingMessage;
  const access = { buffered: body as Buffer | undefined, read: async () => body };
  const times: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const ctx = new RequestContext(
      {
        id: 'b',
        req,
        method: 'POST',
        target: '/orders?page=2&sort=date',
        clientIp: '127.0.0.1',
        peerIp: '127.0.0.1',
        scheme: 'http',
        host: 'api.test',
        apiName: 'bench',
        body: access,
        emit() {},
        signal: new AbortController().signal,
      },
      16 << 20,
    );
    const t0 = performance.now();
    const v = await stage.run(ctx);
    times.push(performance.now() - t0);
    if (v) throw new Error(`benign body rejected: ${v.problem.code} ${JSON.stringify(v.details)}`);
  }
  times.sort((a, b) => a - b);
  return { median: times[Math.floor(times.length / 2)] as number, p99: times[Math.floor(times.length * 0.99)] as number };
}

console.log(`inspection stage, paranoia level ${pl}, JSON bodies (Node ${process.version})`);
console.log('size     | bytes     | median µs | p99 µs   | µs per KB (median)');
for (const [label, size, iters] of [
  ['1 KB', 1024, 20000],
  ['10 KB', 10 * 1024, 5000],
  ['100 KB', 100 * 1024, 500],
  ['1 MB', 1024 * 1024, 60],
] as const) {
  const body = bodyOf(size);
  await measure(body, Math.min(iters, 200)); // warm-up
  const r = await measure(body, iters);
  console.log(
    `${label.padEnd(8)} | ${String(body.length).padEnd(9)} | ${(r.median * 1000).toFixed(1).padStart(9)} | ${(r.p99 * 1000).toFixed(1).padStart(8)} | ${((r.median * 1000) / (body.length / 1024)).toFixed(2)}`,
  );
}
