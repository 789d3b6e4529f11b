/**
 * The OpenAPI document drives identity: per operation, its effective `security` (the operation's
 * own, else the document's; OAS 3.1 §4.8.10 "Operation Object" `security`, §4.8.30 "Security
 * Requirement Object") and the referenced `securitySchemes` (§4.8.27) decide which identity
 * providers accept a request, compiled once into an {@link AccessPolicy} per operation.
 *
 * Scheme types → providers:
 * - `oauth2`, `openIdConnect`, `http` with `scheme: bearer` → `jwt` and `introspection` (bearer
 *   access tokens, RFC 6750);
 * - `apiKey` → `api_key`, read from the scheme's `in` (`header` | `query`) and `name` unless the
 *   configuration sets `providers.api_key.header`/`query` (the configuration overrides);
 *   `in: cookie` is a configuration error;
 * - `mutualTLS` → `mtls`: the identity the `transport` control derived from the client certificate;
 * - anything else (`http` basic/digest) is not served by this control.
 *
 * A Security Requirement Object lists schemes that must *all* hold; alternatives are ORed. One
 * request carries one credential, so an alternative that needs both a bearer token and an API key
 * cannot be met here and is skipped (with a warning); `mutualTLS` beside a token leaves the
 * certificate to the transport/sender controls and asks this control for the token.
 *
 * `security: []` (declared, explicitly empty) → `auth: 'none'`; an empty requirement `{}` among
 * the alternatives → `auth: 'optional'`. An operation with no `security` at all (neither its own
 * nor the document's) keeps the API-wide behaviour (every configured provider, credentials
 * required): configuring the identity control is itself the statement that the API needs
 * authentication, and only an explicit declaration opens an operation.
 *
 * OWASP API Security Top 10 2023 API2 (broken authentication), API9 (inventory: the document is
 * the single source of truth).
 */
import type { CompiledDocument, CompiledOperation, SecurityRequirement } from '../../openapi/compile.ts';
import { ptrToken, resolvePointer } from '../../openapi/load.ts';
import type { Challenge, KeyLocation } from './errors.ts';

/** Identity providers an operation can accept (`mtls`: the transport control's certificate identity). */
export const PROVIDER_NAMES = ['jwt', 'introspection', 'api_key', 'mtls'] as const;
export type ProviderName = (typeof PROVIDER_NAMES)[number];

/** What one operation (or the API as a whole) accepts. Compiled once; shared by every request. */
export interface AccessPolicy {
  /** `operationId` (or `METHOD template`); `undefined` for the API-wide default policy. */
  readonly operation: string | undefined;
  /**
   * `required`: a credential the policy accepts must be sent; `optional`: none is needed, one sent
   * is verified; `none`: a public operation (a credential sent anyway is verified too).
   */
  readonly auth: 'required' | 'optional' | 'none';
  readonly jwt: boolean;
  readonly introspection: boolean;
  /** API key locations accepted (empty: API keys not accepted). */
  readonly keys: readonly KeyLocation[];
  /** The transport control's client-certificate identity (method `mtls`) suffices. */
  readonly mtls: boolean;
  /** The challenge of this policy's 401s (precomputed). */
  readonly challenge: Challenge;
  /** The same with the DPoP challenge first (RFC 9449 §7.1). */
  readonly dpopChallenge: Challenge;
}

/** A configuration override of one operation (`operations.<operationId>`). */
export type OperationOverride = { public: true } | { providers: ProviderName[] };

/** What is configured, as {@link compileAccess} needs it. */
export interface ConfiguredProviders {
  jwt: boolean;
  introspection: boolean;
  /** Locations of the `api_key` provider (undefined: not configured). */
  apiKey: readonly KeyLocation[] | undefined;
  /** `providers.api_key.header`/`query` set explicitly: they override the document's apiKey schemes. */
  apiKeyExplicit: boolean;
}

