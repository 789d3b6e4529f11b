/**
 * Rate specifications (`20/s`, `600/min`, `1000/h`, `10000/day`) and the IETF RateLimit header
 * fields (draft-ietf-httpapi-ratelimit-headers-11, §3 RateLimit-Policy and §4 RateLimit).
 */

/** A parsed rate: `count` requests per `periodMs` milliseconds. */
export interface RateSpec {
  count: number;
  periodMs: number;
}

const UNITS: Record<string, number> = {
  s: 1000,
  sec: 1000,
  second: 1000,
  m: 60_000,
  min: 60_000,
  minute: 60_000,
  h: 3_600_000,
  hr: 3_600_000,
  hour: 3_600_000,
  d: 86_400_000,
  day: 86_400_000,
};

const RATE_RE = /^\s*(\d+)\s*\/\s*([a-z]+)\s*$/i;

/**
 * Parses a rate such as `20/s`, `600/min`, `1000/h` or `10000/day` (also `sec`, `second`, `m`,
 * `minute`, `hr`, `hour`, `d`). Used by the config schema and by the zero-config CLI flag
 * `--rate-limit`.
 * @returns `{ count, periodMs }` (count ≥ 1, periodMs in milliseconds).
 * @throws {Error} `invalid rate "…"` naming the accepted forms.
 */
export function parseRateSpec(spec: string): RateSpec {
  const m = RATE_RE.exec(spec);
  const unit = m ? UNITS[(m[2] as string).toLowerCase()] : undefined;
  const count = m ? Number(m[1]) : 0;
  if (unit === undefined || !Number.isSafeInteger(count) || count < 1) {
    throw new Error(`invalid rate "${spec}": expected COUNT/UNIT with UNIT one of s, min, h, day (e.g. 20/s, 10000/day)`);
  }
  return { count, periodMs: unit };
}

/**
 * One `RateLimit-Policy` list member: `"name";q=QUOTA;w=WINDOW_SECONDS`
 * (an sf-string policy identifier with the `q` and `w` parameters, RFC 8941 syntax).
 */
export function policyItem(name: string, quota: number, windowS: number): string {
  return `"${name}";q=${quota};w=${windowS}`;
}

/**
 * One `RateLimit` list member: `"name";r=REMAINING;t=SECONDS_UNTIL_RESET`.
 * `t` is the number of seconds until the quota is fully available again (rounded up).
 */
export function rateLimitItem(name: string, remaining: number, resetS: number): string {
  return `"${name}";r=${remaining};t=${resetS}`;
}
