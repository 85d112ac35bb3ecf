import type { RedisClient } from '../redis/client.ts';
import { Committer, type IdConflict, type PushCommitOptions } from './commit.ts';
import type { AuditEvent } from './envelope.ts';
import type { RedisKeys } from './keys.ts';

export type { PushCommitOptions } from './commit.ts';

export type PushCommitResult =
  | {
      readonly outcome: 'committed';
      /** The events that were new, in order (conflicting variants under their derived ids). */
      readonly added: readonly AuditEvent[];
      readonly conflicts: readonly IdConflict[];
      /** Already committed, by a push or by a poll of the same scope. */
      readonly duplicates: number;
      readonly longestOutbox: number;
    }
  | { readonly outcome: 'outbox_full'; readonly sink: string; readonly length: number };

/**
 * Commits pushed events with the page commit's own Lua (Committer.commitPushed, PUSH_COMMIT): the same
 * dedupe, id-conflict and outbox rules, one atomic script per scope, no lease or checkpoint.
 */
export class PushCommitter {
  readonly #committer: Committer;

  constructor(redis: RedisClient, keys: RedisKeys) {
    this.#committer = new Committer(redis, keys);
  }

  /** Throws when Redis does not answer: then nothing may be assumed committed. */
  async commit(
    scopeKey: string,
    sinks: readonly string[],
    events: readonly AuditEvent[],
    seenAtMs: number,
    options: PushCommitOptions,
  ): Promise<PushCommitResult> {
    const result = await this.#committer.commitPushed(scopeKey, sinks, events, seenAtMs, options);
    if ('full' in result) return { outcome: 'outbox_full', ...result.full };
    return { outcome: 'committed', ...result };
  }
}
