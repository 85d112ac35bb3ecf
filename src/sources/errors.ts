import { redactSecrets } from '../config/redact.ts';

/**
 * Why a poll failed, as a small closed set: it is a metric label (`auditlog_poll_errors_total{reason}`)
 * and what alerts and runbooks key on.
 */
export type PollErrorReason =
  | 'unauthorized'
  | 'forbidden'
  | 'scope_not_found'
  /** 410, or a 404 that is not the API's own answer: the API itself is gone (STACKIT retiring v2). */
  | 'api_retired'
  | 'bad_request'
  | 'rate_limited'
  | 'server_error'
  | 'unexpected_status'
  | 'timeout'
  | 'network'
  | 'too_large'
  | 'invalid_json'
  | 'invalid_response'
  | 'origin_refused'
  | 'pagination_loop';

/** A provider call that failed, with enough context to act on: provider, scope, status, request. */
export class ProviderError extends Error {
  readonly provider: string;
  readonly reason: PollErrorReason;
  readonly status: number | undefined;
  /** Worth retrying within this poll (429, 5xx, timeouts); otherwise the poll fails at once. */
  readonly retryable: boolean;
  /** The provider asked us to wait this long (Retry-After). */
  readonly retryAfterMs: number | undefined;

  constructor(init: {
    provider: string;
    reason: PollErrorReason;
    message: string;
    status?: number | undefined;
    retryable: boolean;
    retryAfterMs?: number | undefined;
    cause?: unknown;
  }) {
    // Messages quote the provider's error body, which may echo our credential back: redacted before
    // the stack (which repeats the message) is captured.
    super(redactSecrets(init.message), { cause: init.cause });
    this.name = 'ProviderError';
    this.provider = init.provider;
    this.reason = init.reason;
    this.status = init.status;
    this.retryable = init.retryable;
    this.retryAfterMs = init.retryAfterMs;
  }

  /** The same error, asking the scope to wait `ms` before its next poll (a request budget's pause). */
  waitingFor(ms: number): ProviderError {
    return new ProviderError({
      provider: this.provider,
      reason: this.reason,
      message: this.message,
      status: this.status,
      retryable: this.retryable,
      retryAfterMs: Math.max(ms, this.retryAfterMs ?? 0),
      cause: this.cause,
    });
  }
}

/** How an HTTP status from a provider API is treated. */
export function reasonForStatus(status: number): { reason: PollErrorReason; retryable: boolean } {
  if (status === 401) return { reason: 'unauthorized', retryable: false };
  if (status === 403) return { reason: 'forbidden', retryable: false };
  if (status === 404) return { reason: 'scope_not_found', retryable: false };
  if (status === 429) return { reason: 'rate_limited', retryable: true };
  if (status === 408 || status === 502 || status === 503 || status === 504 || status === 500) {
    return { reason: 'server_error', retryable: true };
  }
  if (status >= 500) return { reason: 'server_error', retryable: true };
  if (status >= 400) return { reason: 'bad_request', retryable: false };
  return { reason: 'unexpected_status', retryable: false };
}
