#!/usr/bin/env node
// `npm test`: runs the test suite with Node's built-in runner over the TypeScript sources
// (Node >= 22.18 strips types natively). Arguments narrow the run: `npm test -- test/gateway`.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  console.error(`Node ${process.versions.node} is too old for the test suite: use Node 24 (see scripts/node24.sh).`);
  process.exit(1);
}

function files(p) {
  const st = statSync(p);
  if (st.isFile()) return p.endsWith('.test.ts') ? [p] : [];
  return readdirSync(p)
    .sort()
    .flatMap((n) => (n === 'node_modules' || n === 'fixtures' ? [] : files(join(p, n))));
}

const roots = process.argv.slice(2).length ? process.argv.slice(2) : ['test', 'packages'];
const list = roots.flatMap((r) => {
  try {
    return files(r);
  } catch {
    return [];
  }
});
if (list.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
const concurrency = process.env.TEST_CONCURRENCY ?? '2';
const r = spawnSync(process.execPath, ['--test', `--test-concurrency=${concurrency}`, '--test-timeout=120000', ...list], { stdio: 'inherit' });
process.exit(r.status ?? 1);
