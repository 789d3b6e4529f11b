/**
 * `network` control: where is the request coming from?
 *
 * - IP allow and deny lists (IPv4/IPv6 CIDR, inline or from files reloaded on change), per API
 *   and per route, always over the client IP derived by the gateway's trusted-proxy rule;
 * - geofencing: allow or deny by country (ISO 3166-1 alpha-2) per API and per route;
 * - impossible travel: per identity, the last location and time in the state store; an implied
 *   speed over a threshold or a new country/ASN within a short window raises an event, a step-up
 *   challenge (RFC 9470) or revokes the token (`jti` on the identity control's deny list);
 * - network binding: a token bound to the IP prefix or autonomous system where it was first seen.
 *
 * The lists and the geofence run in the `network` phase (before identity, cheap); travel and
 * binding need `ctx.identity` and run in the `behavior` phase.
 * OWASP API Security Top 10 2023 API2 (broken authentication: stolen tokens); NIST SP 800-207 §3.3.1.
 */
import { resolve } from 'node:path';
import { z } from 'zod';
import type { Identity, RequestContext } from '../../pipeline/context.ts';
import { type ControlEnv, type ControlInstance, defineControl } from '../../pipeline/control.ts';
import { Problem, wwwAuthenticate } from '../../pipeline/problem.ts';
import type { RequestStage } from '../../pipeline/stage.ts';
import { challenge, deny, type Verdict } from '../../pipeline/verdict.ts';
import type { Severity } from '../../events/event.ts';
import { defaultLocationDatabases, type GeoInfo, GeoLookup } from '../../geo/index.ts';
import { networkPrefix, parseCidr, WatchedList } from './lists.ts';
import { assessTravel, keyHash, parseSighting, revokedJtiStoreKey, sightingOf, type TravelFinding } from './travel.ts';

export { revokedJtiStoreKey } from './travel.ts';

const cidr = z.string().refine((s) => {
  try {
    parseCidr(s);
    return true;
  } catch {
    return false;
  }
}, 'expected an IP address or CIDR block, e.g. 10.0.0.0/8 or 2001:db8::/32');
const country = z
  .string()
  .regex(/^[A-Za-z]{2}$/, 'expected an ISO 3166-1 alpha-2 country code, e.g. US')
  .transform((s) => s.toUpperCase());

/** Rules that apply per API and, additionally, per route. */
const rulesShape = {
  /** Only these addresses/CIDRs may call (when any allow entry exists). */
  allow: z.array(cidr).default([]),
  /** These addresses/CIDRs may never call (checked first). */
  deny: z.array(cidr).default([]),
  /** Allow-list files (one address or CIDR per line, `#` comments), re-read when they change. */
  allow_files: z.array(z.string().min(1)).default([]),
  /** Deny-list files, same format. */
  deny_files: z.array(z.string().min(1)).default([]),
  /** Only clients located in these countries may call (when non-empty). */
  allow_countries: z.array(country).default([]),
  /** Clients located in these countries may not call. */
  deny_countries: z.array(country).default([]),
  /**
   * A client whose country the database does not know (private ranges, new allocations):
   * default `deny` when `allow_countries` is set, else `allow`.
   */
  unknown_country: z.enum(['allow', 'deny']).optional(),
};

const routeSchema = z.strictObject({
  /** Request path prefix (segment boundary), matched against the decoded request path. */
  path_prefix: z.string().startsWith('/'),
  /** Methods the route applies to (all when absent). */
  methods: z
    .array(z.string().regex(/^[A-Za-z]+$/))
    .min(1)
    .transform((a) => a.map((m) => m.toUpperCase()))
    .optional(),
  ...rulesShape,
});

const actionBase = z.enum(['event', 'challenge', 'revoke']);

/**
 * The top-level, gateway-wide `network` block: allow/deny lists and country rules that every API
 * gets as a floor (see ./wiring.ts). Deny anywhere wins; an API's or route's own allow list
 * narrows further (a client must be on every allow list that applies).
 */
export const gatewayNetworkSchema = z.strictObject(rulesShape);
export type GatewayNetworkConfig = z.output<typeof gatewayNetworkSchema>;

