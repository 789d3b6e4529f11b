/**
 * `rampart config schema | head`: the reader closes the pipe after one line; the command must
 * end quietly with status 0 (regression: an unhandled EPIPE stack trace). A shell pipeline is
 * used because it gives a real OS pipe (64 KiB buffer); the schema is ~140 KB.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { CLI } from '../helpers/gateway.ts';

test('a reader that closes stdout early ends the command with status 0 and no stack trace', async () => {
  const child = spawn('bash', ['-c', `set -o pipefail; "${process.execPath}" "${CLI}" config schema | head -n 1 >/dev/null`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c) => (stderr += c));
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  assert.equal(code, 0, stderr);
  assert.doesNotMatch(stderr, /EPIPE|Error/);
});
