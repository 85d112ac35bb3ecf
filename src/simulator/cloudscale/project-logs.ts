/**
 * cloudscale.ch `GET /v1/project-logs`, simulated (research/providers.md §4): one bearer token per
 * project (the request names no project), `start`/`end` in ISO 8601, pages of up to 200 entries in
 * primary-key order, absolute `next` (null at the end) and `poll_more` (always) URLs that repeat the
 * request's query with a new `cursor` (the last returned primary key), entries that commit late and
 * are held back until every earlier id has committed, 503 maintenance windows, the shared fault
 * injection and request budget. Errors are Django REST framework bodies: `{"detail": "..."}`.
 *
 * Control routes: `GET /_sim/cloudscale/truth?project=NAME[&visibleBy=MS]` (NDJSON),
 * `PUT /_sim/cloudscale/maintenance {"untilMs": MS|null, "retryAfterSec"?: N}`,
 * `PUT /_sim/cloudscale/cursors {"reject": N, "status"?: 400|404|410}`,
 * `PUT /_sim/cloudscale/links {"origin": "http://host:port"|null}`.
 */
import type { Fault, MalformedKind } from '../faults.ts';
import { parseRfc3339Us } from '../rfc3339.ts';
import type { ProviderSimDeps, Route, RouteContext, SimModule, SimReply, SimResponse } from '../server.ts';
import { renderCloudscaleEntry } from './entries.ts';
import {
  type BackdateOptions,
  type CommitDelayOptions,
  formatTimestamp,
  type LogEntry,
  ProjectLog,
} from './log.ts';

export const CLOUDSCALE_PAGE_SIZE = 200;
const DEFAULT_HISTORY_MS = 60 * 60_000;
const CURSOR_REJECT_STATUSES = [400, 404, 410] as const;
type CursorRejectStatus = (typeof CURSOR_REJECT_STATUSES)[number];

export interface CloudscaleProjectOptions {
  /** The project's name; also its label in the truth and the request log. */
  readonly name: string;
  /** The API token that reads this project's log. */
  readonly token: string;
  readonly eventsPerMinute: number;
}

export interface CloudscaleOptions {
  readonly projects?: readonly CloudscaleProjectOptions[] | undefined;
  /** When rows commit after their insert (default 0–200 ms, none late). */
  readonly commit?: CommitDelayOptions | undefined;
  /** Entries whose timestamp lies before their insert (default none). */
  readonly backdate?: BackdateOptions | undefined;
  /** Fraction of entries logged twice, byte-identical (default 0). */
  readonly twinFraction?: number | undefined;
  /** Entries logged between an entry and its twin (default 0: the very next id). */
  readonly twinDistance?: number | undefined;
  /** Rows are inserted from this time on (epoch ms; default one hour before the simulator starts). */
  readonly trafficStartMs?: number | undefined;
  readonly trafficEndMs?: number | undefined;
  /** Default 90 days. */
  readonly retentionMs?: number | undefined;
  /** Entries per page (default 200, the real API's). */
  readonly pageSize?: number | undefined;
  /** Put `next`/`poll_more` on this origin instead of the server's own (origin-guard tests). */
  readonly linkOrigin?: string | undefined;
}

export type CloudscaleDeps = ProviderSimDeps;

export interface CloudscaleTruthEntry {
  /** Primary key (the API never shows it; cursors carry it). */
  readonly id: number;
  readonly project: string;
  /** `timestamp` exactly as the API prints it. */
  readonly timestamp: string;
  /** Epoch ms, truncated. */
  readonly timeMs: number;
  readonly insertedAtMs: number;
  readonly committedAtMs: number;
  /** Provider clock from which the API returns it: its commit and every earlier id's. */
  readonly visibleAtMs: number;
  /** The id of the entry it is a byte-identical twin of; null otherwise. */
  readonly twinOf: number | null;
  /** The entry's JSON text, byte for byte as it appears in a response's `results`. */
  readonly raw: string;
}

export interface CloudscaleTruthQuery {
  readonly project: string;
  /** Only entries visible by then (provider clock, epoch ms; default now). */
  readonly visibleBy?: number | undefined;
  /** Only timestamps at or after this (epoch ms). */
  readonly fromMs?: number | undefined;
}

