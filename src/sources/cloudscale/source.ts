import { ProviderError } from '../errors.ts';
import { elementSha256, parsePageForPoll, structureDefect } from '../json-page.ts';
import type {
  Checkpoint,
  Page,
  PollScope,
  ProviderInstance,
  PullContext,
  Source,
  SourceDeps,
} from '../source.ts';
import { StrikeCounter } from '../strikes.ts';
import {
  type Clock,
  type CloudscaleState,
  expiredSinceCursorMs,
  firstStart,
  readState,
  recoveryStart,
  seenHorizonMs,
  type TimeStart,
} from './checkpoint.ts';
import { ProjectLogsClient } from './client.ts';
import {
  type CloudscaleProviderSettings,
  type CloudscaleScopeSettings,
  PAGE_SIZE,
  RETENTION_MS,
} from './config.ts';
import { EntryIds } from './event-id.ts';
import { entryDefects, entryTime, type ParsedPage, parsePage, type RawEntry, toAuditEvent } from './page.ts';

/**
 * Statuses on a stored cursor URL that mean "this cursor is no good" rather than "this project or
 * token is": the read restarts from time instead (400 bad cursor, 404 unknown cursor as Django REST
 * framework answers it, 410 expired).
 */
const CURSOR_REJECTED = new Set([400, 404, 410]);
/**
 * An entry without a usable time fails its poll, because a transient glitch must not ship a bogus event.
 * If the API sends the same broken bytes this many polls in a row the defect is real, and the entry
 * ships with the fetch time and anomalies instead of stalling the project forever.
 */
const STRIKES_BEFORE_ACCEPTING = 3;

/** The part of the state that evolves page by page. */
type Progress = Omit<CloudscaleState, 'v' | 'url' | 'urlAtMs'>;

/** Where a poll is reading. */
interface Read {
  url: URL;
  /** The URL is a stored cursor, which the API may refuse. */
  resuming: boolean;
  progress: Progress;
}

/**
 * cloudscale.ch project logs (`GET /v1/project-logs`), one project per scope, each with its own token.
 * A first poll asks for `start = now − lookback`; every poll then follows `next` until it is null and
 * keeps the last cursor URL as the checkpoint, committed with each page's events. The API returns
 * entries in primary-key order and its cursor never passes an entry that commits later, so late
 * commits arrive through `poll_more` without any overlap. When a stored cursor is refused, the read
 * restarts from the newest delivered time minus the overlap and the seen-set drops the repeats.
 */
export class CloudscaleSource implements Source<CloudscaleScopeSettings> {
  readonly #provider: ProviderInstance<CloudscaleProviderSettings>;
  readonly #client: ProjectLogsClient;
  readonly #strikes = new StrikeCounter();

