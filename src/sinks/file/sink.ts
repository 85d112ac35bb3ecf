import { type FileHandle, mkdir, open } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { OutboxEvent } from '../../pipeline/envelope.ts';
import type { Sink, SinkDeps, SinkInstance, Verdict } from '../sink.ts';
import type { FileSinkSettings } from './config.ts';
import { idsBetween, lastLineEnd } from './tail.ts';

/** How much of an existing file's end is read at start to learn which events it already holds. */
const TAIL_SCAN_BYTES = 8 * 1024 * 1024;
/** Ids remembered for duplicate detection; redeliveries after a crash are always recent ones. */
const RECENT_IDS = 200_000;

/** The one system call the sink's correctness hangs on, replaceable in tests (short writes, ENOSPC). */
export interface FileSinkIo {
  /** One append at the file's end; returns the bytes written, which may be fewer than asked. */
  append(file: FileHandle, data: Buffer, offset: number, length: number): Promise<number>;
}

const systemIo: FileSinkIo = {
  append: async (file, data, offset, length) => (await file.write(data, offset, length, null)).bytesWritten,
};

/**
 * Appends one NDJSON line per event and fsyncs before acknowledging, so an acknowledged event survives
 * a power cut. A batch counts only when every byte of it is written (short writes are continued; a
 * write that makes no progress fails) and synced. A failed batch (a full disk, a quota, an I/O error)
 * is cut back to the last complete line, measured on the file itself, and retried whole, so no line is
 * ever left broken for the next one to be glued onto. A crash between the write and the acknowledgement
 * makes the outbox deliver the batch again; the sink recognises ids it wrote recently (also across
 * restarts, from the file's tail) and reports them as duplicates instead of writing them twice. A line
 * cut short by a crash is removed at start: its events were never acknowledged and are written again.
 */
export class FileSink implements Sink {
  readonly name: string;
  readonly path: string;
  readonly #settings: FileSinkSettings;
  readonly #log: Logger;
  readonly #io: FileSinkIo;
  readonly #recent = new Map<string, true>();
  #file: FileHandle | undefined;
  /** The file's size after the last complete, synced batch, as fstat reported it: a line boundary. */
  #goodEnd = 0;
  /** A failed batch could not be cut back yet: nothing may be appended until it is. */
  #broken = false;

  constructor(instance: SinkInstance<FileSinkSettings>, deps: SinkDeps, io: FileSinkIo = systemIo) {
    this.name = instance.name;
    this.#settings = instance.settings;
    this.#log = deps.log;
    this.#io = io;
    this.path = resolve(instance.settings.path.replaceAll('{instance}', deps.instanceId));
  }

  async start(): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    this.#file = await open(this.path, 'a+');
    await this.#cutBack('an incomplete last line left by a crash');
    await this.#learnTail();
  }

  async send(batch: readonly OutboxEvent[]): Promise<readonly Verdict[]> {
    const file = this.#file;
    if (!file) throw new Error(`file sink "${this.name}" is not started`);
    if (this.#broken) {
      await this.#cutBack('the rest of a batch that failed earlier').catch((error: unknown) => {
        throw this.#failure('cannot cut back a failed batch in', error);
      });
    }
    const verdicts: Verdict[] = [];
    const lines: string[] = [];
    const inBatch = new Set<string>();
    for (const event of batch) {
      if (this.#recent.has(event.id) || inBatch.has(event.id)) {
        verdicts.push({ kind: 'duplicate' });
      } else {
        inBatch.add(event.id);
        lines.push(event.line);
        verdicts.push({ kind: 'delivered' });
      }
    }
    if (lines.length === 0) return verdicts;
    const data = Buffer.from(`${lines.join('\n')}\n`, 'utf8');
    try {
      await this.#appendAll(file, data);
      if (this.#settings.fsync) await file.datasync();
      this.#goodEnd = (await file.stat()).size;
    } catch (error) {
      // Whatever part of the batch reached the file is unacknowledged: cut it off, so the retry starts
      // on a line boundary. If even that fails, the next send tries again before appending anything.
      this.#broken = true;
      await this.#cutBack('a batch that could not be written whole').catch(() => undefined);
      throw this.#failure('cannot write', error);
    }
    for (const id of inBatch) this.#remember(id);
    return verdicts;
  }

  async close(): Promise<void> {
    await this.#file?.close();
    this.#file = undefined;
  }

  /** Continues short writes until every byte is out; a write that makes no progress is a failure. */
  async #appendAll(file: FileHandle, data: Buffer): Promise<void> {
    for (let offset = 0; offset < data.length; ) {
      const written = await this.#io.append(file, data, offset, data.length - offset);
      if (!(written > 0)) {
        throw new Error(
          `a write made no progress after ${offset} of ${data.length} bytes (is the disk full?)`,
        );
      }
      offset += written;
    }
  }

  /**
   * Cuts the file back to the end of its last complete line at or before the last good batch's end,
   * judged by the file's real size and bytes (fstat and read), never by a size computed here: a
   * truncate to a computed size beyond the real end would pad the file with NUL bytes.
   */
  async #cutBack(what: string): Promise<void> {
    const file = this.#file as FileHandle;
    const real = (await file.stat()).size;
    const shrunk = this.#goodEnd > real;
    const keep = await lastLineEnd(file, this.#broken && !shrunk ? this.#goodEnd : real);
    if (keep < real) {
      await file.truncate(keep);
      if (this.#settings.fsync) await file.datasync();
      this.#log.warn(
        { sink: this.name, path: this.path, removedBytes: real - keep },
        `file sink "${this.name}": removed ${what} from ${this.path}; its events were not acknowledged and will be written again`,
      );
    }
    this.#goodEnd = keep;
    this.#broken = false;
    if (shrunk) {
      // Someone else shortened the file: ids it no longer holds must not be answered as duplicates.
      this.#log.error(
        { sink: this.name, path: this.path },
        `file sink "${this.name}": ${this.path} is shorter than this sink left it; relearning which events it holds`,
      );
      this.#recent.clear();
      await this.#learnTail();
    }
  }

  async #learnTail(): Promise<void> {
    const file = this.#file as FileHandle;
    if (this.#goodEnd === 0) return;
    const from = Math.max(0, this.#goodEnd - TAIL_SCAN_BYTES);
    // Start at a line boundary: the line the scan window cuts through is not read.
    const start = from === 0 ? 0 : await lastLineEnd(file, from);
    for (const id of await idsBetween(file, start, this.#goodEnd)) this.#remember(id);
  }

  #remember(id: string): void {
    this.#recent.set(id, true);
    if (this.#recent.size > RECENT_IDS) {
      const oldest = this.#recent.keys().next().value;
      if (oldest !== undefined) this.#recent.delete(oldest);
    }
  }

  #failure(what: string, error: unknown): Error {
    const message = error instanceof Error ? error.message : String(error);
    return new Error(`file sink "${this.name}": ${what} ${this.path}: ${message}`, { cause: error });
  }
}
