import type { Simulator } from '../../src/simulator/index.ts';

export const T0 = Date.UTC(2025, 5, 1, 12, 0, 0); // 2025-06-01T12:00:00Z
export const MIN = 60_000;
export const HOUR = 3_600_000;
export const DAY = 86_400_000;

export const PROJECT = '5fb5012d-0b0a-4437-ac3d-f93a1a82053c';
export const PROJECT_B = '0d6b1f8e-4c2a-4e7b-9a31-2b7c5d9e8f10';
export const FOLDER = '7aad84c0-27f6-4a86-b6d5-77eb9466d0c5';

/** A clock tests move by hand. */
export function manualClock(start = T0): {
  now: () => number;
  set: (ms: number) => void;
  advance: (ms: number) => void;
} {
  let t = start;
  return {
    now: () => t,
    set: (ms) => {
      t = ms;
    },
    advance: (ms) => {
      t += ms;
    },
  };
}

export interface Reply {
  status: number;
  headers: Headers;
  bytes: Buffer;
  text: string;
  json: () => unknown;
}

export interface ListParams {
  kind?: 'organizations' | 'folders' | 'projects';
  id?: string;
  start?: string | number | undefined;
  end?: string | number | undefined;
  limit?: string | number | undefined;
  cursor?: string | undefined;
  token?: string | null;
  userAgent?: string;
}

const iso = (v: string | number): string => (typeof v === 'number' ? new Date(v).toISOString() : v);

export async function list(sim: Simulator, p: ListParams): Promise<Reply> {
  const q = new URLSearchParams();
  if (p.start !== undefined) q.set('start-time-range', iso(p.start));
  if (p.end !== undefined) q.set('end-time-range', iso(p.end));
  if (p.limit !== undefined) q.set('limit', String(p.limit));
  if (p.cursor !== undefined) q.set('cursor', p.cursor);
  const headers: Record<string, string> = {};
  const token = p.token === undefined ? sim.token : p.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (p.userAgent) headers['user-agent'] = p.userAgent;
  const res = await fetch(`${sim.url}/v2/${p.kind ?? 'projects'}/${p.id ?? PROJECT}?${q}`, { headers });
  const bytes = Buffer.from(await res.arrayBuffer());
  const text = bytes.toString('utf8');
  return { status: res.status, headers: res.headers, bytes, text, json: () => JSON.parse(text) as unknown };
}

export interface PageBody {
  items: Record<string, unknown>[];
  cursor?: string;
  limit: number;
}

/**
 * Splits a page body into the byte ranges of its items, the way a raw-preserving client must: a scan
 * of JSON structure over bytes (UTF-8 multibyte sequences never contain ASCII bytes).
 */
export function itemBytes(body: Buffer): Buffer[] {
  const prefix = Buffer.from('{"items":[');
  if (!body.subarray(0, prefix.length).equals(prefix)) throw new Error('body does not start with {"items":[');
  const items: Buffer[] = [];
  let depth = 0;
  let inString = false;
  let start = prefix.length;
  for (let i = prefix.length; i < body.length; i++) {
    const c = body[i];
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) {
      if (depth === 0) {
        if (i > start) items.push(body.subarray(start, i));
        return items;
      }
      depth--;
    } else if (c === 0x2c && depth === 0) {
      items.push(body.subarray(start, i));
      start = i + 1;
    }
  }
  throw new Error('unterminated items array');
}

/** Pages a whole window, returning every page's parsed body and raw item bytes. */
export async function pageAll(
  sim: Simulator,
  p: ListParams,
): Promise<{ pages: PageBody[]; raws: Buffer[]; ids: string[] }> {
  const pages: PageBody[] = [];
  const raws: Buffer[] = [];
  let cursor: string | undefined;
  for (let guard = 0; guard < 10_000; guard++) {
    const reply = await list(sim, { ...p, cursor });
    if (reply.status !== 200) throw new Error(`status ${reply.status}: ${reply.text}`);
    const page = reply.json() as PageBody;
    pages.push(page);
    raws.push(...itemBytes(reply.bytes));
    cursor = page.cursor;
    if (cursor === undefined) break;
  }
  return { pages, raws, ids: pages.flatMap((page) => page.items.map((item) => item.id as string)) };
}