export const networkSchema = z.strictObject({
  ...rulesShape,
  /**
   * Gateway-wide rules checked before the API's own: set by the gateway from the top-level
   * `network` block (an API cannot opt out of them, not even with `network: false`).
   */
  gateway: gatewayNetworkSchema.optional(),
  /** Stricter rules for parts of the API; they apply in addition to the API-wide ones. */
  routes: z.array(routeSchema).default([]),
  geo: z
    .strictObject({
      /**
       * Location MMDB files (country, coordinates): GeoIP2/GeoLite2 City or Country, DB-IP, or
       * ip-location-db files. Default: the shipped DB-IP IP to City Lite (CC BY 4.0).
       */
      databases: z.array(z.string().min(1)).min(1).optional(),
      /**
       * Your own ASN MMDB files (GeoIP2/GeoLite2-ASN, DB-IP ASN Lite). When set they replace the
       * shipped ASN data (Route Views + DB-IP, `@ip-location-db/asn`, CC BY 4.0).
       */
      asn_databases: z.array(z.string().min(1)).default([]),
      /**
       * Look up the autonomous system of every client even when no ASN rule needs it (travel
       * history and events then carry it). ASN binding and `travel.new_asn_window_ms` turn ASN
       * lookups on by themselves.
       */
      asn: z.boolean().default(false),
    })
    .prefault({}),
  travel: z
    .strictObject({
      enabled: z.boolean().default(false),
      /** Whose history: the identity's `subject` (per issuer) or the `token` (`jti`; subject when none). */
      key: z.enum(['subject', 'token']).default('subject'),
      /** Implied ground speed above which travel is impossible, km/h (an airliner cruises at ~900). */
      max_speed_kmh: z.number().positive().default(900),
      /** Moves up to this distance never count (city-level geolocation jitters), km. */
      min_distance_km: z.number().nonnegative().default(300),
      /** A new country within this time of the previous request fires (0 = off), ms. */
      new_country_window_ms: z.number().int().nonnegative().default(600_000),
      /** A new autonomous system within this time fires (0 = off), ms. */
      new_asn_window_ms: z.number().int().nonnegative().default(0),
      /** `event` alerts and lets the request through; `challenge` asks for step-up (RFC 9470); `revoke` puts the token's `jti` on the revocation list and refuses it. */
      action: actionBase.default('challenge'),
      /** How long the last location is remembered, ms (default 30 days). */
      history_ttl_ms: z
        .number()
        .int()
        .positive()
        .default(30 * 86_400_000),
    })
    .prefault({}),
  binding: z
    .strictObject({
      enabled: z.boolean().default(false),
      /** Bind to the IP prefix (`prefix`) or the autonomous system (`asn`). */
      by: z.enum(['prefix', 'asn']).default('prefix'),
      ipv4_prefix: z.number().int().min(0).max(32).default(24),
      ipv6_prefix: z.number().int().min(0).max(128).default(48),
      /** On a mismatch: `deny` (401 invalid_token), `challenge` (RFC 9470 step-up) or `event`. */
      action: z.enum(['deny', 'challenge', 'event']).default('deny'),
      /** When the network of the request is unknown (no ASN for the address). */
      unknown: z.enum(['allow', 'deny']).default('allow'),
      /** How long a binding lasts when the token has no `exp`, ms (else until `exp`). */
      ttl_ms: z.number().int().positive().default(86_400_000),
    })
    .prefault({}),
  step_up: z
    .strictObject({
      /** `acr_values` of the challenge (RFC 9470 §3); a token satisfies the step-up only with one of them as `acr`. */
      acr_values: z.array(z.string().min(1)).min(1).optional(),
      /** `max_age` of the challenge, seconds (RFC 9470 §3). */
      max_age: z.number().int().nonnegative().optional(),
      /** How long a pending step-up is remembered, ms. */
      ttl_ms: z.number().int().positive().default(3_600_000),
    })
    .prefault({}),
  /** TTL of a revocation when the token has no `exp`, ms. */
  revoke_ttl_ms: z.number().int().positive().default(86_400_000),
  /** When the state store fails during travel/binding checks: `open` lets the request through, `closed` answers 503. */
  on_store_error: z.enum(['open', 'closed']).default('open'),
  /** `realm` of the challenges (default: the API name). */
  realm: z.string().optional(),
});
export type NetworkConfig = z.output<typeof networkSchema>;
export type NetworkConfigInput = z.input<typeof networkSchema>;
type Rules = z.output<typeof routeSchema> | NetworkConfig | GatewayNetworkConfig;

