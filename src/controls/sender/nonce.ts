/**
 * DPoP server nonces (RFC 9449 §9, §8.2): one random nonce per time window and API, agreed on
 * through the state store (`setIfAbsent`), so every gateway process sharing the store hands out
 * and accepts the same value. A proof must carry the nonce of the current or the previous window;
 * with the previous one the request passes and the response carries the fresh nonce.
 *
 * Costs: at most one store write and one read per window per process; no per-client state.
 */
import { randomBytes } from 'node:crypto';
import type { Store } from '../../state/store.ts';

/** How a presented nonce compares with the server's. */
export type NonceCheck = 'current' | 'previous' | 'invalid';

/** Options of {@link DpopNonces}. */
export interface DpopNonceOptions {
  store: Store;
  /** Namespace of the store keys, e.g. the API name. */
  scope: string;
  /** Window length in ms: a nonce is accepted for one to two windows. */
  windowMs: number;
  /** Clock in ms (tests). */
  now?: () => number;
  /** Called when the store fails (the process then uses a local nonce). */
  onStoreError?: (err: Error) => void;
}

/** Nonce issuer and checker. */
export class DpopNonces {
  private readonly o: DpopNonceOptions;
  private readonly now: () => number;
  /** window index → nonce (only the current and the previous window are kept). */
  private readonly values = new Map<number, Promise<string>>();

  constructor(o: DpopNonceOptions) {
    this.o = o;
    this.now = o.now ?? Date.now;
  }

  /** The nonce of the current window (base64url, 22 characters). */
  current(): Promise<string> {
    return this.valueOf(Math.floor(this.now() / this.o.windowMs));
  }

  /** Compares `nonce` with the current and the previous window's nonce. */
  async check(nonce: unknown): Promise<NonceCheck> {
    if (typeof nonce !== 'string' || nonce.length === 0 || nonce.length > 64) return 'invalid';
    const w = Math.floor(this.now() / this.o.windowMs);
    if ((await this.valueOf(w)) === nonce) return 'current';
    if ((await this.valueOf(w - 1)) === nonce) return 'previous';
    return 'invalid';
  }

  private valueOf(w: number): Promise<string> {
    let p = this.values.get(w);
    if (p === undefined) {
      p = this.load(w);
      this.values.set(w, p);
      for (const k of this.values.keys()) if (k < w - 1) this.values.delete(k);
    }
    return p;
  }

  private async load(w: number): Promise<string> {
    const key = `dpop:nonce:${this.o.scope}:${w}`;
    const mine = randomBytes(16).toString('base64url');
    const ttl = this.o.windowMs * 3;
    try {
      if (await this.o.store.setIfAbsent(key, mine, ttl)) return mine;
      return (await this.o.store.get(key)) ?? mine;
    } catch (err) {
      // Degraded: this process keeps its own nonce for the window (other processes may differ).
      this.o.onStoreError?.(err as Error);
      return mine;
    }
  }
}
