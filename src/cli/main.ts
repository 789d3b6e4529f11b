#!/usr/bin/env node
/**
 * The `rampart` command line. One module per command; each exports `register(program)`.
 */
import { Command } from 'commander';
import { register as registerCa } from './ca.ts';
import { register as registerConfig } from './config.ts';
import { register as registerKeys } from './keys.ts';
import { register as registerPassport } from './passport.ts';
import { register as registerServe } from './serve.ts';
import { register as registerTokens } from './tokens.ts';

// `rampart config schema | head`: a reader that closes the pipe early ends the command quietly
// (exit 0, as for other Unix filters) instead of an unhandled EPIPE stack trace.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

const program = new Command();
program.name('rampart').description('Rampart: a zero-trust API security gateway').version('0.1.0');
registerServe(program);
registerConfig(program);
registerKeys(program);
registerTokens(program);
registerCa(program);
registerPassport(program);

await program.parseAsync(process.argv);
