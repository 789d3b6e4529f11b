/**
 * Regression tests over the vendored sample of the OWASP CRS corpus (test/fixtures/crs, Apache-2.0):
 * each request is sent as raw bytes over TCP to a real HTTP server running the inspection stage.
 * The expected figures are the measured results at paranoia levels 1 and 2 (`PRINT_TALLY=1` prints them);
 * a change in either direction must be looked at (and the figures updated deliberately).
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type CorpusCase, loadCorpus } from '../../../bench/inspection/corpus.ts';
import { inspectionControl } from '../../../src/controls/inspection/index.ts';
import { RequestContext } from '../../../src/pipeline/context.ts';
import { Problem } from '../../../src/pipeline/problem.ts';
import type { RequestStage } from '../../../src/pipeline/stage.ts';
import { MemoryStore } from '../../../src/state/memory.ts';

const FIXTURES = fileURLToPath(new URL('../../fixtures/crs', import.meta.url));

async function startStageServer(paranoia: number): Promise<Server> {
  const inst = await inspectionControl.create(inspectionControl.schema.parse({ paranoia_level: paranoia }), {
    apiName: 'crs',
    configDir: '.',
    store: new MemoryStore(),
    emit() {},
    log: { info() {}, warn() {}, error() {} },
  });
  const stage = (inst.request as RequestStage[])[0] as RequestStage;
  const server = createServer(async (req, res) => {
    const body = {
      buffered: undefined as Buffer | undefined,
      async read() {
        const chunks: Buffer[] = [];
        for await (const c of req) chunks.push(c as Buffer);
        body.buffered = Buffer.concat(chunks);
        return body.buffered;
      },
    };
    const ctx = new RequestContext(
      {
        id: 'x',
        req,
        method: req.method ?? 'GET',
        target: req.url ?? '/',
        clientIp: '127.0.0.1',
        peerIp: '127.0.0.1',
        scheme: 'http',
        host: 'localhost',
        apiName: 'crs',
        body,
        emit() {},
        signal: new AbortController().signal,
      },
      1 << 20,
    );
    let status = 200;
    try {
      status = (await stage.run(ctx))?.problem.status ?? 200;
    } catch (e) {
      status = e instanceof Problem ? e.status : 500;
    }
    res.writeHead(status, { connection: 'close' }).end();
    req.resume();
  });
  server.on('clientError', (_e, sock) => sock.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return server;
}

function send(port: number, raw: Buffer): Promise<number> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1', () => s.write(raw));
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(buf);
      if (m) {
        s.destroy();
        resolve(Number(m[1]));
      }
    });
    s.on('error', () => resolve(0));
    s.on('close', () => resolve(0));
  });
}

type Tally = { attacks: number; detected: number; mustPass: number; falsePositives: number };

/**
 * Expected figures per rule file at each paranoia level (measured; see bench/inspection/crs.ts for
 * the whole corpus). Paranoia level 2 is where Rampart meets the target (detection at
 * least CRS PL2's, false positives no more than CRS PL1's).
 */
