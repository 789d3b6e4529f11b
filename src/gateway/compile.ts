/**
 * Compiling a validated configuration into what the request handler runs: per API, its route
 * match, its request and response chains in the fixed phase order, and its upstream pools.
 * A reload compiles a new CompiledConfig and swaps it atomically; the old one closes once its
 * in-flight requests have finished.
 */
import type { BlockList } from 'node:net';
import { CONTROLS } from '../controls/index.ts';
import { gatewayFloor, prepareNetwork } from '../controls/network/wiring.ts';
import { prepareSender } from '../controls/sender/wiring.ts';
import { prepareTransport } from '../controls/transport/wiring.ts';
import type { ApiConfig, RampartConfig } from '../config/schema.ts';
import { ConfigError, type ConfigIssue, type Locator, pathString, zodIssues } from '../config/load.ts';
import type { ControlDefinition, ControlEnv, ControlInstance } from '../pipeline/control.ts';
import { REQUEST_PHASES, RESPONSE_PHASES, type RequestStage, type ResponseStage } from '../pipeline/stage.ts';
import type { Store } from '../state/store.ts';
import type { EventInput } from '../events/event.ts';
import { blockListOf } from '../proxy/headers.ts';
import { UpstreamGroup } from '../proxy/upstream.ts';
import { Redactor } from '../events/redact.ts';

/** One API ready to serve. */
export interface CompiledApi {
  readonly name: string;
  readonly config: ApiConfig;
  /** Lower-case host to match, or undefined for any. */
  readonly host: string | undefined;
  /** Path prefix without trailing slash ('' for `/`). */
  readonly prefix: string;
  readonly requestStages: readonly RequestStage[];
  readonly responseStages: readonly ResponseStage[];
  /** Request stages with a `done` hook (called once per request). */
  readonly doneStages: readonly RequestStage[];
  readonly upstream: UpstreamGroup;
  readonly controls: readonly ControlInstance[];
  /** Body cap before any stage sets one (the `limits` control overrides it per request). */
  readonly defaultMaxBodyBytes: number;
}

/** A compiled configuration. */
export interface CompiledConfig {
  readonly config: RampartConfig;
  readonly apis: readonly CompiledApi[];
  readonly trusted: BlockList | undefined;
  readonly redactor: Redactor;
  /**
   * Request stages run for a request that matches no API, before its 404: the gateway-wide
   * `network` floor (empty without a top-level `network` block).
   */
  readonly unrouted: readonly RequestStage[];
  /** Finds the API for a host and path (longest prefix on a segment boundary), or undefined. */
  route(host: string | undefined, path: string): CompiledApi | undefined;
  /** Reasons the configuration is not ready (e.g. JWKS not fetched yet); empty when ready. */
  notReady(): string[];
  /** Closes controls and upstream pools (after in-flight requests drain). */
  close(): Promise<void>;
}

/** What compilation needs from the running gateway. */
export interface CompileEnv {
  file: string;
  configDir: string;
  locate?: Locator;
  store: Store;
  emit(e: EventInput): void;
  log: ControlEnv['log'];
  /** Admin route registration (a no-op where there is no admin listener). */
  addAdminRoute?: NonNullable<ControlEnv['addAdminRoute']>;
  /** Control definitions (default: {@link CONTROLS}). */
  controls?: readonly ControlDefinition[];
}

const DEFAULT_BODY_CAP = 10 * 1024 * 1024;

async function compileApi(api: ApiConfig, index: number, env: CompileEnv, issues: ConfigIssue[]): Promise<CompiledApi | undefined> {
  const instances: ControlInstance[] = [];
  const configured = api.controls as Record<string, unknown>;
  for (const def of env.controls ?? CONTROLS) {
    let raw = configured[def.name];
    if (raw === false) continue;
    if (raw === undefined) {
      if (def.defaultConfig === undefined) continue;
      raw = def.defaultConfig;
    }
    const path = ['apis', index, 'controls', def.name];
    const parsed = def.schema.safeParse(raw);
    if (!parsed.success) {
      issues.push(...zodIssues(parsed.error, env.file, env.locate, path));
      continue;
    }
    try {
      instances.push(
        await def.create(parsed.data, {
          apiName: api.name,
          configDir: env.configDir,
          store: env.store,
          emit: (e) => env.emit(e),
          log: env.log,
          addAdminRoute: env.addAdminRoute ?? (() => {}),
        }),
      );
    } catch (e) {
      const pos = env.locate?.(path);
      issues.push({ file: env.file, line: pos?.line, column: pos?.column, path: pathString(path), message: (e as Error).message });
    }
  }
  if (issues.length) {
    await Promise.allSettled(instances.map((c) => c.close?.()));
    return undefined;
  }
  const req = instances.flatMap((c) => c.request ?? []);
  const res = instances.flatMap((c) => c.response ?? []);
  req.sort((a, b) => REQUEST_PHASES.indexOf(a.phase) - REQUEST_PHASES.indexOf(b.phase));
  res.sort((a, b) => RESPONSE_PHASES.indexOf(a.phase) - RESPONSE_PHASES.indexOf(b.phase));
  const limits = configured.limits as { body_bytes?: number } | false | undefined;
  return {
    name: api.name,
    config: api,
    host: api.match.host?.toLowerCase(),
    prefix: api.match.path_prefix.replace(/\/+$/, ''),
    requestStages: req,
    responseStages: res,
    doneStages: req.filter((s) => s.done !== undefined),
    upstream: new UpstreamGroup(api.upstream),
    controls: instances,
    defaultMaxBodyBytes: (limits ? limits.body_bytes : undefined) ?? DEFAULT_BODY_CAP,
  };
}

