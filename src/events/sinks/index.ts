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
  return configs.map((c) => {
    switch (c.type) {
      case 'stdout':
        return new PinoSink(1);
      case 'file':
        return new PinoSink(resolve(baseDir, c.path));
      case 'sqlite':
        return new SqliteSink(resolve(baseDir, c.path));
    }
  });
}
