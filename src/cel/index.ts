/**
 * CEL (Common Expression Language, https://cel.dev) for configuration expressions, on
 * `@bufbuild/cel`: one place that compiles an expression once at configuration load and reports
 * syntax errors with their position. Used by the identity (`require.claims`), authz (BFLA/BOLA
 * rules) and abuse (`cel:` rate-limit keys) controls.
 */
import { celEnv, isCelError, parse, plan } from '@bufbuild/cel';

/** A compiled expression: evaluates against variables; returns the value or a CEL error value (see {@link isCelError}). */
export type CelProgram = (vars: Record<string, unknown>) => unknown;

let env: ReturnType<typeof celEnv> | undefined;

/**
 * Compiles a CEL expression once.
 * @param where the configuration path, used as the error prefix.
 * @throws {Error} `WHERE: invalid CEL expression at line L, column C: REASON` on a syntax error.
 */
export function compileCel(expr: string, where: string): CelProgram {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(expr);
  } catch (err) {
    const e = err as Error & { location?: { start?: { line: number; column: number } }; rawMessage?: string };
    const loc = e.location?.start;
    throw new Error(`${where}: invalid CEL expression${loc ? ` at line ${loc.line}, column ${loc.column}` : ''}: ${e.rawMessage ?? e.message}`);
  }
  env ??= celEnv();
  const run = plan(env, parsed);
  return (vars) => run(vars as never);
}

export { isCelError };