/**
 * Applies the gateway-wide settings that act as a floor for every API (the listener's mutual-TLS
 * `tls.client_auth`, the top-level `network` lists) to each API's controls, and the `sender`
 * control's DPoP algorithms to its `identity` control (for the 401 challenge). Pure; run it before
 * {@link compileConfig} wherever a configuration is compiled (serve, reload, config check).
 */
export function prepareConfig(config: RampartConfig, configDir: string): RampartConfig {
  return prepareSender(prepareNetwork(prepareTransport(config, configDir)));
}

/**
 * Compiles a validated configuration.
 * @throws {ConfigError} when a control refuses its settings (file, path and reason).
 */
export async function compileConfig(config: RampartConfig, env: CompileEnv): Promise<CompiledConfig> {
  const issues: ConfigIssue[] = [];
  const names = new Set<string>();
  config.apis.forEach((a, i) => {
    if (names.has(a.name)) {
      const pos = env.locate?.(['apis', i, 'name']);
      issues.push({ file: env.file, line: pos?.line, column: pos?.column, path: `apis[${i}].name`, message: `duplicate API name "${a.name}"` });
    }
    names.add(a.name);
  });
  let trusted: BlockList | undefined;
  try {
    trusted = config.trusted_proxies.length ? blockListOf(config.trusted_proxies) : undefined;
  } catch (e) {
    issues.push({ file: env.file, path: 'trusted_proxies', message: (e as Error).message });
  }
  const apis: CompiledApi[] = [];
  for (let i = 0; i < config.apis.length; i++) {
    const c = await compileApi(config.apis[i] as ApiConfig, i, env, issues);
    if (c) apis.push(c);
  }
  const floor = await compileFloor(config, env, issues);
  if (issues.length) {
    await Promise.allSettled([...apis.map(closeApi), floor?.close?.()]);
    throw new ConfigError(issues);
  }
  // Longest prefix first; host-specific before any-host at equal length.
  const ordered = [...apis].sort((a, b) => b.prefix.length - a.prefix.length || (b.host ? 1 : 0) - (a.host ? 1 : 0));
  return {
    config,
    apis,
    trusted,
    redactor: new Redactor(config.events.redact_headers),
    unrouted: floor?.request ?? [],
    route(host, path) {
      const h = host ? stripPort(host).toLowerCase() : undefined;
      for (const a of ordered) {
        if (a.host !== undefined && a.host !== h) continue;
        if (a.prefix === '' || path === a.prefix || path.startsWith(`${a.prefix}/`) || path.startsWith(`${a.prefix}?`)) return a;
      }
      return undefined;
    },
    notReady() {
      const out: string[] = [];
      for (const a of apis)
        for (const c of a.controls) {
          const r = c.notReady?.();
          if (r) out.push(`${a.name}: ${r}`);
        }
      return out;
    },
    async close() {
      await Promise.allSettled([...apis.map(closeApi), floor?.close?.()]);
    },
  };
}

/** The `network` control enforcing the top-level block alone, for unrouted requests (see {@link gatewayFloor}). */
async function compileFloor(config: RampartConfig, env: CompileEnv, issues: ConfigIssue[]): Promise<ControlInstance | undefined> {
  const raw = gatewayFloor(config);
  const def = raw && (env.controls ?? CONTROLS).find((d) => d.name === 'network');
  if (raw === undefined || def === undefined) return undefined;
  const parsed = def.schema.safeParse(raw);
  if (!parsed.success) {
    issues.push(...zodIssues(parsed.error, env.file, env.locate, ['network']));
    return undefined;
  }
  try {
    return await def.create(parsed.data, {
      apiName: '-',
      configDir: env.configDir,
      store: env.store,
      emit: (e) => env.emit(e),
      log: env.log,
      addAdminRoute: () => {},
    });
  } catch (e) {
    issues.push({ file: env.file, path: 'network', message: (e as Error).message });
    return undefined;
  }
}

function stripPort(host: string): string {
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1);
  const i = host.lastIndexOf(':');
  return i === -1 ? host : host.slice(0, i);
}

async function closeApi(a: CompiledApi): Promise<void> {
  await Promise.allSettled(a.controls.map((c) => c.close?.()));
  await a.upstream.close();
}
