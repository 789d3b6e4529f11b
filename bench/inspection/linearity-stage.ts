/**
 * Exploratory (not a test): the whole inspection stage on pathological bodies of n and 4n bytes —
 * JSON, XML (many siblings, deep nesting, text joined across children), multipart and form bodies —
 * printing the time ratio (~4 linear, ~16 quadratic). Shapes that grow super-linearly become cases
 * in test/controls/inspection/linearity.test.ts.
 *
 * Usage: node bench/inspection/linearity-stage.ts [--n 100000] [--paranoia 1]
 */
import type { IncomingMessage } from 'node:http';
import { inspectionControl } from '../../src/controls/inspection/index.ts';
import { RequestContext } from '../../src/pipeline/context.ts';
import type { RequestStage } from '../../src/pipeline/stage.ts';
import { MemoryStore } from '../../src/state/memory.ts';

const argv = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? dflt : (process.argv[i + 1] as string);
};
const N = Number(argv('n', '100000'));
const pl = Number(argv('paranoia', '1'));

const inst = await inspectionControl.create(inspectionControl.schema.parse({ paranoia_level: pl, mode: 'monitor' }), {
  apiName: 'api',
  configDir: '.',
  store: new MemoryStore(),
  emit() {},
  log: { info() {}, warn() {}, error() {} },
});
const stage = (inst.request as RequestStage[])[0] as RequestStage;

async function run(body: Buffer, type: string): Promise<string> {
  const headers: Record<string, string> = { host: 'api.test', 'content-length': String(body.length), 'content-type': type };
  const access = {
    buffered: undefined as Buffer | undefined,
    async read() {
      access.buffered = body;
      return body;
    },
  };
  const req = { headers, rawHeaders: Object.entries(headers).flat() } as unknown as IncomingMessage;
  const ctx = new RequestContext(
    {
      id: 'r1',
      req,
      method: 'POST',
      target: '/',
      clientIp: '127.0.0.1',
      peerIp: '127.0.0.1',
      scheme: 'http',
      host: 'api.test',
      apiName: 'api',
      body: access,
      emit: () => {},
      signal: new AbortController().signal,
    },
    64 * 1024 * 1024,
  );
  const v = (await stage.run(ctx)) as { problem?: { code?: string; status?: number } } | undefined;
  return v === undefined ? 'pass' : String(v.problem?.code ?? v.problem?.status);
}

const rep = (u: string, n: number): string => u.repeat(Math.max(1, Math.floor(n / u.length)));
const B = 'XyZb0undary';
const shapes: [string, string, (n: number) => string][] = [
  ['json string <x=', 'application/json', (n) => `{"c":"${rep('<x=', n)}"}`],
  ['json string <a =', 'application/json', (n) => `{"c":"${rep('<a =', n)}"}`],
  ['json many keys', 'application/json', (n) => `{${Array.from({ length: Math.min(900, n / 40) }, (_, i) => `"k${i}":"${rep('<x=', n / 1000)}"`).join(',')}}`],
  ['json array of <x=', 'application/json', (n) => `[${Array.from({ length: Math.min(9000, n / 12) }, () => '"<x=<x="').join(',')}]`],
  ['json deep arrays', 'application/json', (n) => `${'['.repeat(30)}"${rep('<x=', n)}"${']'.repeat(30)}`],
  ['json escapes', 'application/json', (n) => `{"c":"${rep('\\u003cx=', n)}"}`],
  ['xml siblings', 'application/xml', (n) => `<r>${rep('<a>x</a>', n)}</r>`],
  ['xml siblings attr', 'application/xml', (n) => `<r>${rep('<a b="<x="/>', n)}</r>`],
  ['xml deep joined', 'application/xml', (n) => `${'<a>t'.repeat(30)}${rep('y', n)}${'</a>'.repeat(30)}`],
  ['xml joined text', 'application/xml', (n) => `<r>${rep('x<b>y</b>', n)}</r>`],
  ['xml joined <x=', 'application/xml', (n) => `<r>${rep('&lt;x=<b/>', n)}</r>`],
  ['xml cdata joined', 'application/xml', (n) => `<r>${rep('<![CDATA[<x=]]>a', n)}</r>`],
  ['xml nested joined', 'application/xml', (n) => `<r>${'<a>t'.repeat(30)}${rep('<b>&lt;x=</b>u', n)}${'</a>'.repeat(30)}</r>`],
  [
    'form many fields',
    'application/x-www-form-urlencoded',
    (n) => Array.from({ length: Math.min(900, n / 20) }, (_, i) => `f${i}=${rep('%3cx=', n / 1000)}`).join('&'),
  ],
  ['form one field', 'application/x-www-form-urlencoded', (n) => `c=${rep('%3cx%3d', n)}`],
  ['form ampersands', 'application/x-www-form-urlencoded', (n) => rep('&', n)],
  ['form = runs', 'application/x-www-form-urlencoded', (n) => `a${rep('=', n)}`],
  [
    'multipart parts',
    `multipart/form-data; boundary=${B}`,
    (n) =>
      `${Array.from({ length: Math.min(900, n / 100) }, (_, i) => `--${B}\r\nContent-Disposition: form-data; name="f${i}"\r\n\r\n${rep('<x=', 60)}\r\n`).join('')}--${B}--\r\n`,
  ],
  [
    'multipart one part',
    `multipart/form-data; boundary=${B}`,
    (n) => `--${B}\r\nContent-Disposition: form-data; name="f"\r\n\r\n${rep('<x=', n)}\r\n--${B}--\r\n`,
  ],
  [
    'multipart near-boundary',
    `multipart/form-data; boundary=${B}`,
    (n) => `--${B}\r\nContent-Disposition: form-data; name="f"\r\n\r\n${rep(`\r\n--${B.slice(0, 6)}`, n)}\r\n--${B}--\r\n`,
  ],
  [
    'multipart header run',
    `multipart/form-data; boundary=${B}`,
    (n) => `--${B}\r\nContent-Disposition: form-data; name="f"${rep('; a="<x="', n)}\r\n\r\nv\r\n--${B}--\r\n`,
  ],
  ['text/plain <x=', 'text/plain', (n) => rep('<x=', n)],
];

for (const [name, type, f] of shapes) {
  const time = async (n: number): Promise<[number, string]> => {
    const body = Buffer.from(f(n));
    let best = 1e9;
    let out = '';
    for (let i = 0; i < 2; i++) {
      const t = process.hrtime.bigint();
      out = await run(body, type);
      best = Math.min(best, Number(process.hrtime.bigint() - t) / 1e6);
    }
    return [best, out];
  };
  await time(N / 4);
  const [a, ra] = await time(N);
  const [b, rb] = await time(4 * N);
  console.log(
    `${name.padEnd(24)} ${a.toFixed(1).padStart(8)} -> ${b.toFixed(1).padStart(8)} ms  x${(b / Math.max(a, 0.5)).toFixed(1).padEnd(5)} ${ra} / ${rb}`,
  );
}
