/**
 * A `rampart` entry point with only the identity commands, for tests (until src/cli/main.ts
 * registers them): `node cli-entry.ts keys ...` / `tokens ...`.
 */
import { Command } from 'commander';
import { register as registerKeys } from '../../../src/cli/keys.ts';
import { register as registerTokens } from '../../../src/cli/tokens.ts';

const program = new Command().name('rampart');
registerKeys(program);
registerTokens(program);
await program.parseAsync(process.argv);
