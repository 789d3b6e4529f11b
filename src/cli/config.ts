/** `rampart config check FILE` and `rampart config schema`. */
import type { Command } from 'commander';
import { ConfigError, formatIssue, loadConfigFile } from '../config/load.ts';
import { configJsonSchema } from '../config/schema.ts';
import { compileConfig, prepareConfig } from '../gateway/compile.ts';
import { MemoryStore } from '../state/memory.ts';

/** Validates and compiles a file; returns the issues as printable lines (empty when valid). */
export async function checkConfigFile(file: string): Promise<string[]> {
  try {
    const l = await loadConfigFile(file);
    const { dirname, resolve } = await import('node:path');
    const store = new MemoryStore();
    const configDir = dirname(resolve(file));
    const compiled = await compileConfig(prepareConfig(l.config, configDir), {
      file,
      configDir,
      locate: l.locate,
      store,
      emit: () => {},
      log: { info() {}, warn() {}, error() {} },
    });
    await compiled.close();
    await store.close();
    return [];
  } catch (e) {
    if (e instanceof ConfigError) return e.issues.map(formatIssue);
    return [`${file}: ${(e as Error).message}`];
  }
}

/** Registers `config check` and `config schema`. */
export function register(program: Command): void {
  const config = program.command('config').description('validate configuration, print its JSON Schema');
  config
    .command('check')
    .argument('<file>', 'configuration file')
    .description('validate and compile a configuration file; exit 1 with every error on failure')
    .action(async (file: string) => {
      const issues = await checkConfigFile(file);
      if (issues.length) {
        for (const i of issues) process.stderr.write(`${i}\n`);
        process.exitCode = 1;
      } else process.stdout.write(`${file}: ok\n`);
    });
  config
    .command('schema')
    .description('print the configuration JSON Schema (2020-12)')
    .action(() => {
      process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
    });
}