const JSON_HEADERS = { 'content-type': 'application/json' } as const;
const HTML_ERROR_PAGE =
  '<!DOCTYPE html>\n<html>\n<head><title>502 Bad Gateway</title></head>\n<body>\n' +
  '<center><h1>502 Bad Gateway</h1></center>\n<hr><center>nginx</center>\n</body>\n</html>\n';

export class CloudscaleProjectLogs implements SimModule {
  readonly name = 'cloudscale.project-logs';
  readonly routes: readonly Route[];
  readonly log: ProjectLog;
  readonly pageSize: number;
  /** Origin of `next`/`poll_more` URLs; undefined: the server's own (from the Host header). */
  linkOrigin: string | undefined;
  readonly #deps: CloudscaleDeps;
  readonly #tokens = new Map<string, string>();
  readonly #raw = new WeakMap<LogEntry, Buffer>();
  #maintenance: { untilMs: number; retryAfterSec: number } | undefined;
  #cursorRejections: { remaining: number; status: CursorRejectStatus } | undefined;
  #repeatNonce = 0;

  constructor(options: CloudscaleOptions, deps: CloudscaleDeps) {
    this.#deps = deps;
    this.pageSize = options.pageSize ?? CLOUDSCALE_PAGE_SIZE;
    this.linkOrigin = options.linkOrigin;
    this.log = new ProjectLog({
      seed: deps.seed,
      commit: options.commit,
      backdate: options.backdate,
      twinFraction: options.twinFraction,
      twinDistance: options.twinDistance,
      trafficStartMs: options.trafficStartMs ?? deps.clock.simNow() - DEFAULT_HISTORY_MS,
      trafficEndMs: options.trafficEndMs,
      retentionMs: options.retentionMs,
    });
    for (const project of options.projects ?? []) this.addProject(project);
    this.routes = [
      {
        name: this.name,
        methods: ['GET'],
        path: /^\/v1\/project-logs\/?$/,
        handle: (ctx) => withProviderDate(this.#handle(ctx), deps.clock.simNow()),
      },
      {
        name: 'sim.cloudscale.truth',
        methods: ['GET'],
        path: /^\/_sim\/cloudscale\/truth$/,
        handle: (ctx) => this.#truthRoute(ctx),
      },
      {
        name: 'sim.cloudscale.maintenance',
        methods: ['PUT'],
        path: /^\/_sim\/cloudscale\/maintenance$/,
        handle: (ctx) =>
          control(ctx, (doc) => {
            const until = doc.untilMs;
            if (until !== null && typeof until !== 'number')
              throw new Error('untilMs must be epoch ms or null');
            this.setMaintenance(until ?? undefined, optionalNumber(doc.retryAfterSec, 'retryAfterSec'));
          }),
      },
      {
        name: 'sim.cloudscale.cursors',
        methods: ['PUT'],
        path: /^\/_sim\/cloudscale\/cursors$/,
        handle: (ctx) =>
          control(ctx, (doc) => {
            const count = doc.reject;
            if (typeof count !== 'number' || !(count >= 0)) throw new Error('reject must be a count >= 0');
            this.rejectCursors(count, (doc.status ?? 404) as CursorRejectStatus);
          }),
      },
      {
        name: 'sim.cloudscale.links',
        methods: ['PUT'],
        path: /^\/_sim\/cloudscale\/links$/,
        handle: (ctx) =>
          control(ctx, (doc) => {
            if (doc.origin !== null && typeof doc.origin !== 'string')
              throw new Error('origin must be a URL or null');
            this.linkOrigin = doc.origin === null ? undefined : new URL(doc.origin).origin;
          }),
      },
    ];
  }

  addProject(project: CloudscaleProjectOptions): void {
    if (project.token === '') throw new Error('a project needs a token');
    const holder = this.#tokens.get(project.token);
    if (holder !== undefined && holder !== project.name) {
      throw new Error(`token of project ${project.name} already reads project ${holder}`);
    }
    this.log.addProject(project.name, project.eventsPerMinute);
    this.#tokens.set(project.token, project.name);
  }

  /** Revokes every token of the project: its requests answer 401 from now on. */
  revokeTokens(name: string): void {
    for (const [token, project] of this.#tokens) if (project === name) this.#tokens.delete(token);
  }

  /** Every request answers 503 with `Retry-After` until `untilMs` (provider clock); undefined ends it. */
  setMaintenance(untilMs: number | undefined, retryAfterSec = 1): void {
    this.#maintenance = untilMs === undefined ? undefined : { untilMs, retryAfterSec };
  }

  /** The next `count` requests that carry a cursor are refused with `status` (a cursor the API no longer knows). */
  rejectCursors(count: number, status: CursorRejectStatus = 404): void {
    if (!CURSOR_REJECT_STATUSES.includes(status)) {
      throw new Error(`status must be one of ${CURSOR_REJECT_STATUSES.join(', ')}`);
    }
    this.#cursorRejections = count > 0 ? { remaining: count, status } : undefined;
  }

  /** No rows inserted at or after `atMs` (default: provider now). */
  stopTraffic(atMs?: number): void {
    this.log.stopTraffic(atMs ?? this.#deps.clock.simNow());
  }

  /** Ground truth: one project's entries in id order, visible by `visibleBy`, with their bytes. */
  truth(query: CloudscaleTruthQuery): CloudscaleTruthEntry[] {
    if (!this.log.hasProject(query.project))
      throw new Error(`the simulator serves no project ${query.project}`);
    const nowMs = this.#deps.clock.simNow();
    const visibleBy = query.visibleBy ?? nowMs;
    const horizon = this.log.horizonId(Math.min(visibleBy, nowMs));
    const fromUs = Math.max(query.fromMs ?? Number.NEGATIVE_INFINITY, nowMs - this.log.retentionMs) * 1000;
    const out: CloudscaleTruthEntry[] = [];
    for (const row of this.log.rows(query.project, nowMs)) {
      if (row.id > horizon) break;
      if (row.tUs < fromUs) continue;
      out.push({
        id: row.id,
        project: row.project,
        timestamp: formatTimestamp(row.tUs),
        timeMs: Math.floor(row.tUs / 1000),
        insertedAtMs: row.insertedMs,
        committedAtMs: row.committedMs,
        visibleAtMs: this.log.visibleAtMs(row),
        twinOf: row.twinOf ?? null,
        raw: this.#rawBytes(row).toString('utf8'),
      });
    }
    return out;
  }

  // ---------------------------------------------------------------- the API

  #handle(ctx: RouteContext): SimReply {
    const { req, url } = ctx;
    const q = url.searchParams;
    const nowMs = this.#deps.clock.simNow();
    const auth = req.headers.authorization;
    const token = auth === undefined ? undefined : /^Bearer\s+(\S+)\s*$/i.exec(auth)?.[1];
    const project = token === undefined ? undefined : this.#tokens.get(token);
    const observation = ctx.observe({
      route: this.name,
      scope: project === undefined ? null : { kind: 'project', id: project },
      scopeKey: project === undefined ? null : `cloudscale:${project}`,
      startRange: q.get('start'),
      endRange: q.get('end'),
      limit: null,
      cursorPresent: q.has('cursor'),
      simNowMs: nowMs,
    });

    const maintenance = this.#maintenance;
    if (maintenance && nowMs < maintenance.untilMs) {
      observation.fault = 'maintenance';
      return {
        ...detail(503, 'Service temporarily unavailable, try again later.'),
        headers: { ...JSON_HEADERS, 'retry-after': String(maintenance.retryAfterSec) },
      };
    }
    if (token === undefined) return unauthorized('Authentication credentials were not provided.');
    if (project === undefined) return unauthorized('Invalid token.');

    const verdict = this.#deps.budget.take(token);
    if (!verdict.ok) {
      const headers: Record<string, string> = { ...JSON_HEADERS };
      if (this.#deps.retryAfterHeader()) headers['retry-after'] = String(verdict.retryAfterSec);
      return {
        status: 429,
        headers,
        body: JSON.stringify({
          detail: `Request was throttled. Expected available in ${verdict.retryAfterSec} seconds.`,
        }),
      };
    }

    const fault = this.#deps.faults.next();
    if (fault) observation.fault = describeFault(fault);
    if (fault?.type === 'status') {
      const reply = detail(fault.status, statusDetail(fault.status));
      return fault.retryAfterSec === undefined
        ? reply
        : { ...reply, headers: { ...JSON_HEADERS, 'retry-after': String(Math.ceil(fault.retryAfterSec)) } };
    }
    if (fault?.type === 'reset') return { reset: true };
    const delayMs = fault?.type === 'slow' ? fault.delayMs : undefined;

    const query = this.#parse(q);
    if ('status' in query) return { ...query, delayMs };
    if (query.cursor !== undefined && this.#cursorRejections) {
      const rejection = this.#cursorRejections;
      if (--rejection.remaining <= 0) this.#cursorRejections = undefined;
      observation.fault = `cursor-rejected:${rejection.status}`;
      return { ...detail(rejection.status, 'Invalid cursor'), delayMs };
    }

    const result = this.log.list({
      project,
      afterId: query.cursor,
      startUs: query.startUs,
      endUs: query.endUs,
      limit: this.pageSize,
      nowMs,
    });
    const last = result.entries[result.entries.length - 1];
    // The cursor is the last returned primary key; on an empty page, where the request stood (or, for a
    // first request, the horizon: everything up to it was considered).
    const cursor = last?.id ?? query.cursor ?? result.horizonId;
    const origin = this.linkOrigin ?? `http://${req.headers.host}`;
    const link = (c: number): string => {
      const target = new URL(`${url.pathname}${url.search}`, origin);
      target.searchParams.set('cursor', String(c));
      return target.href;
    };
    let next: string | null = result.more ? link(cursor) : null;
    // A pagination loop: `next` sends the client back to the request it just made.
    if (fault?.type === 'repeat-cursor') next = new URL(`${url.pathname}${url.search}`, origin).href;
    let pollMore = link(cursor);
    if (fault?.type === 'repeat-page') {
      // A fresh cursor that reads from where this request stood: the same entries again.
      const again = new URL(`${url.pathname}${url.search}`, origin);
      again.searchParams.set('n', String(++this.#repeatNonce));
      next = result.more ? again.href : null;
      pollMore = again.href;
    }
    const raws = result.entries.map((row) => this.#rawBytes(row));
    observation.items = fault?.type === 'malformed' ? 0 : raws.length;
    if (fault?.type === 'malformed') {
      return { ...malformed(fault.kind, raws, next, pollMore, result.entries), delayMs };
    }
    return { status: 200, headers: JSON_HEADERS, body: pageBody(next, pollMore, raws), delayMs };
  }

  #parse(
    q: URLSearchParams,
  ): { startUs: number | undefined; endUs: number | undefined; cursor: number | undefined } | SimResponse {
    const time = (name: string): number | undefined | SimResponse => {
      const text = q.get(name);
      if (text === null || text === '') return undefined;
      // An unencoded `+00:00` arrives as ` 00:00` and is refused, as Django refuses it.
      const us = parseRfc3339Us(text);
      return us === undefined
        ? {
            status: 400,
            headers: JSON_HEADERS,
            body: JSON.stringify({ [name]: ['Enter a valid date/time.'] }),
          }
        : us;
    };
    const startUs = time('start');
    if (typeof startUs === 'object') return startUs;
    const endUs = time('end');
    if (typeof endUs === 'object') return endUs;
    const cursorText = q.get('cursor');
    let cursor: number | undefined;
    if (cursorText !== null) {
      if (!/^\d{1,15}$/.test(cursorText)) return detail(404, 'Invalid cursor');
      cursor = Number(cursorText);
    }
    return { startUs, endUs, cursor };
  }

  #rawBytes(row: LogEntry): Buffer {
    let bytes = this.#raw.get(row);
    if (bytes === undefined) {
      bytes = Buffer.from(renderCloudscaleEntry(row), 'utf8');
      this.#raw.set(row, bytes);
    }
    return bytes;
  }

  #truthRoute(ctx: RouteContext): SimReply {
    const q = ctx.url.searchParams;
    const project = q.get('project') ?? '';
    if (!this.log.hasProject(project)) return detail(404, `no project ${project}`);
    const number = (name: string): number | undefined => {
      const text = q.get(name);
      return text === null || text === '' ? undefined : Number(text);
    };
    const entries = this.truth({ project, visibleBy: number('visibleBy'), fromMs: number('from') });
    return {
      status: 200,
      headers: { 'content-type': 'application/x-ndjson' },
      stream: entries.map((entry) => `${JSON.stringify(entry)}\n`),
    };
  }
}

function detail(status: number, text: string): SimResponse {
  return { status, headers: JSON_HEADERS, body: JSON.stringify({ detail: text }) };
}

function unauthorized(text: string): SimResponse {
  return { ...detail(401, text), headers: { ...JSON_HEADERS, 'www-authenticate': 'Bearer realm="api"' } };
}

function statusDetail(status: number): string {
  if (status === 503) return 'Service temporarily unavailable, try again later.';
  if (status === 500) return 'A server error occurred.';
  return 'Bad gateway.';
}

/** `{"next":…,"poll_more":…,"results":[<raw>,…]}` assembled from the entries' bytes, never re-encoded. */
function pageBody(next: string | null, pollMore: unknown, raws: readonly Buffer[]): Buffer {
  const head = Buffer.from(
    `{"next":${JSON.stringify(next)},"poll_more":${JSON.stringify(pollMore)},"results":[`,
  );
  const parts: Buffer[] = [head];
  raws.forEach((raw, i) => {
    if (i > 0) parts.push(Buffer.from(','));
    parts.push(raw);
  });
  parts.push(Buffer.from(']}'));
  return Buffer.concat(parts);
}

function malformed(
  kind: MalformedKind,
  raws: readonly Buffer[],
  next: string | null,
  pollMore: unknown,
  rows: readonly LogEntry[],
): SimResponse {
  const ok = (body: string | Buffer): SimResponse => ({ status: 200, headers: JSON_HEADERS, body });
  switch (kind) {
    case 'invalid-json': {
      const full = pageBody(next, pollMore, raws);
      return ok(full.subarray(0, Math.max(1, Math.floor(full.length / 2))));
    }
    case 'html':
      return { status: 200, headers: { 'content-type': 'text/html; charset=utf-8' }, body: HTML_ERROR_PAGE };
    case 'missing-items':
      return ok(JSON.stringify({ next, poll_more: pollMore }));
    case 'items-not-array':
      return ok(JSON.stringify({ next, poll_more: pollMore, results: {} }));
    case 'item-wrong-types': {
      const [first, ...rest] = raws;
      const broken = first ? (JSON.parse(first.toString('utf8')) as Record<string, unknown>) : {};
      broken.timestamp = rows[0] ? Math.floor(rows[0].tUs / 1000) : 0;
      return ok(pageBody(next, pollMore, [Buffer.from(JSON.stringify(broken)), ...rest]));
    }
    case 'cursor-wrong-type':
      return ok(pageBody(next, 42, raws));
  }
}

function describeFault(fault: Fault): string {
  switch (fault.type) {
    case 'status':
      return `status:${fault.status}`;
    case 'slow':
      return `slow:${fault.delayMs}`;
    case 'malformed':
      return `malformed:${fault.kind}`;
    default:
      return fault.type;
  }
}

/** The provider's `Date` header follows its own (possibly skewed) clock. */
function withProviderDate(reply: SimReply, nowMs: number): SimReply {
  if ('reset' in reply) return reply;
  return { ...reply, headers: { ...reply.headers, date: new Date(nowMs).toUTCString() } };
}

function optionalNumber(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !(value >= 0)) throw new Error(`${name} must be a number >= 0`);
  return value;
}

function control(ctx: RouteContext, apply: (doc: Record<string, unknown>) => void): SimResponse {
  try {
    const doc = ctx.body.trim() === '' ? {} : (JSON.parse(ctx.body) as unknown);
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
      throw new Error('body must be a JSON object');
    apply(doc as Record<string, unknown>);
    return { status: 200, headers: JSON_HEADERS, body: '{"ok":true}' };
  } catch (error) {
    return detail(400, error instanceof Error ? error.message : String(error));
  }
}