/** Inputs of {@link compileAccess}. */
export interface AccessInput {
  /** The compiled document (routing and security); undefined without `openapi`. */
  doc: CompiledDocument | undefined;
  /** Document name for messages (the `openapi` setting). */
  docName: string;
  /** Prefix of the document's paths in request paths (`/` for none). */
  basePath: string;
  overrides: Record<string, OperationOverride>;
  providers: ConfiguredProviders;
  realm: string;
  /** API-wide required scopes (space-separated) for `insufficient_scope` challenges. */
  scope: string | undefined;
  warn(message: string): void;
}

/** The compiled access table of one API. */
export interface AccessTable {
  /** The API-wide policy (no document, unmatched paths, operations without declared security). */
  readonly fallback: AccessPolicy;
  /** Every API key location of the API (configured and documented): where a key sent to an operation that accepts none is found. */
  readonly allKeys: readonly KeyLocation[];
  /** Policy by operation id (documented operations only). */
  readonly byOperation: ReadonlyMap<string, AccessPolicy>;
  /**
   * The policy of a request: one route lookup (the same router, base path and HEAD→GET rule as the
   * `contract` control), then a map read. Unmatched paths and methods get {@link fallback}.
   */
  lookup(method: string, path: string): AccessPolicy;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function policy(
  operation: string | undefined,
  auth: AccessPolicy['auth'],
  p: { jwt: boolean; introspection: boolean; keys: readonly KeyLocation[]; mtls: boolean },
  realm: string,
  scope: string | undefined,
): AccessPolicy {
  const challenge: Challenge = { realm, bearer: p.jwt || p.introspection, apiKeys: p.keys, scope };
  return { operation, auth, jwt: p.jwt, introspection: p.introspection, keys: p.keys, mtls: p.mtls, challenge, dpopChallenge: { ...challenge, dpop: true } };
}

/**
 * The `security` the document declares for `op` (operation level, else document level), or
 * `undefined` when it declares none. {@link CompiledOperation.security} cannot tell an explicit
 * `security: []` from an absent one; this reads the (bundled, local-`$ref`) document.
 */
export function declaredSecurity(doc: CompiledDocument, op: CompiledOperation): { security: SecurityRequirement[]; pointer: string } | undefined {
  const d = doc.loaded.doc;
  let item: unknown = isObj(d.paths) ? d.paths[op.template] : undefined;
  for (let i = 0; i < 16 && isObj(item) && typeof item.$ref === 'string'; i++) item = resolvePointer(d, item.$ref);
  const raw = isObj(item) ? item[op.method.toLowerCase()] : undefined;
  if (isObj(raw) && Array.isArray(raw.security)) return { security: raw.security as SecurityRequirement[], pointer: `${op.pointer}/security` };
  if (Array.isArray(d.security)) return { security: d.security as SecurityRequirement[], pointer: '/security' };
  return undefined;
}

type Kind = { kind: 'bearer' } | { kind: 'apiKey'; loc: KeyLocation | undefined } | { kind: 'mtls' } | { kind: 'unsupported'; why: string };

/**
 * Compiles the access policy of every operation once.
 * @throws {Error} naming the operation and JSON pointer: an unknown scheme name, an `apiKey`
 *   scheme `in: cookie` (unless the configuration sets the key location), an operation none of
 *   whose alternatives the configured providers can meet, an override naming an unknown
 *   `operationId` or a provider that is not configured, or `operations` without `openapi`.
 */
export function compileAccess(input: AccessInput): AccessTable {
  const { doc, providers: cfgP, realm, scope } = input;
  const cfgKeys = cfgP.apiKey ?? [];
  const fallback = policy(undefined, 'required', { jwt: cfgP.jwt, introspection: cfgP.introspection, keys: cfgKeys, mtls: false }, realm, scope);
  const byOperation = new Map<string, AccessPolicy>();
  if (doc === undefined) {
    if (Object.keys(input.overrides).length > 0) throw new Error('operations: overriding operations needs "openapi"');
    return { fallback, byOperation, allKeys: cfgKeys, lookup: () => fallback };
  }
  const where = (op: CompiledOperation, ptr: string) => `${input.docName}: operation "${op.id}" (${ptr})`;

  const schemeKind = (name: string, op: CompiledOperation, ptr: string): Kind => {
    const s = doc.securitySchemes[name];
    if (s === undefined) throw new Error(`${where(op, ptr)}: unknown security scheme "${name}" (not in components.securitySchemes)`);
    const schemePtr = `/components/securitySchemes/${ptrToken(name)}`;
    switch (s.type) {
      case 'oauth2':
      case 'openIdConnect':
        return { kind: 'bearer' };
      case 'http': {
        const sch = String(s.scheme ?? '').toLowerCase();
        return sch === 'bearer' ? { kind: 'bearer' } : { kind: 'unsupported', why: `scheme "${name}" is http ${sch || '(none)'}` };
      }
      case 'apiKey': {
        if (cfgP.apiKeyExplicit) return { kind: 'apiKey', loc: undefined };
        if (typeof s.name !== 'string' || s.name === '') throw new Error(`${input.docName}: at ${schemePtr}/name: an apiKey scheme needs a name`);
        if (s.in === 'header') {
          if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(s.name)) throw new Error(`${input.docName}: at ${schemePtr}/name: "${s.name}" is not an HTTP header name`);
          return { kind: 'apiKey', loc: { in: 'header', name: s.name.toLowerCase() } };
        }
        if (s.in === 'query') return { kind: 'apiKey', loc: { in: 'query', name: s.name } };
        throw new Error(
          `${input.docName}: at ${schemePtr}/in: API keys in ${JSON.stringify(s.in)} are not supported (header or query; or set providers.api_key.header to override the document)`,
        );
      }
      case 'mutualTLS':
        return { kind: 'mtls' };
      default:
        return { kind: 'unsupported', why: `scheme "${name}" has type ${JSON.stringify(s.type)}` };
    }
  };

