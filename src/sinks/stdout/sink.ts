import type { Writable } from 'node:stream';
import type { OutboxEvent } from '../../pipeline/envelope.ts';
import type { Sink, SinkDeps, SinkInstance, Verdict } from '../sink.ts';
import type { StdoutSinkSettings } from './config.ts';

/**
 * One NDJSON line per event on standard output, acknowledged once the write has been handed to the
 * pipe (Kubernetes log collection picks it up from there). Logs go to standard error, so the stream stays
 * pure NDJSON.
 */
export class StdoutSink implements Sink {
  readonly name: string;
  readonly #out: Writable;

  constructor(instance: SinkInstance<StdoutSinkSettings>, _deps: SinkDeps, out: Writable = process.stdout) {
    this.name = instance.name;
    this.#out = out;
  }

  async start(): Promise<void> {}

  async send(batch: readonly OutboxEvent[]): Promise<readonly Verdict[]> {
    if (batch.length === 0) return [];
    const data = `${batch.map((event) => event.line).join('\n')}\n`;
    await new Promise<void>((resolve, reject) => {
      this.#out.write(data, (error) => (error ? reject(error) : resolve()));
    });
    return batch.map(() => ({ kind: 'delivered' }) as const);
  }

  async close(): Promise<void> {}
}