/** Compiled list and geofence rules of the API or of one route. */
interface CompiledRules {
  prefix?: string;
  /** The route's `path_prefix` as configured (named in events). */
  label?: string;
  methods?: ReadonlySet<string>;
  allow: WatchedList;
  deny: WatchedList;
  allowCountries: ReadonlySet<string>;
  denyCountries: ReadonlySet<string>;
  unknownCountry: 'allow' | 'deny';
  /** Whether these rules need a geo lookup. */
  geo: boolean;
  /** The gateway-wide floor (from the top-level `network` block). */
  gateway?: true;
}

const FORBIDDEN_IP = () => new Problem(403, 'ip-denied', 'Forbidden', { detail: 'Requests from this network address are not allowed.' });
const NOT_ALLOWED_IP = () => new Problem(403, 'ip-not-allowed', 'Forbidden', { detail: 'Requests from this network address are not allowed.' });

/** ASCII percent-escapes only: the fallback when the whole path is not valid percent-encoded UTF-8. */
const ASCII_ESCAPE = /%([0-7][0-9a-f])/gi;
/** Trailing dots and white space of a segment (IIS drops them; many stacks trim spaces and tabs). */
const SEGMENT_TAIL = /[\s.]+$/;

/**
 * The canonical form of a request path for route matching, so that every spelling a backend
 * treats as the same resource hits the same rule (deny and allow rules alike): percent-decoded
 * once (RFC 3986 §2.1; ASCII escapes only when the rest is not valid UTF-8), `\` read as `/`
 * (IIS), lower-cased (case-insensitive backends), each segment cut at its first `;` (RFC 3986
 * §3.3 path parameters, dropped by Tomcat/Spring: `/admin;x`), trailing dots, spaces and tabs
 * removed (`/admin.`, `/admin%20`, `/admin%09`), `.`/`..` resolved (RFC 3986 §5.2.4) and empty
 * segments dropped (`//`). A prefix from the configuration goes through the same function.
 * @param path the request path, percent-encoded as received (no query).
 * @returns `/`-separated, never ending in `/` unless it is `/` itself.
 */
export function canonicalRoutePath(path: string): string {
  let p = path;
  if (p.includes('%')) {
    try {
      p = decodeURIComponent(p);
    } catch {
      p = p.replace(ASCII_ESCAPE, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16)));
    }
  }
  if (p.includes('\\')) p = p.replaceAll('\\', '/');
  p = p.toLowerCase();
  const out: string[] = [];
  for (const raw of p.split('/')) {
    const semi = raw.indexOf(';');
    const seg = semi === -1 ? raw : raw.slice(0, semi);
    if (seg === '.') continue;
    if (seg === '..') {
      // `/public/..;/admin` is `/admin` to Tomcat
      out.pop();
      continue;
    }
    const trimmed = seg.replace(SEGMENT_TAIL, '');
    if (trimmed !== '') out.push(trimmed);
  }
  return `/${out.join('/')}`;
}

function routeMatches(r: CompiledRules, ctx: RequestContext, path: string): boolean {
  if (r.methods && !r.methods.has(ctx.method)) return false;
  const pre = r.prefix as string;
  return pre === '/' || path === pre || path.startsWith(`${pre}/`);
}

async function compileRules(rules: Rules, env: ControlEnv): Promise<CompiledRules> {
  const hooks = {
    onReload: (file: string, entries: number) => env.log.info('IP list reloaded', { control: 'network', api: env.apiName, file, entries }),
    onError: (file: string, err: Error) => {
      env.log.warn('IP list reload failed; the previous list stays in force', { control: 'network', api: env.apiName, file, error: err.message });
      env.emit({
        control: 'network',
        reason: 'ip-list-reload-failed',
        action: 'error',
        severity: 'high',
        api: env.apiName,
        details: { file, error: err.message },
      });
    },
  };
  const allow = await WatchedList.create(rules.allow, rules.allow_files, env.configDir, hooks);
  let denyList: WatchedList;
  try {
    denyList = await WatchedList.create(rules.deny, rules.deny_files, env.configDir, hooks);
  } catch (e) {
    allow.close();
    throw e;
  }
  const allowCountries = new Set(rules.allow_countries);
  const denyCountries = new Set(rules.deny_countries);
  const out: CompiledRules = {
    allow,
    deny: denyList,
    allowCountries,
    denyCountries,
    unknownCountry: rules.unknown_country ?? (allowCountries.size > 0 ? 'deny' : 'allow'),
    geo: allowCountries.size > 0 || denyCountries.size > 0,
  };
  if ('path_prefix' in rules) {
    out.prefix = canonicalRoutePath(rules.path_prefix);
    out.label = rules.path_prefix;
    if (rules.methods) out.methods = new Set(rules.methods);
  }
  return out;
}

