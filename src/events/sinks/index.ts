/** Opens the event sinks named in the configuration. */
import { resolve } from 'node:path';
import type { EventSinkConfig } from '../../config/schema.ts';
import type { EventSink } from '../bus.ts';
import { PinoSink } from './log.ts';
import { SqliteSink } from './sqlite.ts';

/**
 * Opens one sink per configuration entry; relative paths resolve against `baseDir`.
 * @throws when a file or database cannot be opened (a configuration error).
 */
export function openSinks(configs: readonly EventSinkConfig[], baseDir: string): EventSink[] {
  return configs.map((c): EventSink => {
    if (c.type === 'file') return new PinoSink(resolve(baseDir, c.path));
    if (c.type === 'sqlite') return new SqliteSink(resolve(baseDir, c.path));
    return new PinoSink(1);
  });
}
