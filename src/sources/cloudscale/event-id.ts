/**
 * Event ids for cloudscale project-log entries, which carry no id of their own (research §4.4): a SHA-256
 * of the project label and the entry's canonical JSON (RFC 8785). Entries are immutable and timestamped
 * to the microsecond, so the id is stable across re-reads, which is all dedupe needs.
 *
 * Two entries can still be identical to the byte: one API call that deletes two volumes both named
 * "cache" in one transaction logs the same action, message, actor and timestamp twice. A pure content
 * hash would merge them and the second would be dropped as a duplicate: a loss. So identical entries
 * are numbered in the order the API returns them (its primary-key order): the first keeps the plain
 * hash, the k-th hashes `#k` in too.
 *
 * The numbering counts every earlier identical entry of the read that is still inside the seen window,
 * however many entries lie between them (a long transaction interleaves with others in key order).
 * Identical entries share their timestamp, so the memory is kept per event time and trimmed with the
 * seen-set's horizon: a copy whose time left the window would not be recognised by the seen-set
 * either. The memory travels in the checkpoint, so a page read again after a crash, or a twin on a
 * later page or poll, gets the same number as before. A time-based restart starts it afresh, which
 * numbers the same way: it reads from a time on, so it sees every copy of each content it reads.
 */
import { sha256Hex } from '../../pipeline/envelope.ts';
import { elementSha256, type RawElement, structureDefect } from '../json-page.ts';
import { canonicalJson } from './canonical.ts';

/** Hex digits of a content digest kept in the checkpoint (48 bits: collisions in a window are negligible). */
const DIGEST_CHARS = 12;

/** Key prefix of memory from a checkpoint of an earlier version (`legacy@<ms>`): counted for every time. */
const LEGACY = 'legacy@';

/** Event time (epoch ms, as a decimal string) → the content digests of the entries read with that time, in order. */
export type TwinMemory = Record<string, string>;

export class EntryIds {
  readonly #project: string;
  readonly #memory: Map<string, string>;
  /** Digests from an earlier version's memory, counted for every time (`legacy@<ms>` keys). */
  readonly #legacy: string[];

  /** `memory`: what the read remembered so far (the checkpoint's `twins`). */
  constructor(project: string, memory: TwinMemory = {}) {
    this.#project = project;
    this.#memory = new Map(Object.entries(memory));
    this.#legacy = [...this.#memory].filter(([key]) => key.startsWith(LEGACY)).map(([, digests]) => digests);
  }

  /**
   * Memory from a checkpoint written before it was kept per time: the digests of the last 100 entries,
   * without their times. They are remembered at `atMs` (the newest delivered time), so they stay until
   * the horizon passes what was delivered.
   */
  static fromLegacy(project: string, recent: readonly string[], atMs: number): EntryIds {
    return new EntryIds(project, recent.length > 0 ? { [`${LEGACY}${atMs}`]: recent.join('') } : {});
  }

  /**
   * The id of the next entry of the stream, in the order the API returned it, at `timeMs`. An entry
   * nested too deeply to canonicalize (accepted after its strikes) is identified by its exact bytes.
   */
  nextOf(entry: RawElement, timeMs: number): string {
    return structureDefect(entry) === undefined
      ? this.next(entry.value, timeMs)
      : this.#number(`bytes:${elementSha256(entry)}`, timeMs);
  }

  /** The id of the next entry of the stream (a parsed value) at `timeMs`. */
  next(entry: unknown, timeMs: number): string {
    return this.#number(canonicalJson(entry), timeMs);
  }

  #number(canonical: string, timeMs: number): string {
    const first = sha256Hex(`${this.#project}\n${canonical}`);
    const digest = first.slice(0, DIGEST_CHARS);
    const key = String(Math.floor(timeMs));
    const seen = this.#memory.get(key) ?? '';
    let occurrence = 1;
    for (let i = 0; i < seen.length; i += DIGEST_CHARS) {
      if (seen.startsWith(digest, i)) occurrence++;
    }
    // Legacy memory has no times: it counts for every time.
    for (const digests of this.#legacy) {
      for (let i = 0; i < digests.length; i += DIGEST_CHARS) if (digests.startsWith(digest, i)) occurrence++;
    }
    this.#memory.set(key, seen + digest);
    return occurrence === 1 ? first : sha256Hex(`${this.#project}\n${canonical}\n#${occurrence}`);
  }

  /** Forgets entries dated before `horizonMs` (they left the seen window). */
  forgetBefore(horizonMs: number): void {
    for (const key of this.#memory.keys()) {
      const atMs = Number(key.startsWith(LEGACY) ? key.slice(LEGACY.length) : key);
      if (atMs < horizonMs) this.#memory.delete(key);
    }
  }

  /** The memory to persist with the checkpoint. */
  memory(): TwinMemory {
    return Object.fromEntries(this.#memory);
  }
}
