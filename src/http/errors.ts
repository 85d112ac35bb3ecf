import { redactSecrets } from '../config/redact.ts';

/** Why a request produced no HTTP response. `aborted` is our own shutdown, never the provider's fault. */
export type TransportFailure = 'timeout' | 'network' | 'aborted' | 'too_large';

export class TransportError extends Error {
  readonly failure: TransportFailure;

  constructor(failure: TransportFailure, message: string, options?: { cause?: unknown }) {
    super(redactSecrets(message), options);
    this.name = 'TransportError';
    this.failure = failure;
  }

  get retryable(): boolean {
    return this.failure === 'timeout' || this.failure === 'network';
  }
}

/**
 * A URL outside the origin a credential was configured for. Providers hand us URLs (`next`, `poll_more`,
 * redirects); following one to another host would send it our bearer token.
 */
export class OriginRefusedError extends Error {
  readonly url: string;
  readonly allowedOrigin: string;

  constructor(url: string, allowedOrigin: string, what: string) {
    super(`${what}: refusing to send credentials to ${safeUrl(url)}; only ${allowedOrigin} is configured`);
    this.name = 'OriginRefusedError';
    this.url = url;
    this.allowedOrigin = allowedOrigin;
  }
}

/** A URL for messages: no userinfo, no query string (cursors and signatures stay out of logs). */
export function safeUrl(url: string | URL): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return '<invalid URL>';
  }
}
