import type { FileHandle } from 'node:fs/promises';

/** How much is read per step when looking backwards for a line's end. */
const SCAN_CHUNK_BYTES = 1024 * 1024;

/**
 * The end of the last complete line at or before `size`: the offset just past its newline, 0 when the
 * file holds no complete line. Reads backwards in chunks, so a line of any length is found whole.
 */
export async function lastLineEnd(file: FileHandle, size: number): Promise<number> {
  let end = size;
  while (end > 0) {
    const start = Math.max(0, end - SCAN_CHUNK_BYTES);
    const chunk = Buffer.alloc(end - start);
    const { bytesRead } = await file.read(chunk, 0, chunk.length, start);
    const newline = chunk.subarray(0, bytesRead).lastIndexOf(0x0a);
    if (newline !== -1) return start + newline + 1;
    end = start;
  }
  return 0;
}

/** The event ids of the complete lines between `from` and `to` (`from` at a line start). */
export async function idsBetween(file: FileHandle, from: number, to: number): Promise<string[]> {
  if (to <= from) return [];
  const chunk = Buffer.alloc(to - from);
  const { bytesRead } = await file.read(chunk, 0, chunk.length, from);
  const ids: string[] = [];
  for (const line of chunk.subarray(0, bytesRead).toString('utf8').split('\n')) {
    const id = idOfLine(line);
    if (id !== undefined) ids.push(id);
  }
  return ids;
}

/** Lines start with `{"id":"…"`; reading just that avoids parsing megabytes of JSON at start. */
export function idOfLine(line: string): string | undefined {
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
