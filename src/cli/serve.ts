/**
 * `rampart serve`: the main job. Runs the gateway from a configuration file (`--config`) or in
 * zero-config mode (`--upstream URL`), with hot reload on SIGHUP and on file change, graceful
 * drain on SIGTERM, and `--workers N` processes sharing the listening socket.
 */
import { watch } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { Option } from 'commander';
import { ConfigError } from '../config/load.ts';
import { zeroConfig } from '../config/zero.ts';
import { zeroConfigAbuse } from '../controls/abuse/index.ts';
import { authzZeroConfig } from '../controls/authz/index.ts';
import { contractZeroConfig } from '../controls/contract/index.ts';
import { identityZeroConfig } from '../controls/identity/zero.ts';
import { transportZeroTls } from '../controls/transport/zero.ts';
import { runCluster, runWorker, shouldCluster } from '../gateway/cluster.ts';
import { startGateway, type GatewayHandle } from '../gateway/gateway.ts';

/** Parsed options of `rampart serve`. */
export interface ServeOptions {
  config?: string;
  upstream?: string;
  listen?: string;
  admin?: string;
  trustedProxy: string[];
  workers?: string;
  controls: boolean;
  /** `--no-access-log` sets this to false. */
  accessLog?: boolean;
  /** `--rate-limit 20/s` (also /min, /h, /day): per identity, else per client IP. */
  rateLimit?: string;
  /** `--store redis://HOST:PORT`: shared state across gateway processes. */
  store?: string;
  /** `--issuer URL`: require JWT access tokens from this OpenID provider (discovery). */
  issuer?: string;
  /** `--audience AUD`: accepted `aud` of those tokens (with `--issuer`). */
  audience?: string;
  /** `--openapi FILE|URL`: enforce this OpenAPI document (contract, response filtering; with `--issuer`, its scopes). */
  openapi?: string;
  /** `--allow-ip CIDR` (repeatable): only these client addresses may call. */
  allowIp?: string[];
  /** `--deny-ip CIDR` (repeatable): these client addresses may not call. */
  denyIp?: string[];
  /** `--geo-allow CC` (repeatable): only clients located in these countries may call. */
  geoAllow?: string[];
  /** `--geo-deny CC` (repeatable): clients located in these countries may not call. */
  geoDeny?: string[];
  /** `--tls-cert FILE` / `--tls-key FILE`: serve HTTPS (and HTTP/2). */
  tlsCert?: string;
  tlsKey?: string;
  /** `--mtls require|optional`: client certificates (with `--client-ca`). */
  mtls?: string;
  /** `--client-ca FILE` (repeatable): CA bundle trusted for client certificates. */
  clientCa?: string[];
  /** `--paranoia-level 1..4`: the inspection control's CRS-style paranoia level (default 1). */
  paranoiaLevel?: string;
}

const collect = (v: string, prev: string[]): string[] => [...prev, v];

/** Registers `serve` on the program. */
export function register(program: Command): void {
  program
    .command('serve')
    .description('run the gateway in front of an upstream API')
    .option('-c, --config <file>', 'configuration file (YAML)')
    .option('--upstream <url>', 'zero-config mode: the upstream API to protect')
    .option('--listen <addr>', 'API listener address (zero-config)', undefined)
    .option('--admin <addr>', 'admin listener address (zero-config)', undefined)
    .option('--trusted-proxy <cidr>', 'trust X-Forwarded-For from this CIDR (repeatable)', collect, [])
    .option('--workers <n>', 'worker processes, or "auto" for the CPU count')
    .option('--rate-limit <rate>', 'zero-config: rate limit per identity (else client IP), e.g. 20/s, 600/min, 1000/h, 10000/day')
    .option('--store <url>', 'zero-config: shared state store, memory (default) or redis://HOST:PORT')
    .option('--issuer <url>', 'zero-config: require JWT access tokens from this OpenID Connect issuer (discovery)')
    .option('--audience <aud>', 'zero-config: accepted token audience (with --issuer)')
    .option('--openapi <file>', 'zero-config: enforce this OpenAPI 3.0/3.1 document (file or URL): undocumented calls blocked, responses filtered')
    .option('--allow-ip <cidr>', 'zero-config: only this client address or CIDR may call (repeatable)', collect, [])
    .option('--deny-ip <cidr>', 'zero-config: refuse this client address or CIDR (repeatable)', collect, [])
    .option('--geo-allow <cc>', 'zero-config: only clients located in this country (ISO 3166-1 alpha-2) may call (repeatable)', collect, [])
    .option('--geo-deny <cc>', 'zero-config: refuse clients located in this country (repeatable)', collect, [])
    .option('--tls-cert <file>', 'zero-config: serve HTTPS and HTTP/2 with this certificate chain (PEM)')
    .option('--tls-key <file>', 'zero-config: private key of --tls-cert (PEM)')
    .option('--mtls <mode>', 'zero-config: client certificates, require or optional (with --client-ca)')
    .option('--client-ca <file>', 'zero-config: CA bundle trusted for client certificates (repeatable)', collect, [])
    .option('--paranoia-level <n>', 'zero-config: injection detection paranoia level, 1 (default) to 4; 2 is the level measured against OWASP CRS PL2')
    .option('--no-access-log', 'zero-config: no access-log line per request (security events are still logged)')
    .addOption(new Option('--no-controls', 'turn every control off (benchmark baseline only)').hideHelp())
    .action(async (o: ServeOptions) => {
      await serve(o);
    });
}