  const warnedQuery = new Set<string>();
  const addKey = (keys: KeyLocation[], loc: KeyLocation) => {
    if (!keys.some((k) => k.in === loc.in && k.name === loc.name)) keys.push(loc);
    if (loc.in === 'query' && !warnedQuery.has(loc.name) && !cfgKeys.some((k) => k.in === 'query' && k.name === loc.name)) {
      warnedQuery.add(loc.name);
      input.warn(
        `identity: the document accepts API keys in the query parameter "${loc.name}": URLs are logged by proxies and leak via Referer; prefer a header`,
      );
    }
  };

  for (const id of Object.keys(input.overrides)) {
    if (!doc.byId.has(id)) throw new Error(`operations.${id}: no operation with this operationId in ${input.docName}`);
  }

  for (const op of doc.operations) {
    const ov = input.overrides[op.id];
    const declared = declaredSecurity(doc, op);
    // API key locations the document gives this operation (for overrides naming api_key).
    const docKeys: KeyLocation[] = [];
    if (declared !== undefined) {
      declared.security.forEach((req, i) => {
        if (!isObj(req)) throw new Error(`${where(op, `${declared.pointer}/${i}`)}: a security requirement must be an object`);
        for (const name of Object.keys(req)) {
          const k = schemeKind(name, op, `${declared.pointer}/${i}`);
          if (k.kind === 'apiKey' && k.loc !== undefined) addKey(docKeys, k.loc);
        }
      });
    }

    if (ov !== undefined) {
      if ('public' in ov) {
        byOperation.set(op.id, policy(op.id, 'none', fallback, realm, scope));
        continue;
      }
      for (const p of ov.providers) {
        const ok = p === 'mtls' || (p === 'jwt' ? cfgP.jwt : p === 'introspection' ? cfgP.introspection : cfgP.apiKey !== undefined);
        if (!ok) throw new Error(`operations.${op.id}.providers: provider "${p}" is not configured under providers`);
      }
      const keys = ov.providers.includes('api_key') ? (docKeys.length > 0 ? docKeys : [...cfgKeys]) : [];
      byOperation.set(
        op.id,
        policy(
          op.id,
          'required',
          { jwt: ov.providers.includes('jwt'), introspection: ov.providers.includes('introspection'), keys, mtls: ov.providers.includes('mtls') },
          realm,
          scope,
        ),
      );
      continue;
    }

    if (declared === undefined) continue; // the API-wide fallback
    const sec = declared.security;
    if (sec.length === 0) {
      byOperation.set(op.id, policy(op.id, 'none', fallback, realm, scope));
      continue;
    }
    let optional = false;
    let jwt = false;
    let introspection = false;
    let mtls = false;
    const keys: KeyLocation[] = [];
    const unusable: string[] = [];
    for (const [i, req] of sec.entries()) {
      const names = Object.keys(req);
      if (names.length === 0) {
        optional = true;
        continue;
      }
      const kinds = names.map((n) => schemeKind(n, op, `${declared.pointer}/${i}`));
      const bad = kinds.find((k): k is Extract<Kind, { kind: 'unsupported' }> => k.kind === 'unsupported');
      const label = `[${names.join(' + ')}]`;
      if (bad !== undefined) {
        unusable.push(`${label}: ${bad.why}, which the identity control does not serve`);
        continue;
      }
      const bearer = kinds.some((k) => k.kind === 'bearer');
      const apiKeys = kinds.filter((k): k is Extract<Kind, { kind: 'apiKey' }> => k.kind === 'apiKey');
      if (bearer && apiKeys.length > 0) {
        unusable.push(`${label}: needs an access token and an API key together (one credential per request)`);
        continue;
      }
      if (apiKeys.length > 1) {
        unusable.push(`${label}: needs several API keys together (one credential per request)`);
        continue;
      }
      if (bearer) {
        if (!cfgP.jwt && !cfgP.introspection) {
          unusable.push(`${label}: needs providers.jwt or providers.introspection`);
          continue;
        }
        jwt ||= cfgP.jwt;
        introspection ||= cfgP.introspection;
      } else if (apiKeys.length === 1) {
        if (cfgP.apiKey === undefined) {
          unusable.push(`${label}: needs providers.api_key`);
          continue;
        }
        const loc = (apiKeys[0] as { loc: KeyLocation | undefined }).loc;
        if (loc === undefined) for (const k of cfgKeys) addKey(keys, k);
        else addKey(keys, loc);
      } else mtls = true; // mutualTLS only
    }
    const none = !jwt && !introspection && keys.length === 0 && !mtls;
    if (none && !optional) {
      throw new Error(
        `${where(op, declared.pointer)}: none of its security requirements can be met by the configured providers (${unusable.join('; ')}); configure a provider or override the operation under operations`,
      );
    }
    if (unusable.length > 0 && !none) input.warn(`identity: ${where(op, declared.pointer)}: alternatives not accepted: ${unusable.join('; ')}`);
    if (none) byOperation.set(op.id, policy(op.id, 'optional', fallback, realm, scope));
    else byOperation.set(op.id, policy(op.id, optional ? 'optional' : 'required', { jwt, introspection, keys, mtls }, realm, scope));
  }

  const byOp = new Map<CompiledOperation, AccessPolicy>();
  for (const op of doc.operations) {
    const p = byOperation.get(op.id);
    if (p !== undefined) byOp.set(op, p);
  }
  const allKeys: KeyLocation[] = [...cfgKeys];
  for (const p of byOperation.values()) for (const k of p.keys) if (!allKeys.some((x) => x.in === k.in && x.name === k.name)) allKeys.push(k);
  const base = input.basePath === '/' ? '' : input.basePath;
  const router = doc.router;
  return {
    fallback,
    byOperation,
    allKeys,
    lookup(method, rawPath) {
      let path = rawPath;
      if (base !== '') {
        if (path === base) path = '/';
        else if (path.startsWith(`${base}/`)) path = path.slice(base.length);
        else return fallback;
      }
      const route = router.match(path);
      if (route === undefined) return fallback;
      const op = route.methods.get(method) ?? (method === 'HEAD' ? route.methods.get('GET') : undefined);
      return op === undefined ? fallback : (byOp.get(op) ?? fallback);
    },
  };
}
