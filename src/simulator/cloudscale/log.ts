/**
 * The project-log table of a simulated cloudscale.ch, as the API sees it (research/providers.md §4.5).
 *
 * Every entry gets its primary key when its row is inserted (one sequence for all projects), but only
 * becomes visible when its transaction commits, which for some entries is seconds later: a row with a
 * smaller id can commit after a larger one ("overtaking"). A plain `id > cursor` poll would then skip
 * it forever. cloudscale makes ids appear in increasing order; here that is modelled the way they
 * describe it: the API only shows rows up to the visibility horizon, the highest id below which every
 * row has committed, so a cursor can never pass an id that commits later.
 *
 * Timestamps are not in id order either: an action's entry carries the time the action started, and a
 * long action inserts its row well after that (backdated entries). Clients that poll by timestamp miss
 * those; clients that follow the cursor do not.
 *
 * Traffic is generated minute by minute, deterministically from the seed, as simulated time passes.
 */
import { hash128, mixWords, Rng, type Words } from '../random.ts';
import { formatRfc3339Us } from '../rfc3339.ts';

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;
export const CLOUDSCALE_RETENTION_MS = 90 * DAY_MS;

/** When a row commits after its insert: uniform in [minMs, maxMs], or for `lateFraction` of rows in [maxMs, lateMaxMs]. */
export interface CommitDelayOptions {
  readonly minMs: number;
  readonly maxMs: number;
  readonly lateFraction?: number | undefined;
  readonly lateMaxMs?: number | undefined;
}

export interface ResolvedCommitDelay {
  readonly minMs: number;
  readonly maxMs: number;
  readonly lateFraction: number;
  readonly lateMaxMs: number;
}

/** A `fraction` of entries carry a timestamp up to `maxMs` before their row was inserted. */
export interface BackdateOptions {
  readonly fraction: number;
  readonly maxMs: number;
}

export const DEFAULT_COMMIT_DELAY: CommitDelayOptions = {
  minMs: 0,
  maxMs: 200,
  lateFraction: 0,
  lateMaxMs: 200,
};
export const DEFAULT_BACKDATE: BackdateOptions = { fraction: 0, maxMs: 0 };

export interface LogOptions {
  readonly seed: number;
  readonly commit?: CommitDelayOptions | undefined;
  readonly backdate?: BackdateOptions | undefined;
  /** Fraction of entries logged twice, byte-identical, in one transaction (e.g. two volumes of one name). */
  readonly twinFraction?: number | undefined;
  /**
   * How many other entries the log gets between an entry and its twin (default 0: the very next id).
   * A long transaction's entries share its timestamp but interleave with others in key order.
   */
  readonly twinDistance?: number | undefined;
  /** Rows are inserted in `[trafficStartMs, trafficEndMs)`, epoch ms. */
  readonly trafficStartMs: number;
  readonly trafficEndMs?: number | undefined;
  readonly retentionMs?: number | undefined;
}

export interface LogEntry {
  /** Primary key: one sequence for the whole table, assigned at insert. */
  readonly id: number;
  readonly project: string;
  /** `timestamp` in epoch µs (the action's time, at or before the insert). */
  readonly tUs: number;
  /** When the row was inserted (got its id), epoch ms. */
  readonly insertedMs: number;
  /** When its transaction committed, epoch ms. */
  readonly committedMs: number;
  /** Seed of the entry's content; twins share it (and their timestamp), so their bytes are identical. */
  readonly contentWords: Words;
  /** The id of the entry this one is a byte-identical twin of. */
  readonly twinOf: number | undefined;
}

interface ProjectTraffic {
  readonly name: string;
  readonly eventsPerMinute: number;
  readonly words: Words;
}

export interface ListQuery {
  readonly project: string;
  /** Only ids greater than this. */
  readonly afterId?: number | undefined;
  /** Only timestamps ≥ this (epoch µs). */
  readonly startUs?: number | undefined;
  /** Only timestamps < this (epoch µs). */
  readonly endUs?: number | undefined;
  readonly limit: number;
  /** Provider clock, epoch ms. */
  readonly nowMs: number;
}

export interface ListResult {
  readonly entries: readonly LogEntry[];
  /** More matching entries are visible beyond this page. */
  readonly more: boolean;
  /** Every id up to this one has committed (0: none). */
  readonly horizonId: number;
}

export class ProjectLog {
  readonly retentionMs: number;
  readonly #seed: number;
  readonly #commit: ResolvedCommitDelay;
  readonly #backdate: BackdateOptions;
  readonly #twinFraction: number;
  readonly #twinDistance: number;
  /** Twins waiting for `twinDistance` more entries before they are appended. */
  readonly #pendingTwins: { original: LogEntry; remaining: number }[] = [];
  readonly #projects = new Map<string, ProjectTraffic>();
  /** All rows in id order, and the largest commit time among each prefix of them. */
  readonly #rows: LogEntry[] = [];
  readonly #prefixCommitMs: number[] = [];
  readonly #byProject = new Map<string, LogEntry[]>();
  #nextId: number;
  #trafficStartMs: number;
  #trafficEndMs: number;
  /** Minute buckets (epoch ms / 60,000) before this one are generated. */
  #generatedUntil: number;

