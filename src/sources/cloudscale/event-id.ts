/**
 * Event ids for cloudscale project-log entries, which carry no id of their own (research §4.4): a SHA-256
 * of the project label and the entry's canonical JSON (RFC 8785). Entries are immutable and timestamped
 * to the microsecond, so the id is stable across re-reads, which is all dedupe needs.
 *
 * Two entries can still be identical to the byte: one API call that deletes two volumes both named
 * "cache" in one transaction logs the same action, message, actor and timestamp twice. A pure content
 * hash would merge them and the second would be dropped as a duplicate: a loss. So identical entries
 * are numbered in the order the API returns them (its primary-key order): the first keeps the plain
 * hash, the k-th hashes `#k` in too. The numbering remembers the content digests of the last
 * RECENT_LIMIT entries, and that memory travels in the checkpoint, so a page read again after a crash,
 * or a twin on the next page, gets the same number as before.
 */
import { sha256Hex } from '../../pipeline/envelope.ts';
import { elementSha256, type RawElement, structureDefect } from '../json-page.ts';
import { canonicalJson } from './canonical.ts';

/** Entries remembered for numbering identical ones; twins sit next to each other in primary-key order. */
export const RECENT_LIMIT = 100;
/** Hex digits of a content digest kept in the checkpoint (48 bits: collisions within 100 are negligible). */
const DIGEST_CHARS = 12;

export class EntryIds {
  readonly #project: string;
  readonly #recent: string[];

  /** `recent`: content digests of the entries before this point of the stream, oldest first. */
  constructor(project: string, recent: readonly string[] = []) {
    this.#project = project;
    this.#recent = recent.slice(-RECENT_LIMIT);
  }

  /**
   * The id of the next entry of the stream, in the order the API returned it. An entry nested too deeply
   * to canonicalize (accepted after its strikes) is identified by a hash of its exact bytes instead.
   */
  nextOf(entry: RawElement): string {
    return structureDefect(entry) === undefined
      ? this.next(entry.value)
      : this.#number(`bytes:${elementSha256(entry)}`);
  }

  /** The id of the next entry of the stream (a parsed value), in the order the API returned it. */
  next(entry: unknown): string {
    return this.#number(canonicalJson(entry));
  }

  #number(canonical: string): string {
    const first = sha256Hex(`${this.#project}\n${canonical}`);
    const digest = first.slice(0, DIGEST_CHARS);
    let occurrence = 1;
    for (const seen of this.#recent) if (seen === digest) occurrence++;
    this.#recent.push(digest);
    if (this.#recent.length > RECENT_LIMIT) this.#recent.shift();
    return occurrence === 1 ? first : sha256Hex(`${this.#project}\n${canonical}\n#${occurrence}`);
  }

  /** The memory to persist with the checkpoint. */
  recent(): string[] {
    return [...this.#recent];
  }
}
