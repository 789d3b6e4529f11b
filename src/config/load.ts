/**
 * Loading configuration: YAML → `${ENV}` substitution → schema validation, with every error
 * reported as file, line, path and reason. Nothing here touches the running gateway: a load
 * that fails leaves the caller's current configuration in place.
 */
import { readFile } from 'node:fs/promises';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import { configSchema, type RampartConfig } from './schema.ts';

/** One configuration problem, located in its file. */
export interface ConfigIssue {
  file: string;
  /** 1-based line, when the path exists in the file. */
  line?: number;
  column?: number;
  /** Path into the document, e.g. `apis[0].upstream.targets[1]`. */
  path: string;
  message: string;
}

/** A configuration that cannot be used; `issues` lists every problem found. */
export class ConfigError extends Error {
  readonly issues: ConfigIssue[];
  constructor(issues: ConfigIssue[]) {
    super(issues.map(formatIssue).join('\n'));
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

/** `file:line:col: path: message`. */
export function formatIssue(i: ConfigIssue): string {
  const pos = i.line !== undefined ? `:${i.line}:${i.column ?? 1}` : '';
  return `${i.file}${pos}: ${i.path || '(root)'}: ${i.message}`;
}

/** Renders a path array as `a.b[0].c`. */
export function pathString(path: readonly PropertyKey[]): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s === '' ? String(p) : `.${String(p)}`;
  return s;
}

/** Maps document paths to positions. */
export type Locator = (path: readonly PropertyKey[]) => { line: number; column: number } | undefined;

/** A configuration source parsed and validated. */
export interface LoadedConfig {
  file: string;
  config: RampartConfig;
  locate: Locator;
}

const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

function substituteEnv(doc: Document, env: NodeJS.ProcessEnv, issues: ConfigIssue[], file: string, lc: LineCounter): void {
  const visit = (node: unknown, path: PropertyKey[]): void => {
    if (isMap(node)) {
      for (const item of node.items) visit(item.value, [...path, isScalar(item.key) ? String(item.key.value) : '?']);
    } else if (isSeq(node)) {
      for (let i = 0; i < node.items.length; i++) visit(node.items[i], [...path, i]);
    } else if (isScalar(node) && typeof node.value === 'string' && node.value.includes('${')) {
      node.value = node.value.replace(ENV_REF, (_m, name: string, dflt: string | undefined) => {
        const v = env[name];
        if (v !== undefined) return v;
        if (dflt !== undefined) return dflt;
        const pos = node.range ? lc.linePos(node.range[0]) : undefined;
        issues.push({ file, line: pos?.line, column: pos?.col, path: pathString(path), message: `environment variable ${name} is not set` });
        return '';
      });
    }
  };
  visit(doc.contents, []);
}

/**
 * Parses and validates configuration text.
 * @param file name used in error messages.
 * @throws {ConfigError} listing every YAML, environment and schema problem.
 */
export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const issues: ConfigIssue[] = [];
  for (const e of doc.errors) {
    const pos = lc.linePos(e.pos[0]);
    issues.push({ file, line: pos.line, column: pos.col, path: '', message: `YAML: ${e.message.split('\n')[0]}` });
  }
  if (issues.length) throw new ConfigError(issues);
  substituteEnv(doc, env, issues, file, lc);
  const locate: Locator = (path) => {
    for (let n = path.length; n >= 0; n--) {
      const node = doc.getIn(path.slice(0, n) as unknown[], true) as Node | undefined;
      if (node && typeof node === 'object' && 'range' in node && node.range) {
        const p = lc.linePos(node.range[0]);
        return { line: p.line, column: p.col };
      }
    }
    return undefined;
  };
  if (issues.length) throw new ConfigError(issues);
  const raw = doc.toJS({ maxAliasCount: 100 }) as unknown;
  return { file, config: validateConfig(raw, file, locate), locate };
}

/**
 * Validates a configuration object against the schema.
 * @throws {ConfigError} listing every schema problem, located with `locate` when given.
 */
export function validateConfig(raw: unknown, file = '(inline)', locate?: Locator): RampartConfig {
  const r = configSchema.safeParse(raw ?? {});
  if (r.success) return r.data;
  throw new ConfigError(zodIssues(r.error, file, locate));
}

/** Converts zod issues to located configuration issues. */
export function zodIssues(err: z.ZodError, file: string, locate?: Locator, prefix: readonly PropertyKey[] = []): ConfigIssue[] {
  return err.issues.map((i) => {
    const path = [...prefix, ...i.path];
    const full = i.code === 'unrecognized_keys' ? [...path, i.keys[0] as string] : path;
    const pos = locate?.(full);
    let message = i.message;
    if (i.code === 'unrecognized_keys') message = `unknown key(s): ${i.keys.join(', ')}`;
    return { file, line: pos?.line, column: pos?.column, path: pathString(path), message };
  });
}

/**
 * Reads, parses and validates a configuration file.
 * @throws {ConfigError} when the file cannot be read or is invalid.
 */
export async function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new ConfigError([{ file, path: '', message: `cannot read file: ${(e as Error).message}` }]);
  }
  return parseConfig(text, file, env);
}