const EXPECTED: Record<number, Record<string, Tally>> = {
  1: {
    // the 21 "must-pass" cases blocked under 932230 are command injections themselves (`;top`, `;vi -c:!pwd`,
    // `;cat /path/file.gz`, `` `cut x` ``, wget/curl chains); the corpus marks them must-pass only because
    // they test that rule 932230 itself stays quiet (other CRS rules block 17 of them at paranoia level 1)
    '930100': { attacks: 5, detected: 5, mustPass: 0, falsePositives: 0 },
    '930110': { attacks: 9, detected: 9, mustPass: 4, falsePositives: 0 },
    '930120': { attacks: 13, detected: 12, mustPass: 4, falsePositives: 0 },
    '932200': { attacks: 16, detected: 14, mustPass: 0, falsePositives: 0 },
    '932230': { attacks: 28, detected: 28, mustPass: 39, falsePositives: 21 },
    '932270': { attacks: 8, detected: 0, mustPass: 7, falsePositives: 0 },
    '941100': { attacks: 5, detected: 5, mustPass: 2, falsePositives: 1 },
    '941110': { attacks: 12, detected: 12, mustPass: 1, falsePositives: 1 },
    '941120': { attacks: 17, detected: 11, mustPass: 35, falsePositives: 0 },
    '941181': { attacks: 5, detected: 0, mustPass: 0, falsePositives: 0 },
    '941310': { attacks: 5, detected: 5, mustPass: 8, falsePositives: 0 },
    '942100': { attacks: 15, detected: 15, mustPass: 0, falsePositives: 0 },
    '942120': { attacks: 42, detected: 14, mustPass: 3, falsePositives: 1 },
    '942130': { attacks: 6, detected: 1, mustPass: 5, falsePositives: 0 },
    '942490': { attacks: 23, detected: 7, mustPass: 0, falsePositives: 0 },
  },
  2: {
    '930100': { attacks: 5, detected: 5, mustPass: 0, falsePositives: 0 },
    '930110': { attacks: 9, detected: 9, mustPass: 4, falsePositives: 0 },
    '930120': { attacks: 13, detected: 13, mustPass: 4, falsePositives: 0 },
    '932200': { attacks: 16, detected: 16, mustPass: 0, falsePositives: 0 },
    '932230': { attacks: 28, detected: 28, mustPass: 39, falsePositives: 25 },
    '932270': { attacks: 8, detected: 8, mustPass: 7, falsePositives: 2 },
    '941100': { attacks: 5, detected: 5, mustPass: 2, falsePositives: 1 },
    '941110': { attacks: 12, detected: 12, mustPass: 1, falsePositives: 1 },
    '941120': { attacks: 17, detected: 17, mustPass: 35, falsePositives: 1 },
    '941181': { attacks: 5, detected: 5, mustPass: 0, falsePositives: 0 },
    '941310': { attacks: 5, detected: 5, mustPass: 8, falsePositives: 0 },
    '942100': { attacks: 15, detected: 15, mustPass: 0, falsePositives: 0 },
    '942120': { attacks: 42, detected: 42, mustPass: 3, falsePositives: 1 },
    '942130': { attacks: 6, detected: 6, mustPass: 5, falsePositives: 0 },
    '942490': { attacks: 23, detected: 20, mustPass: 0, falsePositives: 0 },
  },
};

for (const pl of [1, 2]) {
  describe(`CRS corpus sample (paranoia level ${pl})`, () => {
    let server: Server;
    let cases: CorpusCase[];
    const statuses = new Map<string, number>();
    before(async () => {
      server = await startStageServer(pl);
      cases = loadCorpus(FIXTURES);
      const port = (server.address() as AddressInfo).port;
      for (const c of cases) statuses.set(c.id, await send(port, c.raw));
    });
    after(() => server.close());

    const tally = (rule: string): Tally => {
      const mine = cases.filter((c) => c.id.startsWith(`${rule}-`));
      const blocked = (c: CorpusCase) => (statuses.get(c.id) ?? 0) >= 400;
      return {
        attacks: mine.filter((c) => c.attack).length,
        detected: mine.filter((c) => c.attack && blocked(c)).length,
        mustPass: mine.filter((c) => !c.attack).length,
        falsePositives: mine.filter((c) => !c.attack && blocked(c)).length,
      };
    };

    for (const [rule, want] of Object.entries(EXPECTED[pl] as Record<string, Tally>)) {
      it(`rule file ${rule}: ${want.detected}/${want.attacks} attacks blocked, ${want.falsePositives}/${want.mustPass} must-pass blocked`, () => {
        assert.deepEqual(tally(rule), want);
      });
    }
    it('answered every request', () => assert.equal([...statuses.values()].filter((s) => s === 0).length, 0));
    if (process.env.PRINT_TALLY) {
      it('prints the tallies', () => {
        const ids = [...new Set(cases.map((c) => c.id.split('-')[0] as string))].sort();
        console.log(JSON.stringify(Object.fromEntries(ids.map((id) => [id, tally(id)]))));
      });
    }
  });
}
