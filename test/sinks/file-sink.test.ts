import { type FileHandle, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { OutboxEvent } from '../../src/pipeline/envelope.ts';
import { FileSink, type FileSinkIo } from '../../src/sinks/file/sink.ts';
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

function sink(path: string, log = silentLogger, instanceId = 'i-1', io?: FileSinkIo): FileSink {
  return new FileSink(
    { name: 'archive', type: 'file', settings: { path, fsync: true } },
    { log, instanceId },
    io,
  );
}

/** What a full disk does to write(2): some bytes go out, then a short count, then ENOSPC. */
class FullDiskIo implements FileSinkIo {
  /** Bytes the disk still takes; null: unlimited. */
  room: number | null = null;
  /** Largest count one call writes (a short write below it). */
  maxPerCall = Number.POSITIVE_INFINITY;
  /** Answer 0 instead of ENOSPC once full (a write that makes no progress). */
  zeroWhenFull = false;
  async append(file: FileHandle, data: Buffer, offset: number, length: number): Promise<number> {
    let n = Math.min(length, this.maxPerCall, this.room ?? Number.POSITIVE_INFINITY);
    if (n === 0) {
      if (this.zeroWhenFull) return 0;
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    }
    n = (await file.write(data, offset, n, null)).bytesWritten;
    if (this.room !== null) this.room -= n;
    return n;
  }
}

async function linesOf(path: string): Promise<string[]> {
  const text = await readFile(path, 'utf8');
  expect(text).not.toContain('\0');
  expect(text === '' || text.endsWith('\n')).toBe(true);
  const lines = text === '' ? [] : text.slice(0, -1).split('\n');
  for (const line of lines) JSON.parse(line);
  return lines;
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

  it('continues short writes until the whole batch is out', async () => {
    const path = join(dir, 'events.ndjson');
    const io = new FullDiskIo();
    io.maxPerCall = 7;
    const s = sink(path, silentLogger, 'i-1', io);
    await s.start();
    const batch = ['a', 'b', 'c'].map(event);
    expect(await s.send(batch)).toEqual(batch.map(() => ({ kind: 'delivered' })));
    await s.close();
    expect(await linesOf(path)).toEqual(batch.map((e) => e.line));
  });

  it('fails a batch the disk cannot take, cuts it back to the last whole line, and loses nothing when space returns', async () => {
    const path = join(dir, 'events.ndjson');
    const io = new FullDiskIo();
    const s = sink(path, silentLogger, 'i-1', io);
    await s.start();
    await s.send([event('a'), event('b')]);
    // Room for one line and a half: the second line is cut, then a short count, then ENOSPC.
    io.room = event('c').line.length + 1 + 10;
    io.maxPerCall = 20;
    await expect(s.send([event('c'), event('d')])).rejects.toThrow(
      /file sink "archive": cannot write .*events\.ndjson: ENOSPC/,
    );
    expect(await linesOf(path)).toEqual([event('a').line, event('b').line]);
    // Still full: the retry fails the same way and leaves the file whole.
    io.room = 5;
    await expect(s.send([event('c'), event('d')])).rejects.toThrow(/ENOSPC/);
    expect(await linesOf(path)).toEqual([event('a').line, event('b').line]);
    // Space is back: the redelivered batch (with an earlier event) is written once, nothing glued on.
    io.room = null;
    expect(await s.send([event('b'), event('c'), event('d')])).toEqual([
      { kind: 'duplicate' },
      { kind: 'delivered' },
      { kind: 'delivered' },
    ]);
    await s.close();
    expect(await linesOf(path)).toEqual(['a', 'b', 'c', 'd'].map((id) => event(id).line));
  });

  it('treats a write that makes no progress as a failure, never as written', async () => {
    const path = join(dir, 'events.ndjson');
    const io = new FullDiskIo();
    io.zeroWhenFull = true;
    const s = sink(path, silentLogger, 'i-1', io);
    await s.start();
    io.room = 12;
    await expect(s.send([event('a')])).rejects.toThrow(/made no progress/);
    expect(await readFile(path, 'utf8')).toBe('');
    io.room = null;
    expect(await s.send([event('a')])).toEqual([{ kind: 'delivered' }]);
    await s.close();
    expect(await linesOf(path)).toEqual([event('a').line]);
  });

  it('keeps recognising redeliveries after a cut-back, also across a restart', async () => {
    const path = join(dir, 'events.ndjson');
    const io = new FullDiskIo();
    const first = sink(path, silentLogger, 'i-1', io);
    await first.start();
    await first.send([event('a')]);
    io.room = 30;
    await expect(first.send([event('b'), event('c')])).rejects.toThrow(/ENOSPC/);
    await first.close();
    const second = sink(path);
    await second.start();
    // a was acknowledged and is known; b and c were cut back and must be written, not called duplicates.
    expect(await second.send([event('a'), event('b'), event('c')])).toEqual([
      { kind: 'duplicate' },
      { kind: 'delivered' },
      { kind: 'delivered' },
    ]);
    await second.close();
    expect(await linesOf(path)).toEqual(['a', 'b', 'c'].map((id) => event(id).line));
  });
});