  constructor(options: LogOptions) {
    this.#seed = options.seed;
    const commit = options.commit ?? DEFAULT_COMMIT_DELAY;
    const minMs = Math.max(0, commit.minMs);
    const maxMs = Math.max(minMs, commit.maxMs);
    this.#commit = {
      minMs,
      maxMs,
      lateFraction: Math.min(1, Math.max(0, commit.lateFraction ?? 0)),
      lateMaxMs: Math.max(maxMs, commit.lateMaxMs ?? maxMs),
    };
    this.#backdate = options.backdate ?? DEFAULT_BACKDATE;
    this.#twinFraction = Math.min(1, Math.max(0, options.twinFraction ?? 0));
    this.#twinDistance = Math.max(0, Math.floor(options.twinDistance ?? 0));
    this.retentionMs = options.retentionMs ?? CLOUDSCALE_RETENTION_MS;
    this.#trafficStartMs = options.trafficStartMs;
    this.#trafficEndMs = options.trafficEndMs ?? Number.POSITIVE_INFINITY;
    this.#generatedUntil = Math.floor(options.trafficStartMs / MINUTE_MS);
    // Ids start somewhere realistic (cloudscale's sample cursor is 10225), derived from the seed.
    this.#nextId = 10_000 + (hash128(`cloudscale ids|${options.seed}`)[0] % 90_000);
  }

  get commitDelay(): ResolvedCommitDelay {
    return this.#commit;
  }

  /** Adds a project; it gets traffic from the next minute not generated yet. */
  addProject(name: string, eventsPerMinute: number): void {
    if (!(eventsPerMinute >= 0) || !Number.isFinite(eventsPerMinute)) {
      throw new Error(`eventsPerMinute must be a finite number >= 0, got ${eventsPerMinute}`);
    }
    this.#projects.set(name, {
      name,
      eventsPerMinute,
      words: hash128(`${this.#seed}|cloudscale|${name}`),
    });
    if (!this.#byProject.has(name)) this.#byProject.set(name, []);
  }

  hasProject(name: string): boolean {
    return this.#projects.has(name);
  }

  projects(): { name: string; eventsPerMinute: number }[] {
    return [...this.#projects.values()].map((p) => ({ name: p.name, eventsPerMinute: p.eventsPerMinute }));
  }

  /**
   * No rows inserted at or after `atMs` any more. Rows already generated beyond it are removed: pass a
   * time not before the present, or entries a client already saw disappear from the truth.
   */
  stopTraffic(atMs: number): void {
    this.#trafficEndMs = Math.min(this.#trafficEndMs, atMs);
    const keep = this.#rows.filter((row) => row.insertedMs < atMs);
    if (keep.length === this.#rows.length) return;
    this.#rows.length = 0;
    this.#prefixCommitMs.length = 0;
    for (const list of this.#byProject.values()) list.length = 0;
    for (const row of keep) this.#append(row);
  }

  /**
   * A page of one project's visible rows in id order: after `afterId`, timestamps in
   * `[startUs, endUs)` and inside retention, never beyond the visibility horizon.
   */
  list(query: ListQuery): ListResult {
    this.#generate(query.nowMs);
    const horizonId = this.horizonId(query.nowMs);
    const rows = this.#byProject.get(query.project) ?? [];
    const retentionUs = (query.nowMs - this.retentionMs) * 1000;
    const startUs = Math.max(query.startUs ?? Number.NEGATIVE_INFINITY, retentionUs);
    const endUs = query.endUs ?? Number.POSITIVE_INFINITY;
    // A row's timestamp is at or before its insert, so rows inserted before `start` cannot match it.
    let i = query.afterId === undefined ? 0 : upperBoundId(rows, query.afterId);
    if (Number.isFinite(startUs)) i = Math.max(i, lowerBoundInserted(rows, Math.floor(startUs / 1000)));
    const entries: LogEntry[] = [];
    let more = false;
    for (; i < rows.length; i++) {
      const row = rows[i] as LogEntry;
      if (row.id > horizonId) break;
      if (row.tUs < startUs || row.tUs >= endUs) continue;
      if (entries.length === query.limit) {
        more = true;
        break;
      }
      entries.push(row);
    }
    return { entries, more, horizonId };
  }

  /** The highest id below which every row has committed by `nowMs` (0 when none has). */
  horizonId(nowMs: number): number {
    this.#generate(nowMs);
    const prefix = this.#prefixCommitMs;
    let lo = 0;
    let hi = prefix.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((prefix[mid] as number) <= nowMs) lo = mid + 1;
      else hi = mid;
    }
    return lo === 0 ? 0 : (this.#rows[lo - 1] as LogEntry).id;
  }

  /** From when the API shows this row: when it and every row before it have committed. */
  visibleAtMs(row: LogEntry): number {
    const index = upperBoundId(this.#rows, row.id) - 1;
    return this.#prefixCommitMs[index] ?? Number.POSITIVE_INFINITY;
  }

  /** A project's rows in id order, generated up to `nowMs` (inserted, not necessarily visible). */
  rows(project: string, nowMs: number): readonly LogEntry[] {
    this.#generate(nowMs);
    return this.#byProject.get(project) ?? [];
  }

  /** Generates every minute up to the one containing `nowMs` (rows later in it are not inserted yet). */
  #generate(nowMs: number): void {
    const last = Math.floor(Math.min(nowMs, this.#trafficEndMs - 1) / MINUTE_MS);
    while (this.#generatedUntil <= last) this.#generateMinute(this.#generatedUntil++);
  }

  #generateMinute(bucket: number): void {
    const candidates: Omit<LogEntry, 'id' | 'twinOf'>[] = [];
    const twins = new Set<Omit<LogEntry, 'id' | 'twinOf'>>();
    const projects = [...this.#projects.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const project of projects) {
      const rng = new Rng(mixWords(project.words, bucket));
      const n = rng.poisson(project.eventsPerMinute);
      for (let k = 0; k < n; k++) {
        // A fixed number of draws per entry, so changing one knob never reshuffles the rest.
        const offsetUs = rng.int(MINUTE_MS * 1000);
        const leadUs = rng.int(2_000);
        const backdateRoll = rng.next();
        const backdateAmount = rng.next();
        const lateRoll = rng.next();
        const commitAmount = rng.next();
        const twinRoll = rng.next();
        const contentWords = rng.words();
        const insertedUs = bucket * MINUTE_MS * 1000 + offsetUs;
        const insertedMs = Math.floor(insertedUs / 1000);
        if (insertedMs < this.#trafficStartMs || insertedMs >= this.#trafficEndMs) continue;
        const backdated = backdateRoll < this.#backdate.fraction;
        const tUs = backdated
          ? insertedUs - Math.round(backdateAmount * this.#backdate.maxMs * 1000)
          : insertedUs - leadUs;
        const { minMs, maxMs, lateFraction, lateMaxMs } = this.#commit;
        const committedMs =
          insertedMs +
          (lateRoll < lateFraction
            ? Math.round(maxMs + commitAmount * (lateMaxMs - maxMs))
            : Math.round(minMs + commitAmount * (maxMs - minMs)));
        const row = { project: project.name, tUs, insertedMs, committedMs, contentWords };
        candidates.push(row);
        if (twinRoll < this.#twinFraction) twins.add(row);
      }
    }
    candidates.sort((a, b) => a.insertedMs - b.insertedMs);
    for (const candidate of candidates) {
      const row: LogEntry = { ...candidate, id: this.#nextId++, twinOf: undefined };
      this.#append(row);
      this.#releaseTwins();
      // Same transaction, same content: the very next id, or `twinDistance` entries later.
      if (twins.has(candidate)) {
        if (this.#twinDistance === 0) this.#append({ ...candidate, id: this.#nextId++, twinOf: row.id });
        else this.#pendingTwins.push({ original: row, remaining: this.#twinDistance });
      }
    }
  }

  /** One more entry was appended: twins whose wait is over follow it. */
  #releaseTwins(): void {
    for (const pending of this.#pendingTwins) pending.remaining--;
    while (this.#pendingTwins.length > 0 && (this.#pendingTwins[0]?.remaining ?? 1) <= 0) {
      const { original } = this.#pendingTwins.shift() as { original: LogEntry };
      this.#append({ ...original, id: this.#nextId++, twinOf: original.id });
    }
  }

  #append(row: LogEntry): void {
    const previous = this.#prefixCommitMs[this.#prefixCommitMs.length - 1] ?? Number.NEGATIVE_INFINITY;
    this.#rows.push(row);
    this.#prefixCommitMs.push(Math.max(previous, row.committedMs));
    let list = this.#byProject.get(row.project);
    if (!list) {
      list = [];
      this.#byProject.set(row.project, list);
    }
    list.push(row);
  }
}

/** `timestamp` as cloudscale prints it: UTC, microseconds, `Z`. */
export function formatTimestamp(tUs: number): string {
  return formatRfc3339Us(tUs, 6);
}

/** First index whose id is greater than `id`. */
function upperBoundId(rows: readonly LogEntry[], id: number): number {
  let lo = 0;
  let hi = rows.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((rows[mid] as LogEntry).id <= id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index inserted at or after `ms` (rows are in insert order). */
function lowerBoundInserted(rows: readonly LogEntry[], ms: number): number {
  let lo = 0;
  let hi = rows.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((rows[mid] as LogEntry).insertedMs < ms) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