/** Builds the gateway source (file or zero-config object) from the options. @throws {Error} on conflicting flags. */
export function sourceOf(o: ServeOptions): { configFile?: string; config?: unknown } {
  if (o.config && o.upstream) throw new Error('use either --config or --upstream, not both');
  if (o.config) return { configFile: o.config };
  if (!o.upstream) throw new Error('one of --config FILE or --upstream URL is required');
  const workers = o.workers === undefined ? undefined : o.workers === 'auto' ? 'auto' : Number(o.workers);
  const controls: Record<string, unknown> = {};
  if (o.rateLimit !== undefined) controls.abuse = zeroConfigAbuse(o.rateLimit);
  if (o.paranoiaLevel !== undefined) {
    const pl = Number(o.paranoiaLevel);
    if (!Number.isInteger(pl) || pl < 1 || pl > 4) throw new Error(`--paranoia-level: expected 1, 2, 3 or 4, got "${o.paranoiaLevel}"`);
    controls.inspection = { paranoia_level: pl };
  }
  if (o.issuer !== undefined || o.audience !== undefined) {
    if (o.issuer === undefined || o.audience === undefined) throw new Error('--issuer and --audience go together');
    controls.identity = identityZeroConfig({ issuer: o.issuer, audience: o.audience });
  }
  if (o.openapi !== undefined) {
    controls.contract = contractZeroConfig(o.openapi);
    if (controls.identity !== undefined) controls.authz = authzZeroConfig(o.openapi);
    else {
      process.stderr.write(
        'rampart serve: warning: --openapi without --issuer: the document is enforced as an allow-list, but its `security` requirements (authentication, scopes) are not; add --issuer and --audience to enforce them\n',
      );
    }
  }
  const extra: Record<string, unknown> = {};
  if (o.store !== undefined) extra.state = { store: o.store };
  if (o.accessLog === false) extra.access_log = false;
  const tls = transportZeroTls(o);
  if (tls) extra.tls = tls;
  return {
    config: zeroConfig({
      upstream: o.upstream,
      listen: o.listen,
      admin: o.admin,
      trustedProxies: o.trustedProxy,
      workers,
      noControls: !o.controls,
      controls,
      extra,
      network: { allowIp: o.allowIp, denyIp: o.denyIp, geoAllow: o.geoAllow, geoDeny: o.geoDeny },
    }),
  };
}

async function serve(o: ServeOptions): Promise<void> {
  let source: { configFile?: string; config?: unknown };
  try {
    source = sourceOf(o);
  } catch (e) {
    process.stderr.write(`rampart serve: ${(e as Error).message}\n`);
    process.exit(2);
  }
  if (await shouldCluster(source, o.workers)) return runCluster(source, o.workers);
  if (process.env.RAMPART_WORKER === '1') return runWorker(source);
  let gw: GatewayHandle;
  try {
    gw = await startGateway(source);
  } catch (e) {
    if (e instanceof ConfigError) process.stderr.write(`rampart: invalid configuration\n${e.message}\n`);
    else process.stderr.write(`rampart: ${(e as Error).message}\n`);
    process.exit(1);
  }
  installSignals(gw, source.configFile);
}

/** SIGHUP and file changes reload; SIGTERM/SIGINT drain and exit. */
export function installSignals(gw: GatewayHandle, file: string | undefined): void {
  const reload = () => void gw.reload().catch(() => {});
  process.on('SIGHUP', reload);
  if (file) watchFile(file, reload);
  const stop = () => {
    void gw.close().then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

/** Watches a file (and its directory, for editors that replace it) and calls `onChange` debounced (200 ms). */
export function watchFile(file: string, onChange: () => void): void {
  let timer: NodeJS.Timeout | undefined;
  const fire = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(onChange, 200);
  };
  // Watch the directory, not the inode: editors, `sed -i` and Kubernetes ConfigMaps save by
  // replacing the file, and a watch on the old inode would go quiet after the first save.
  const dir = dirname(resolve(file));
  const name = basename(file);
  try {
    watch(dir, { persistent: false }, (_event, changed) => {
      if (changed === null || changed === name || changed === '..data') fire();
    });
  } catch {
    /* the reload on SIGHUP still works */
  }
}
