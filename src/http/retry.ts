/** Backoff and Retry-After arithmetic shared by provider clients and sinks. */

export interface BackoffPolicy {
  readonly initialMs: number;
  readonly maxMs: number;
}

/**
 * Exponential backoff with full jitter (a uniform draw in [0, min(max, initial·2^attempt)]): retries of
 * many scopes and replicas spread out instead of hitting a recovering API in lockstep.
 */
export function backoffDelayMs(
  attempt: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(random() * ceiling);
}

/** The three HTTP-date forms of RFC 9110 §5.6.7: IMF-fixdate, obsolete RFC 850, and asctime. */
const HTTP_DATE = [
  /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/,
  /^[A-Z][a-z]+day, \d{2}-[A-Z][a-z]{2}-\d{2} \d{2}:\d{2}:\d{2} GMT$/,
  /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) [A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} \d{4}$/,
];

/**
 * Parses a Retry-After header (delta seconds or an HTTP-date) to a wait in ms, clamped to [0, maxMs].
 * A date in the past means "now", not a negative wait (peers hung forever on that: beats#40106).
 * Anything else (`-5`, `soon`, `1e9`, a bare year) means the header is absent: the caller's own
 * backoff applies. (`Date.parse` reads `-5` as the year 5 BC, which once turned it into "retry now".)
 */
export function parseRetryAfter(
  header: string | undefined,
  nowMs: number,
  maxMs: number,
): number | undefined {
  if (header === undefined) return undefined;
  const value = header.trim();
  if (value === '') return undefined;
  let waitMs: number;
  if (/^\d+(\.\d+)?$/.test(value)) {
    waitMs = Number(value) * 1000;
  } else if (HTTP_DATE.some((form) => form.test(value))) {
    const at = Date.parse(value);
    if (Number.isNaN(at)) return undefined;
    waitMs = at - nowMs;
  } else {
    return undefined;
  }
  if (!Number.isFinite(waitMs)) return undefined;
  return Math.min(maxMs, Math.max(0, Math.round(waitMs)));
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
