import { createHash } from 'node:crypto';
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
  /** Fingerprints of the pages with entries read since this read (re)started in this poll. */
  pages: Set<string>;
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
      const fromStoredCursor = read.resuming;
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
      const fingerprint = pageFingerprint(page.entries);
      if (fromStoredCursor && fingerprint !== undefined && fingerprint === read.progress.lastPage) {
        // The stored cursor returns exactly the page committed last: it does not move. Read again from
        // time instead; the seen-set drops what was delivered, and a loop within the read is caught below.
        ctx.log.warn(
          { scope: scope.key },
          `${where}: the stored cursor returned the same entries as the page committed before it (a cursor that ` +
            'does not move); restarting from the newest delivered event time minus the overlap; repeats are dropped',
        );
        this.#restart(read, recoveryStart(this.#clock(ctx), read.progress, overlapMs), what, ctx);
        pageNo--;
        continue;
      }
      if (fingerprint !== undefined) this.#checkRepeat(read, fingerprint, where);

      const before = read.progress;
      const ids =
        before.twins === undefined && before.recent !== undefined
          ? EntryIds.fromLegacy(project, before.recent, before.hwmMs ?? before.originMs)
          : new EntryIds(project, before.twins);
      let hwmMs = before.hwmMs;
      const events = page.entries.map((entry) => {
        const time = entryTime(entry.value);
        const event = this.#toEvent(entry, scope, ids, time?.ms ?? requestedAtMs, requestedAtMs, where, ctx);
        // Capped at the clock: one entry dated in the future must not move a restart point past data.
        if (time) hwmMs = Math.max(hwmMs ?? time.ms, Math.min(time.ms, ctx.now()));
        return event;
      });
      const moved: Progress = {
        originMs: before.originMs,
        ...(hwmMs === undefined ? {} : { hwmMs }),
        // Reaching the end of the log ends a time-based read: what follows was never returned before.
        ...(next === undefined || before.sinceMs === undefined ? {} : { sinceMs: before.sinceMs }),
      };
      ids.forgetBefore(seenHorizonMs(moved, overlapMs));
      read.progress = {
        ...moved,
        twins: ids.memory(),
        ...((fingerprint ?? before.lastPage) === undefined
          ? {}
          : { lastPage: fingerprint ?? before.lastPage }),
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
        progress: { originMs: start.startMs },
        pages: new Set(),
      };
      this.#restart(read, start, what, ctx);
      return read;
    }
    const { v: _v, url: storedUrl, urlAtMs: _at, ...progress } = stored;
    const expiredMs = expiredSinceCursorMs(this.#clock(ctx), stored);
    if (expiredMs > 0) this.#reportExpired(what, expiredMs, ctx.now() - RETENTION_MS, ctx);
    try {
      return {
        url: this.#client.vet(storedUrl, what, 'the stored cursor'),
        resuming: true,
        progress,
        pages: new Set(),
      };
    } catch (error) {
      if (!(error instanceof ProviderError)) throw error;
      // E.g. apiUrl changed since the cursor was stored: it is not followed with this token.
      ctx.log.warn({ scope: scope.key }, `${error.message}; restarting from time instead`);
      const read: Read = { url: this.#client.startUrl(0), resuming: false, progress, pages: new Set() };
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
    const { recent: _recent, twins: _twins, lastPage: _lastPage, ...kept } = read.progress;
    read.progress = { ...kept, sinceMs: start.startMs, twins: {} };
    read.pages = new Set();
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

  /**
   * A page whose entries repeat, byte for byte and in order, a page already read in this read is a
   * pagination loop even when its cursor is new (a buggy or hostile API): committing it would ship the
   * same entries again under the next numbers. Nothing of it is committed.
   */
  #checkRepeat(read: Read, fingerprint: string, where: string): void {
    if (read.pages.has(fingerprint)) {
      throw new ProviderError({
        provider: 'cloudscale',
        reason: 'pagination_loop',
        retryable: false,
        message:
          `${where}: the API returned exactly the entries of a page already read in this poll under a new cursor ` +
          '(pagination loop); nothing of this page was committed, nothing past the last commit is lost',
      });
    }
    read.pages.add(fingerprint);
  }

  #toEvent(
    entry: RawEntry,
    scope: PollScope<CloudscaleScopeSettings>,
    ids: EntryIds,
    timeMs: number,
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
    return toAuditEvent(entry, scope.ref, ids.nextOf(entry, timeMs), fetchedAtMs);
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

/** A digest of a page's entries, their exact bytes in order; undefined for a page without entries. */
function pageFingerprint(entries: readonly RawEntry[]): string | undefined {
  if (entries.length === 0) return undefined;
  const hash = createHash('sha256');
  for (const entry of entries) hash.update(`${elementSha256(entry)}\n`);
  return hash.digest('hex').slice(0, 32);
}
