import { type FileHandle, mkdir, open } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { OutboxEvent } from '../../pipeline/envelope.ts';
import type { Sink, SinkDeps, SinkInstance, Verdict } from '../sink.ts';
import type { FileSinkSettings } from './config.ts';

/** How much of an existing file's end is read at start to learn which events it already holds. */
const TAIL_SCAN_BYTES = 8 * 1024 * 1024;
/** Ids remembered for duplicate detection; redeliveries after a crash are always recent ones. */
const RECENT_IDS = 200_000;

/**
 * Appends one NDJSON line per event and fsyncs before acknowledging, so an acknowledged event survives
 * a power cut. A crash between the write and the acknowledgement makes the outbox deliver the batch
 * again; the sink recognises ids it wrote recently (also across restarts, from the file's tail) and
 * reports them as duplicates instead of writing them twice. A line cut short by a crash is removed at
 * start: its events were never acknowledged and are written again whole.
 */
export class FileSink implements Sink {
  readonly name: string;
  readonly path: string;
  readonly #settings: FileSinkSettings;
  readonly #log: Logger;
  readonly #recent = new Map<string, true>();
  #file: FileHandle | undefined;
  #size = 0;

  constructor(instance: SinkInstance<FileSinkSettings>, deps: SinkDeps) {
    this.name = instance.name;
    this.#settings = instance.settings;
    this.#log = deps.log;
    this.path = resolve(instance.settings.path.replaceAll('{instance}', deps.instanceId));
  }

  async start(): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    this.#file = await open(this.path, 'a+');
    this.#size = (await this.#file.stat()).size;
    await this.#repairTail();
    await this.#learnTail();
  }

  async send(batch: readonly OutboxEvent[]): Promise<readonly Verdict[]> {
    const file = this.#file;
    if (!file) throw new Error(`file sink "${this.name}" is not started`);
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
      await file.write(data, 0, data.length, null);
      if (this.#settings.fsync) await file.datasync();
    } catch (error) {
      // A partial write would leave a broken line that the retry appends after; cut back to the last good end.
      await file.truncate(this.#size).catch(() => undefined);
      throw new Error(`file sink "${this.name}": cannot write ${this.path}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    this.#size += data.length;
    for (const id of inBatch) this.#remember(id);
    return verdicts;
  }

  async close(): Promise<void> {
    await this.#file?.close();
    this.#file = undefined;
  }

  async #repairTail(): Promise<void> {
    const file = this.#file as FileHandle;
    if (this.#size === 0) return;
    const last = Buffer.alloc(1);
    await file.read(last, 0, 1, this.#size - 1);
    if (last[0] === 0x0a) return;
    const chunk = Buffer.alloc(Math.min(this.#size, TAIL_SCAN_BYTES));
    await file.read(chunk, 0, chunk.length, this.#size - chunk.length);
    const newline = chunk.lastIndexOf(0x0a);
    const keep = newline === -1 ? this.#size - chunk.length : this.#size - chunk.length + newline + 1;
    await file.truncate(keep);
    this.#log.warn(
      { sink: this.name, path: this.path, removedBytes: this.#size - keep },
      `file sink "${this.name}": removed an incomplete last line left by a crash; its events were not acknowledged and will be written again`,
    );
    this.#size = keep;
  }

  async #learnTail(): Promise<void> {
    const file = this.#file as FileHandle;
    const length = Math.min(this.#size, TAIL_SCAN_BYTES);
    if (length === 0) return;
    const chunk = Buffer.alloc(length);
    await file.read(chunk, 0, length, this.#size - length);
    const lines = chunk.toString('utf8').split('\n');
    if (length < this.#size) lines.shift(); // the first line is probably cut
    for (const line of lines) {
      const id = idOfLine(line);
      if (id !== undefined) this.#remember(id);
    }
  }

  #remember(id: string): void {
    this.#recent.set(id, true);
    if (this.#recent.size > RECENT_IDS) {
      const oldest = this.#recent.keys().next().value;
      if (oldest !== undefined) this.#recent.delete(oldest);
    }
  }
}

/** Lines start with `{"id":"…"`; reading just that avoids parsing megabytes of JSON at start. */
function idOfLine(line: string): string | undefined {
  if (!line.startsWith('{"id":"')) return undefined;
  let end = 7;
  while (end < line.length) {
    const c = line.charCodeAt(end);
    if (c === 0x5c) end += 2;
    else if (c === 0x22) break;
    else end++;
  }
  try {
    return JSON.parse(line.slice(6, end + 1)) as string;
  } catch {
    return undefined;
  }
}
