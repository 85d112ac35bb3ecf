import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { OutboxEvent } from '../../src/pipeline/envelope.ts';
import { StdoutSink } from '../../src/sinks/stdout/sink.ts';
import { silentLogger } from '../support/logger.ts';

const event = (id: string): OutboxEvent => ({
  entryId: `0-${id}`,
  id,
  scopeKey: 's',
  timeMs: 1,
  seenAtMs: 2,
  line: `{"id":"${id}"}`,
});
const deps = { log: silentLogger, instanceId: 'i' };

describe('StdoutSink', () => {
  it('writes one NDJSON line per event and reports them delivered once written', async () => {
    const out = new PassThrough();
    let written = '';
    out.on('data', (chunk: Buffer) => {
      written += chunk.toString();
    });
    const sink = new StdoutSink({ name: 'console', type: 'stdout', settings: {} }, deps, out);
    expect(await sink.send([event('a'), event('b')])).toEqual([{ kind: 'delivered' }, { kind: 'delivered' }]);
    expect(written).toBe('{"id":"a"}\n{"id":"b"}\n');
  });

  it('fails the batch (to be retried) when the stream cannot take it', async () => {
    const broken = new Writable({
      write(_chunk, _encoding, callback) {
        callback(new Error('EPIPE'));
      },
    });
    broken.on('error', () => undefined);
    const sink = new StdoutSink({ name: 'console', type: 'stdout', settings: {} }, deps, broken);
    await expect(sink.send([event('a')])).rejects.toThrow('EPIPE');
  });
});