/** Parses a stored pending step-up (`{t, jti?}`); `undefined` when absent or malformed. */
function parsePending(v: string | null): { t: number; jti?: string } | undefined {
  if (v === null) return undefined;
  try {
    const o = JSON.parse(v) as { t?: unknown; jti?: unknown };
    if (typeof o?.t !== 'number') return undefined;
    return { t: o.t, jti: typeof o.jti === 'string' ? o.jti : undefined };
  } catch {
    return undefined;
  }
}

/** Builds the RFC 9470 §3 step-up challenge header value. */
export function stepUpChallenge(realm: string, description: string, acrValues?: readonly string[], maxAge?: number): string {
  return wwwAuthenticate('Bearer', {
    realm,
    error: 'insufficient_user_authentication',
    error_description: description,
    acr_values: acrValues?.join(' '),
    max_age: maxAge === undefined ? undefined : String(maxAge),
  });
}

/** The `network` control definition (not on by default: it needs site-specific settings). */
export const networkControl = defineControl({
  name: 'network',
  schema: networkSchema,
  create: (cfg, env) => createNetwork(cfg, env),
});

/**
 * Builds the control for one API. `clock` (epoch ms) is injectable for tests.
 * @throws {Error} naming the file when an IP list file, a geo database or the shipped ASN data
 *   cannot be read or is invalid.
 */
