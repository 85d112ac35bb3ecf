/**
 * How a provider request's outcome becomes a ProviderError, and how a poll retries it: the same for
 * every provider client, so reasons, retryability and backoff cannot drift apart between providers.
 */
import type { Logger } from 'pino';
import { TransportError } from '../http/errors.ts';
import { backoffDelayMs, parseRetryAfter, sleep } from '../http/retry.ts';
import { ProviderError } from './errors.ts';

/** A provider's `retry` settings: tries per request within one poll and the backoff between them. */
export interface RetryPolicy {
  readonly attempts: number;
  readonly initialBackoff: number;
  readonly maxBackoff: number;
}

/** Longer Retry-After values are clamped, so one odd header cannot park a scope for hours. */
const MAX_RETRY_AFTER_MS = 5 * 60_000;

/**
 * The longest wait a poll sits out while holding its worker slot. A provider that asks for more ends the
 * poll instead (nothing is lost: the checkpoint stays at the last commit) and the scope is not polled
 * again before the wait is over, so a few hostile scopes answering `Retry-After: 300` cannot occupy
 * every poll worker while the other scopes starve.
 */
export const MAX_IN_POLL_WAIT_MS = 10_000;

/** The wait a provider's response asks for (Retry-After), clamped; undefined when it asks for none. */
export function retryAfterMs(headers: Readonly<Record<string, string>>): number | undefined {
  return parseRetryAfter(headers['retry-after'], Date.now(), MAX_RETRY_AFTER_MS);
}

/**
 * A request that got no response, as the poll's error. Our own abort (shutdown) and anything that is
 * not a transport failure are rethrown unchanged: they are not the provider's doing.
 */
export function transportFailure(provider: string, what: string, error: unknown): ProviderError {
  if (!(error instanceof TransportError) || error.failure === 'aborted') throw error;
  return new ProviderError({
    provider,
    reason: error.failure,
    retryable: error.retryable,
    message: `${what}: ${error.message}`,
    cause: error,
  });
}

/**
 * Between two attempts of one request: throws `error` when it is not worth retrying or the attempts
 * are used up, otherwise logs the retry and waits Retry-After or a jittered backoff.
 */
export async function backOffOrThrow(
  error: ProviderError,
  attempt: number,
  retry: RetryPolicy,
  signal: AbortSignal,
  log: Logger,
): Promise<void> {
  const { attempts, initialBackoff, maxBackoff } = retry;
  if (!error.retryable || attempt >= attempts) throw error;
  if (error.retryAfterMs !== undefined && error.retryAfterMs > MAX_IN_POLL_WAIT_MS) throw error;
  const waitMs =
    error.retryAfterMs ?? backoffDelayMs(attempt - 1, { initialMs: initialBackoff, maxMs: maxBackoff });
  log.warn(
    { reason: error.reason, status: error.status, attempt, waitMs },
    `${error.message}; retrying in ${waitMs} ms (attempt ${attempt} of ${attempts})`,
  );
  await sleep(waitMs, signal);
}
