import { createHash } from 'node:crypto';
import type { Secret } from '../../../config/secret.ts';

/**
 * Where STACKIT API clients get their bearer token. The key flow mints short-lived tokens; a static
 * token (deprecated by STACKIT) is handed out as is. Clients never see how.
 */
export interface AccessTokenSource {
  /** A bearer token valid now; mints one when needed (one mint at a time, however many callers wait). */
  token(signal: AbortSignal): Promise<string>;
  /**
   * An API refused `token` with 401: forget it. True when a fresh token may fix it (the key flow can mint
   * another); false when nothing would change (a static token).
   */
  invalidate(token: string): boolean;
  /** Stable and not secret: names the credential's request budget (`sa-<service account id>`). */
  readonly credentialId: string;
  /** For messages, never the value: `service account x@sa.stackit.cloud (key …)`. */
  readonly description: string;
  close(): Promise<void>;
}

/** A long-lived token from the config. */
export class StaticTokenSource implements AccessTokenSource {
  readonly credentialId: string;
  readonly description: string;
  readonly #secret: Secret;

  constructor(secret: Secret) {
    this.#secret = secret;
    // A hash prefix tells credentials apart in Redis keys and metrics without revealing anything usable.
    this.credentialId = `token-${createHash('sha256').update(secret.reveal()).digest('hex').slice(0, 16)}`;
    this.description = `static token (${secret.origin})`;
  }

  async token(): Promise<string> {
    return this.#secret.reveal();
  }

  invalidate(): boolean {
    return false;
  }

  async close(): Promise<void> {}
}
