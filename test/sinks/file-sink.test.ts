import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { OutboxEvent } from '../../src/pipeline/envelope.ts';
import { FileSink } from '../../src/sinks/file/sink.ts';
import { memoryLogger, silentLogger } from '../support/logger.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'file-sink-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function event(id: string): OutboxEvent {
  return {
    entryId: `0-${id}`,
    id,
    scopeKey: 's',
    timeMs: 1,
    seenAtMs: 2,
    line: `{"id":"${id}","raw":{"v":"${id}"}}`,
  };
}

function sink(path: string, log = silentLogger, instanceId = 'i-1'): FileSink {
  return new FileSink(
    { name: 'archive', type: 'file', settings: { path, fsync: true } },
    { log, instanceId },
  );
}

describe('FileSink', () => {
  it('appends one line per event and reports each delivered', async () => {
    const path = join(dir, 'nested', 'events.ndjson');
    const s = sink(path);
    await s.start();
    expect(await s.send([event('a'), event('b')])).toEqual([{ kind: 'delivered' }, { kind: 'delivered' }]);
    await s.send([event('c')]);
    await s.close();
    expect(await readFile(path, 'utf8')).toBe(
      '{"id":"a","raw":{"v":"a"}}\n{"id":"b","raw":{"v":"b"}}\n{"id":"c","raw":{"v":"c"}}\n',
    );
  });

  it('reports a redelivered event as a duplicate instead of writing it twice, also after a restart', async () => {
    const path = join(dir, 'events.ndjson');
    const first = sink(path);
    await first.start();
    await first.send([event('a'), event('b')]);
    expect(await first.send([event('b'), event('c'), event('c')])).toEqual([
      { kind: 'duplicate' },
      { kind: 'delivered' },
      { kind: 'duplicate' },
    ]);
    await first.close();
    const second = sink(path);
    await second.start();
    expect(await second.send([event('a'), event('d')])).toEqual([
      { kind: 'duplicate' },
      { kind: 'delivered' },
    ]);
    await second.close();
    const ids = (await readFile(path, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).id);
    expect(ids).toEqual(['a', 'b', 'c', 'd']);
  });

  it('removes a line a crash cut short, so the file stays valid NDJSON', async () => {
    const path = join(dir, 'events.ndjson');
    await writeFile(path, '{"id":"a","raw":{}}\n{"id":"b","ra');
    const { log, lines } = memoryLogger();
    const s = sink(path, log);
    await s.start();
    expect(await s.send([event('b')])).toEqual([{ kind: 'delivered' }]);
    await s.close();
    expect(await readFile(path, 'utf8')).toBe('{"id":"a","raw":{}}\n{"id":"b","raw":{"v":"b"}}\n');
    expect(lines().some((l) => String(l.msg).includes('incomplete last line'))).toBe(true);
  });

  it('names the file after the instance where the path asks for it', async () => {
    const s = sink(join(dir, 'events-{instance}.ndjson'), silentLogger, 'pod-7');
    await s.start();
    await s.send([event('a')]);
    await s.close();
    expect(await readFile(join(dir, 'events-pod-7.ndjson'), 'utf8')).toContain('"a"');
  });

  it('fails the batch with the sink and path named when the file cannot be written', async () => {
    const s = sink(join(dir, 'events.ndjson'));
    await s.start();
    await s.close();
    await expect(s.send([event('a')])).rejects.toThrow(/file sink "archive"/);
  });
});
