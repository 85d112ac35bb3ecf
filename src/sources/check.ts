import { type CheckStep, fail, ok, skip } from '../http/check.ts';
import { ProviderError } from './errors.ts';
import type { PollScope, Source } from './source.ts';

/**
 * The read half of a provider's doctor check: the first page of each scope given, read the way a poll
 * reads it (auth, retries, parsing), then abandoned. Nothing is committed anywhere. A 401 is reported
 * as auth, a 403 or 404 as permission, anything else as the read.
 */
export async function checkFirstPages(
  source: Source,
  scopes: readonly PollScope[],
  signal: AbortSignal,
  log: Parameters<Source['pull']>[2]['log'],
): Promise<CheckStep[]> {
  const steps: CheckStep[] = [];
  for (const scope of scopes) {
    const what = `${scope.ref.kind} ${scope.ref.id}`;
    try {
      let events = 0;
      for await (const page of source.pull(scope, undefined, { signal, log, now: Date.now })) {
        events = page.events.length;
        break; // one page is the harmless read
      }
      steps.push(ok(`auth (${what})`, 'credentials accepted'));
      steps.push(ok(`read (${what})`, `first page read: ${events} events`));
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      const status = error instanceof ProviderError ? error.status : undefined;
      if (status === 401) {
        steps.push(fail(`auth (${what})`, message));
        steps.push(skip(`read (${what})`, 'not authenticated'));
      } else if (status === 403 || status === 404) {
        steps.push(ok(`auth (${what})`, 'credentials accepted'));
        steps.push(fail(`permission (${what})`, message));
      } else {
        steps.push(fail(`read (${what})`, message));
      }
    }
  }
  return steps;
}

/** One scope of each kind (organization, folder, project): what one credential can reach differs by kind. */
export function onePerKind<S>(scopes: readonly PollScope<S>[]): PollScope<S>[] {
  const seen = new Map<string, PollScope<S>>();
  for (const scope of scopes) if (!seen.has(scope.ref.kind)) seen.set(scope.ref.kind, scope);
  return [...seen.values()];
}