export async function createNetwork(cfg: NetworkConfig, env: ControlEnv, clock: () => number = Date.now): Promise<ControlInstance> {
  const realm = cfg.realm ?? env.apiName;
  const opened: CompiledRules[] = [];
  const closeAll = () => {
    for (const r of opened) {
      r.allow.close();
      r.deny.close();
    }
  };
  let floor: CompiledRules | undefined;
  try {
    if (cfg.gateway) {
      try {
        floor = await compileRules(cfg.gateway, env);
      } catch (e) {
        throw new Error(`top-level network: ${(e as Error).message}`);
      }
      floor.gateway = true;
      opened.push(floor);
    }
    opened.push(await compileRules(cfg, env));
    for (let i = 0; i < cfg.routes.length; i++) opened.push(await compileRules(cfg.routes[i] as Rules, env));
  } catch (e) {
    closeAll();
    throw e;
  }
  const api = opened[floor ? 1 : 0] as CompiledRules;
  const routes = opened.slice(floor ? 2 : 1);

  const travel = cfg.travel;
  const binding = cfg.binding;
  // Country and coordinates only for geofences and travel; ASN only when something uses it (the
  // shipped table is parsed on first use, so a gateway without ASN rules never pays for it).
  const needsLocation = opened.some((r) => r.geo) || travel.enabled;
  const needsAsn = (binding.enabled && binding.by === 'asn') || (travel.enabled && travel.new_asn_window_ms > 0) || cfg.geo.asn;
  let geo: GeoLookup | undefined;
  if (needsLocation || needsAsn) {
    try {
      const asnFiles = cfg.geo.asn_databases.map((f) => resolve(env.configDir, f));
      geo = await GeoLookup.open({
        location: needsLocation ? (cfg.geo.databases?.map((f) => resolve(env.configDir, f)) ?? defaultLocationDatabases()) : [],
        asn: asnFiles,
        shippedAsn: needsAsn && asnFiles.length === 0,
      });
    } catch (e) {
      closeAll();
      throw e;
    }
  }

  // One lookup per request, shared by both stages.
  const geoCache = new WeakMap<RequestContext, GeoInfo | null>();
  const lookup = (ctx: RequestContext): GeoInfo | undefined => {
    let g = geoCache.get(ctx);
    if (g === undefined) {
      g = geo?.lookup(ctx.clientIp) ?? null;
      geoCache.set(ctx, g);
    }
    return g ?? undefined;
  };

  function check(r: CompiledRules, ctx: RequestContext, route: string | undefined): Verdict {
    const ip = ctx.clientIp;
    // Where the rule is: a route (its prefix), the gateway-wide block, or (neither key) the API.
    const scope = route !== undefined ? { route } : r.gateway ? { gateway: true } : undefined;
    if (r.deny.has(ip)) return deny(FORBIDDEN_IP(), 'medium', { list: 'deny', ...scope });
    if (!r.allow.empty && !r.allow.has(ip)) return deny(NOT_ALLOWED_IP(), 'medium', { list: 'allow', ...scope });
    if (r.geo) {
      const cc = lookup(ctx)?.country;
      if (cc === undefined) {
        if (r.unknownCountry === 'deny')
          return deny(
            new Problem(403, 'country-unknown', 'Forbidden', {
              detail: 'The location of this network address is unknown and unknown locations are not allowed.',
            }),
            'low',
            { ...scope },
          );
      } else if (r.denyCountries.has(cc) || (r.allowCountries.size > 0 && !r.allowCountries.has(cc))) {
        return deny(new Problem(403, 'country-denied', 'Forbidden', { detail: 'Requests from this location are not allowed.' }), 'medium', {
          country: cc,
          ...scope,
        });
      }
    }
    return undefined;
  }

  const networkStage: RequestStage = {
    control: 'network',
    phase: 'network',
    run(ctx) {
      if (floor) {
        const fv = check(floor, ctx, undefined);
        if (fv) return fv;
      }
      const v = check(api, ctx, undefined);
      if (v) return v;
      if (routes.length) {
        const path = canonicalRoutePath(ctx.path);
        for (const r of routes) {
          if (!routeMatches(r, ctx, path)) continue;
          const rv = check(r, ctx, r.label);
          if (rv) return rv;
        }
      }
      return undefined;
    },
  };

  const store = env.store;
  const travelRules = {
    maxSpeedKmh: travel.max_speed_kmh,
    minDistanceKm: travel.min_distance_km,
    newCountryWindowMs: travel.new_country_window_ms,
    newAsnWindowMs: travel.new_asn_window_ms,
  };
  const stepUp = cfg.step_up;

  const storeFailure = (err: unknown): Verdict => {
    if (cfg.on_store_error === 'open') return undefined;
    return deny(
      new Problem(503, 'network-state-unavailable', 'Service Unavailable', {
        detail: 'Location checks are unavailable; try again later.',
        headers: { 'retry-after': '5' },
      }),
      'high',
      {
        error: (err as Error).message,
      },
    );
  };

  /**
   * Whether the token satisfies a step-up asked at `pending.t` (ms): another token than the one
   * challenged, authenticated (`auth_time`, else issued: `iat`) no earlier than the challenge's
   * second, and with an `acr` of `step_up.acr_values` when configured (RFC 9470 §3, §4).
   */
  const satisfiesStepUp = (id: Identity, pending: { t: number; jti?: string }): boolean => {
    if (pending.jti !== undefined && id.tokenId === pending.jti) return false;
    if (stepUp.acr_values && !stepUp.acr_values.includes(String(id.claims.acr))) return false;
    const authTime = typeof id.claims.auth_time === 'number' ? id.claims.auth_time : typeof id.claims.iat === 'number' ? id.claims.iat : undefined;
    return authTime !== undefined && authTime >= Math.floor(pending.t / 1000);
  };

  const tokenTtl = (id: Identity, fallbackMs: number, now: number): number =>
    id.expiresAt !== undefined ? Math.max(1000, id.expiresAt * 1000 - now + 60_000) : fallbackMs;

  const stepUpRejection = (code: string, description: string, severity: Severity, details: Record<string, unknown>) =>
    challenge(
      new Problem(401, code, 'Step-up authentication required', {
        detail: description,
        headers: { 'www-authenticate': stepUpChallenge(realm, description, stepUp.acr_values, stepUp.max_age) },
      }),
      severity,
      details,
    );

  async function checkTravel(ctx: RequestContext, id: Identity, now: number): Promise<Verdict> {
    const g = lookup(ctx);
    if (g === undefined || (g.latitude === undefined && g.country === undefined && g.asn === undefined)) return undefined;
    const who = travel.key === 'token' && id.tokenId !== undefined ? keyHash('jti', id.issuer, id.tokenId) : keyHash('sub', id.issuer, id.subject);
    const histKey = `network:travel:${who}`;
    const pendingKey = `network:stepup:${who}`;
    const cur = sightingOf(g, now);
    const [prevRaw, pendingRaw] = await Promise.all([store.get(histKey), travel.action === 'challenge' ? store.get(pendingKey) : Promise.resolve(null)]);
    const pending = parsePending(pendingRaw);
    if (pending !== undefined) {
      if (!satisfiesStepUp(id, pending)) {
        return stepUpRejection('impossible-travel', 'Authenticate again: this account was used from an unexpected location.', 'high', { pending: true });
      }
      await store.del(pendingKey);
      await store.set(histKey, JSON.stringify(cur), travel.history_ttl_ms);
      return undefined;
    }
    const prev = parseSighting(prevRaw);
    const finding: TravelFinding | undefined = prev ? assessTravel(prev, cur, travelRules) : undefined;
    if (finding === undefined) {
      await store.set(histKey, JSON.stringify(cur), travel.history_ttl_ms);
      return undefined;
    }
    const details: Record<string, unknown> = { ...finding, action: travel.action };
    if (travel.action === 'event') {
      ctx.emit({ control: 'network', reason: 'impossible-travel', action: 'alert', severity: 'high', details });
      await store.set(histKey, JSON.stringify(cur), travel.history_ttl_ms);
      return undefined;
    }
    if (travel.action === 'challenge') {
      await store.set(pendingKey, JSON.stringify({ t: now, jti: id.tokenId }), stepUp.ttl_ms);
      return stepUpRejection('impossible-travel', 'Authenticate again: this account was used from an unexpected location.', 'high', details);
    }
    // revoke: the identity control refuses the jti from now on (until the token expires).
    const revocable = id.tokenId !== undefined && id.methods[0] !== 'api_key';
    if (revocable) await store.set(revokedJtiStoreKey(id.tokenId as string), '1', tokenTtl(id, cfg.revoke_ttl_ms, now));
    details.revoked = revocable;
    if (revocable) details.jti = id.tokenId;
    return deny(
      new Problem(401, 'impossible-travel', 'Invalid access token', {
        detail: 'The access token was used from an unexpected location and has been revoked.',
        headers: { 'www-authenticate': wwwAuthenticate('Bearer', { realm, error: 'invalid_token', error_description: 'The access token has been revoked' }) },
      }),
      'high',
      details,
    );
  }

  async function checkBinding(ctx: RequestContext, id: Identity, now: number): Promise<Verdict> {
    let net: string | undefined;
    if (binding.by === 'prefix') net = networkPrefix(ctx.clientIp, binding.ipv4_prefix, binding.ipv6_prefix);
    else {
      const asn = lookup(ctx)?.asn;
      net = asn === undefined ? undefined : `AS${asn}`;
    }
    if (net === undefined) {
      if (binding.unknown === 'allow') return undefined;
      return deny(
        new Problem(403, 'network-unknown', 'Forbidden', { detail: 'The network of this address is unknown; this API binds tokens to their network.' }),
        'low',
      );
    }
    let tokenKey: string;
    if (id.tokenId !== undefined) tokenKey = keyHash('jti', id.issuer, id.tokenId);
    else {
      const cred = ctx.headers.authorization;
      if (typeof cred !== 'string') return undefined;
      tokenKey = keyHash('cred', cred);
    }
    const key = `network:bind:${tokenKey}`;
    const ttl = tokenTtl(id, binding.ttl_ms, now);
    if (await store.setIfAbsent(key, net, ttl)) return undefined;
    const bound = await store.get(key);
    if (bound === null || bound === net) return undefined;
    const details = { bound: bound, seen: net, by: binding.by };
    if (binding.action === 'event') {
      ctx.emit({ control: 'network', reason: 'token-network-mismatch', action: 'alert', severity: 'high', details });
      return undefined;
    }
    if (binding.action === 'challenge') {
      return stepUpRejection('token-network-mismatch', 'Authenticate again: this token was issued to another network.', 'high', details);
    }
    return deny(
      new Problem(401, 'token-network-mismatch', 'Invalid access token', {
        detail: 'The access token is bound to the network where it was first used.',
        headers: {
          'www-authenticate': wwwAuthenticate('Bearer', { realm, error: 'invalid_token', error_description: 'The access token is bound to another network' }),
        },
      }),
      'high',
      details,
    );
  }

  const request: RequestStage[] = [networkStage];
  if (travel.enabled || binding.enabled) {
    request.push({
      control: 'network',
      phase: 'behavior',
      async run(ctx) {
        const id = ctx.identity;
        if (id === undefined) return undefined;
        const now = clock();
        try {
          if (binding.enabled) {
            const v = await checkBinding(ctx, id, now);
            if (v) return v;
          }
          if (travel.enabled) return await checkTravel(ctx, id, now);
        } catch (e) {
          return storeFailure(e);
        }
        return undefined;
      },
    });
  }

  return {
    request,
    close: closeAll,
  };
}