  constructor(provider: ProviderInstance<CloudscaleProviderSettings>, deps: SourceDeps) {
    this.#provider = provider;
    this.#client = new ProjectLogsClient(provider.settings, {
      providerName: provider.name,
      instanceId: deps.instanceId,
      onRequest: deps.onRequest,
    });
    if (provider.settings.tls.insecureSkipVerify) {
      deps.log.warn(
        `provider "${provider.name}": TLS certificate verification is OFF (tls.insecureSkipVerify)`,
      );
    }
  }

  async *pull(
    scope: PollScope<CloudscaleScopeSettings>,
    checkpoint: Checkpoint | undefined,
    ctx: PullContext,
  ): AsyncIterable<Page> {
    const settings = this.#provider.settings;
    const { project, token } = scope.settings;
    const overlapMs = scope.settings.overlap ?? settings.overlap;
    const what = `cloudscale provider "${this.#provider.name}", project ${project}`;
    const read = this.#begin(scope, readState(checkpoint, scope.key), what, ctx);

    const requested = new Set<string>();
    for (let pageNo = 1; pageNo <= settings.maxPagesPerPoll; pageNo++) {
      ctx.signal.throwIfAborted();
      const where = `${what}, page ${pageNo}`;
      const current = read.url;
      requested.add(current.href);
      const requestedAtMs = ctx.now();
      let body: Buffer;
      try {
        body = await this.#client.fetchPage(current, token, where, ctx.signal, ctx.log);
      } catch (error) {
        if (read.resuming && error instanceof ProviderError && CURSOR_REJECTED.has(error.status ?? 0)) {
          const start = recoveryStart(this.#clock(ctx), read.progress, overlapMs);
          ctx.log.warn(
            { scope: scope.key, status: error.status, start: new Date(start.startMs).toISOString() },
            `${error.message}; the stored cursor was refused, restarting from the newest delivered event time ` +
              'minus the overlap; repeats are dropped',
          );
          this.#restart(read, start, what, ctx);
          pageNo--;
          continue;
        }
        throw error;
      }
      read.resuming = false;

      const page = parsePageForPoll('cloudscale', parsePage, body, where);
      const next = page.next === undefined ? undefined : this.#client.vet(page.next, where, 'next', current);
      const pollMore =
        page.pollMore === undefined
          ? undefined
          : this.#client.vet(page.pollMore, where, 'poll_more', current);
      const resumeAt = this.#checkProgress(page, next ?? pollMore, next, current, requested, where);

      const before = read.progress;
      const ids = new EntryIds(project, before.recent);
      let hwmMs = before.hwmMs;
      const events = page.entries.map((entry) => {
        const event = this.#toEvent(entry, scope, ids, requestedAtMs, where, ctx);
        const time = entryTime(entry.value);
        // Capped at the clock: one entry dated in the future must not move a restart point past data.
        if (time) hwmMs = Math.max(hwmMs ?? time.ms, Math.min(time.ms, ctx.now()));
        return event;
      });
      read.progress = {
        originMs: before.originMs,
        recent: ids.recent(),
        ...(hwmMs === undefined ? {} : { hwmMs }),
        // Reaching the end of the log ends a time-based read: what follows was never returned before.
        ...(next === undefined || before.sinceMs === undefined ? {} : { sinceMs: before.sinceMs }),
      };
      const state: CloudscaleState = { v: 1, url: resumeAt.href, urlAtMs: requestedAtMs, ...read.progress };
      const watermarkMs = next === undefined ? requestedAtMs : hwmMs;
      yield {
        events,
        checkpoint: { state, ...(watermarkMs === undefined ? {} : { watermarkMs }) },
        forgetSeenBeforeMs: seenHorizonMs(read.progress, overlapMs),
      };
      if (next === undefined) return;
      read.url = next;
    }
    ctx.log.info(
      { scope: scope.key, pages: settings.maxPagesPerPoll },
      `${what}: read maxPagesPerPoll pages (${PAGE_SIZE} entries each); the next poll continues from the stored cursor`,
    );
  }

  /** Where this poll starts: the stored cursor, or a time when there is none (or it cannot be used). */
  #begin(
    scope: PollScope<CloudscaleScopeSettings>,
    stored: CloudscaleState | undefined,
    what: string,
    ctx: PullContext,
  ): Read {
    const settings = this.#provider.settings;
    const overlapMs = scope.settings.overlap ?? settings.overlap;
    if (stored === undefined) {
      const lookbackMs = scope.settings.lookback ?? settings.lookback;
      const start = firstStart(this.#clock(ctx), lookbackMs, overlapMs, ctx.newestSeenMs);
      if (ctx.newestSeenMs !== undefined) {
        ctx.log.warn(
          { scope: scope.key, start: new Date(start.startMs).toISOString() },
          `${what}: no checkpoint, but events up to ${new Date(ctx.newestSeenMs).toISOString()} were delivered; ` +
            'reading from the earlier of the lookback and that time minus the overlap; repeats are dropped',
        );
      }
      const read: Read = {
        url: this.#client.startUrl(start.startMs),
        resuming: false,
        progress: { originMs: start.startMs, recent: [] },
      };
      this.#restart(read, start, what, ctx);
      return read;
    }
    const { v: _v, url: storedUrl, urlAtMs: _at, ...progress } = stored;
    const expiredMs = expiredSinceCursorMs(this.#clock(ctx), stored);
    if (expiredMs > 0) this.#reportExpired(what, expiredMs, ctx.now() - RETENTION_MS, ctx);
    try {
      return { url: this.#client.vet(storedUrl, what, 'the stored cursor'), resuming: true, progress };
    } catch (error) {
      if (!(error instanceof ProviderError)) throw error;
      // E.g. apiUrl changed since the cursor was stored: it is not followed with this token.
      ctx.log.warn({ scope: scope.key }, `${error.message}; restarting from time instead`);
      const read: Read = { url: this.#client.startUrl(0), resuming: false, progress };
      this.#restart(read, recoveryStart(this.#clock(ctx), progress, overlapMs), what, ctx);
      return read;
    }
  }

  /**
   * Turns the read into a time-based one from `start`. It may return anything after `start` again, so
   * the seen-set keeps all of it until the read reaches the end of the log; the numbering of identical
   * entries starts afresh, the same way it did when these entries were first read.
   */
  #restart(read: Read, start: TimeStart, what: string, ctx: PullContext): void {
    read.url = this.#client.startUrl(start.startMs);
    read.resuming = false;
    read.progress = { ...read.progress, sinceMs: start.startMs, recent: [] };
    if (start.expiredMs > 0) this.#reportExpired(what, start.expiredMs, start.startMs, ctx);
  }

  #clock(ctx: PullContext): Clock {
    return { nowMs: ctx.now(), retentionMs: RETENTION_MS };
  }

  /**
   * The links must move the read forward: a `next` that was already requested in this poll, or a
   * resume URL equal to the request that just returned entries, would read the same entries forever.
   */
  #checkProgress(
    page: ParsedPage,
    resumeAt: URL | undefined,
    next: URL | undefined,
    current: URL,
    requested: ReadonlySet<string>,
    where: string,
  ): URL {
    const fail = (reason: 'pagination_loop' | 'invalid_response', detail: string): never => {
      throw new ProviderError({
        provider: 'cloudscale',
        reason,
        retryable: false,
        message: `${where}: ${detail}; stopped, nothing past the last commit is lost`,
      });
    };
    if (resumeAt === undefined)
      return fail('invalid_response', 'the response has neither next nor poll_more');
    if (next !== undefined && requested.has(next.href)) {
      fail(
        'pagination_loop',
        'the API returned a next link that was already read in this poll (pagination loop)',
      );
    }
    if (page.entries.length > 0 && resumeAt.href === current.href) {
      fail('pagination_loop', 'the API returned entries but a cursor that does not move past them');
    }
    return resumeAt;
  }

  #toEvent(
    entry: RawEntry,
    scope: PollScope<CloudscaleScopeSettings>,
    ids: EntryIds,
    fetchedAtMs: number,
    where: string,
    ctx: PullContext,
  ) {
    const structure = structureDefect(entry);
    const defects =
      structure === undefined ? entryDefects(entry.value) : [{ field: 'entry', message: structure }];
    if (defects.length > 0) {
      const summary = defects.map(
        (d) => `results[${entry.index}]${d.field === 'entry' ? '' : `.${d.field}`}: ${d.message}`,
      );
      const strikes = this.#strikes.strike(elementSha256(entry));
      if (strikes < STRIKES_BEFORE_ACCEPTING) {
        throw new ProviderError({
          provider: 'cloudscale',
          reason: 'invalid_response',
          retryable: false,
          message:
            `${where}: ${summary.join('; ')}; nothing of this page was committed and the next poll reads it again ` +
            `(strike ${strikes} of ${STRIKES_BEFORE_ACCEPTING}: if the API keeps sending it, it ships with anomalies)`,
        });
      }
      ctx.log.warn(
        { scope: scope.key, defects: summary },
        `${where}: shipping an entry the API keeps sending malformed, with its defects recorded as anomalies`,
      );
    }
    return toAuditEvent(entry, scope.ref, ids.nextOf(entry), fetchedAtMs);
  }

  #reportExpired(what: string, expiredMs: number, edgeMs: number, ctx: PullContext): void {
    ctx.log.error(
      { expiredMs, retentionEdge: new Date(edgeMs).toISOString() },
      `${what}: not read for longer than the 90-day retention; entries from the last ` +
        `${Math.round(expiredMs / 60_000)} minutes before ${new Date(edgeMs).toISOString()} were deleted by cloudscale and cannot be shipped`,
    );
  }

  async close(): Promise<void> {
    await this.#client.close();
  }
}
