/**
 * The control contract: each control folder under `src/controls/` exports one
 * {@link ControlDefinition}: its configuration schema beside its stage factory (Kong style).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { z } from 'zod';
import type { Store } from '../state/store.ts';
import type { EventInput } from '../events/event.ts';
import type { RequestStage, ResponseStage } from './stage.ts';

/** What a control's factory receives besides its own configuration. */
export interface ControlEnv {
  /** Name of the API the control is built for. */
  apiName: string;
  /** Directory of the configuration file: relative paths in control configs resolve against it. */
  configDir: string;
  /** Shared state (rate-limit cells, replay caches, revocation lists). Bounded, TTL'd. */
  store: Store;
  /** Emits a security event that belongs to no request (e.g. a JWKS refresh failure). */
  emit(event: EventInput): void;
  /**
   * Registers a read-only GET route on the admin listener (e.g. the passport JWKS at
   * `/.well-known/jwks.json`). Routes from a replaced configuration are overwritten by the new one.
   */
  addAdminRoute?(path: string, route: (req: IncomingMessage, res: ServerResponse) => void | Promise<void>): void;
  /** Structured log for operational messages (not security events). */
  log: { info(msg: string, data?: object): void; warn(msg: string, data?: object): void; error(msg: string, data?: object): void };
}

/** A built control for one API. */
export interface ControlInstance {
  request?: RequestStage[];
  response?: ResponseStage[];
  /** `undefined` when ready; otherwise why not (reported by `/readyz`). */
  notReady?(): string | undefined;
  /** Releases timers, watchers and connections when the configuration is replaced. */
  close?(): Promise<void> | void;
}

/**
 * A control: its name (the key under an API's `controls:`), its zod schema (source of the
 * TypeScript type and of the published JSON Schema) and its factory.
 */
export interface ControlDefinition<S extends z.ZodType = z.ZodType> {
  readonly name: string;
  readonly schema: S;
  /**
   * When set, the control runs on every API that does not configure it (secure by default),
   * with `schema.parse(defaultConfig)`. Configure `enabled: false` to turn it off.
   */
  readonly defaultConfig?: unknown;
  /**
   * Builds the control for one API. Runs at configuration load (compile once, run many).
   * @throws {Error} with a message naming the offending setting; the load is refused.
   */
  create(config: z.output<S>, env: ControlEnv): ControlInstance | Promise<ControlInstance>;
}

/** Identity helper that keeps the schema's inferred type when declaring a control. */
export function defineControl<S extends z.ZodType>(def: ControlDefinition<S>): ControlDefinition<S> {
  return def;
}
