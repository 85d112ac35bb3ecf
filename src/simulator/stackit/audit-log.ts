/**
 * STACKIT Audit Log API v2, simulated: `GET /v2/{organizations|folders|projects}/{id}` with the real
 * API's parameters, limits and error bodies (research/providers.md §1), keyset pagination, late
 * arrivals, a per-token request budget and injected faults. Also the STACKIT-specific control routes
 * `/_sim/truth`, `/_sim/scopes` and `/_sim/traffic`.
 */
import type { Fault, MalformedKind } from '../faults.ts';
import { UUID_PATTERN } from '../random.ts';
import { formatRfc3339Ms, parseRfc3339Us } from '../rfc3339.ts';
import type { ProviderSimDeps, Route, RouteContext, SimModule, SimReply, SimResponse } from '../server.ts';
import { type DelayOptions, type SimEvent, scopeKey, Traffic, type TrafficScope } from '../traffic.ts';
import { Truth, type TruthEvent } from '../truth.ts';
import { type CursorBinding, CursorCodec, type CursorPosition } from './cursor.ts';
import { renderStackitEvent } from './events.ts';
import type { StackitIdentity } from './identity.ts';

export const STACKIT_SCOPE_KINDS = ['organization', 'folder', 'project'] as const;
export type StackitScopeKind = (typeof STACKIT_SCOPE_KINDS)[number];

const KIND_BY_SEGMENT: Readonly<Record<string, StackitScopeKind>> = {
  organizations: 'organization',
  folders: 'folder',
  projects: 'project',
};

const DAY_MS = 86_400_000;
export const STACKIT_RETENTION_MS = 90 * DAY_MS;
export const STACKIT_MAX_PERIOD_MS = DAY_MS;
export const STACKIT_DEFAULT_LIMIT = 50;
export const STACKIT_MAX_LIMIT = 100;

export interface StackitScopeOptions {
  readonly kind: StackitScopeKind;
  /** A UUID. */
  readonly id: string;
  readonly eventsPerMinute: number;
}

export interface StackitOptions {
  /** The static bearer token the API accepts besides issued access tokens (default `sim-token`). */
  readonly token?: string | undefined;
  /** Lifetime of access tokens the token endpoint issues (default 1 h). */
  readonly accessTokenTtlMs?: number | undefined;
  readonly scopes?: readonly StackitScopeOptions[] | undefined;
  /** Ingestion delay distribution (default uniform 1–8 s, no late arrivals). */
  readonly delay?: DelayOptions | undefined;
  /** Item order within a window (default `asc` by `(eventTimeStamp, id)`). */
  readonly order?: 'asc' | 'desc' | undefined;
  /** Event-time bounds of all traffic, epoch ms `[start, end)`. Unbounded by default. */
  readonly trafficStartMs?: number | undefined;
  readonly trafficEndMs?: number | undefined;
  /** Retention (default 90 days): a start older than now − retention is refused. */
  readonly retentionMs?: number | undefined;
  /** Longest period one request may ask for (default 24 h). */
  readonly maxPeriodMs?: number | undefined;
}

export interface StackitDeps extends ProviderSimDeps {
  /** Who may call: the static token and the access tokens the token endpoint issued. */
  readonly identity: StackitIdentity;
  /** Events kept in the traffic LRU. */
  readonly cacheEvents?: number | undefined;
}

/** Parsed, validated query of one audit-log request. */
interface ListQuery {
  readonly scope: TrafficScope;
  readonly binding: CursorBinding;
  readonly limit: number;
  readonly after: CursorPosition | undefined;
  readonly cursorText: string | undefined;
}

interface Page {
  readonly query: ListQuery;
  readonly items: readonly SimEvent[];
  /** Each item's raw JSON, UTF-8. */
  readonly raws: readonly Buffer[];
  readonly cursor: string | undefined;
}

const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  404: 'Not Found',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

const JSON_HEADERS = { 'content-type': 'application/json' } as const;

const HTML_ERROR_PAGE =
  '<!DOCTYPE html>\n<html>\n<head><title>502 Bad Gateway</title></head>\n<body>\n' +
  '<center><h1>502 Bad Gateway</h1></center>\n<hr><center>nginx</center>\n</body>\n</html>\n';

export class StackitAuditLog implements SimModule {
  readonly name = 'stackit.audit-log';
  readonly routes: readonly Route[];
  readonly traffic: Traffic;
  readonly truth: Truth;
  readonly order: 'asc' | 'desc';
  readonly retentionMs: number;
  readonly maxPeriodMs: number;
  readonly #deps: StackitDeps;
  readonly #codec: CursorCodec;

  constructor(options: StackitOptions, deps: StackitDeps) {
    this.#deps = deps;
    this.order = options.order ?? 'asc';
    this.retentionMs = options.retentionMs ?? STACKIT_RETENTION_MS;
    this.maxPeriodMs = options.maxPeriodMs ?? STACKIT_MAX_PERIOD_MS;
    this.#codec = new CursorCodec(deps.seed);
    this.traffic = new Traffic({
      seed: deps.seed,
      delay: options.delay,
      render: renderStackitEvent,
      cacheEvents: deps.cacheEvents,
      trafficStartMs: options.trafficStartMs,
      trafficEndMs: options.trafficEndMs,
    });
    for (const scope of options.scopes ?? []) this.addScope(scope);
    this.truth = new Truth(this.traffic, deps.clock, this.retentionMs);
    this.routes = [
      {
        name: this.name,
        methods: ['GET'],
        path: /^\/v2\/(organizations|folders|projects)\/([^/]+)$/,
        handle: (ctx) => withProviderDate(this.#handle(ctx), this.#deps.clock.simNow()),
      },
      {
        name: 'sim.truth',
        methods: ['GET'],
        path: /^\/_sim\/truth$/,
        handle: (ctx) => this.#truthRoute(ctx),
      },
      {
        name: 'sim.scopes',
        methods: ['GET'],
        path: /^\/_sim\/scopes$/,
        handle: () => jsonReply(200, this.truth.scopes()),
      },
      {
        name: 'sim.traffic',
        methods: ['GET', 'PUT'],
        path: /^\/_sim\/traffic$/,
        handle: (ctx) => this.#trafficRoute(ctx),
      },
    ];
  }

  /** The static bearer token (issued access tokens are accepted too). */
  get token(): string {
    return this.#deps.identity.staticToken;
  }

  set token(value: string) {
    this.#deps.identity.staticToken = value;
  }

  addScope(scope: StackitScopeOptions): void {
    if (!(STACKIT_SCOPE_KINDS as readonly string[]).includes(scope.kind)) {
      throw new Error(`scope kind must be one of ${STACKIT_SCOPE_KINDS.join(', ')}, got ${scope.kind}`);
    }
    if (!UUID_PATTERN.test(scope.id)) throw new Error(`scope id must be a UUID, got ${scope.id}`);
    this.traffic.addScope({ kind: scope.kind, id: scope.id.toLowerCase() }, scope.eventsPerMinute);
  }

  /** The scope answers 404 from now on. */
  removeScope(scope: { readonly kind: StackitScopeKind; readonly id: string }): boolean {
    return this.traffic.removeScope(scope);
  }

  // ---------------------------------------------------------------- the API

  #handle(ctx: RouteContext): SimReply {
    const { req, url } = ctx;
    const [segment = '', rawId = ''] = ctx.params;
    const kind = KIND_BY_SEGMENT[segment] as StackitScopeKind;
    const id = safeDecode(rawId);
    const q = url.searchParams;
    const limitText = q.get('limit');
    const limitNumber = limitText === null || limitText.trim() === '' ? Number.NaN : Number(limitText);
    const simNow = this.#deps.clock.simNow();
    const observation = ctx.observe({
      route: this.name,
      scope: { kind, id },
      scopeKey: scopeKey(kind, id),
      startRange: q.get('start-time-range'),
      endRange: q.get('end-time-range'),
      limit: Number.isFinite(limitNumber) ? limitNumber : null,
      cursorPresent: q.has('cursor'),
      simNowMs: simNow,
    });
    const at: At = { path: url.pathname, nowMs: simNow };

    const principal = this.#deps.identity.authorize(req.headers.authorization);
    if (principal === undefined) return errorReply(401, 'The request could not be authorized', at);

    // The budget counts per principal (a service account, or the static token): re-minting access
    // tokens must not buy a client more requests. What STACKIT counts against is unconfirmed.
    const verdict = this.#deps.budget.take(principal);
    if (!verdict.ok) {
      const headers: Record<string, string> = { ...JSON_HEADERS };
      if (this.#deps.retryAfterHeader()) headers['retry-after'] = String(verdict.retryAfterSec);
      return { status: 429, headers, body: '{"message":"Too many requests","status":"429"}' };
    }

    const fault = this.#deps.faults.next();
    if (fault) observation.fault = describeFault(fault);
    if (fault?.type === 'status') return statusFaultReply(fault.status, fault.retryAfterSec, at);
    if (fault?.type === 'reset') return { reset: true };

    const slowMs = fault?.type === 'slow' ? fault.delayMs : undefined;
    const parsed = this.#parse(kind, id, q, at);
    if ('status' in parsed) return slowMs === undefined ? parsed : { ...parsed, delayMs: slowMs };
    const page = this.#page(parsed, simNow);
    let reply: SimResponse;
    if (fault?.type === 'malformed') reply = malformedReply(fault.kind, page);
    else if (fault?.type === 'repeat-cursor') {
      const cursor =
        page.query.cursorText ?? this.#codec.encode(page.query.binding, startPosition(page.query));
      reply = pageReply({ ...page, cursor });
    } else reply = pageReply(page);
    observation.items = fault?.type === 'malformed' ? 0 : page.items.length;
    return slowMs === undefined ? reply : { ...reply, delayMs: slowMs };
  }

  #parse(kind: StackitScopeKind, id: string, q: URLSearchParams, at: At): ListQuery | SimResponse {
    const simNow = at.nowMs;
    if (!UUID_PATTERN.test(id)) {
      return errorReply(400, `Invalid value "${id}" for ${kind}Id: must be a UUID`, at);
    }
    const scope = this.traffic.scope(kind, id);
    if (!scope) return errorReply(404, `${id} not found.`, at);

    const startText = q.get('start-time-range');
    const endText = q.get('end-time-range');
    if (startText === null || startText === '') {
      return errorReply(400, 'Required parameter start-time-range is missing', at);
    }
    if (endText === null || endText === '') {
      return errorReply(400, 'Required parameter end-time-range is missing', at);
    }
    const startUs = parseRfc3339Us(startText);
    if (startUs === undefined) {
      return errorReply(
        400,
        `Invalid value "${startText}" for start-time-range: expected an RFC 3339 date-time`,
        at,
      );
    }
    const endUs = parseRfc3339Us(endText);
    if (endUs === undefined) {
      return errorReply(
        400,
        `Invalid value "${endText}" for end-time-range: expected an RFC 3339 date-time`,
        at,
      );
    }
    if (endUs < startUs) return errorReply(400, 'end-time-range must not be before start-time-range', at);
    if (endUs - startUs > this.maxPeriodMs * 1000) {
      return errorReply(400, 'Period must not be longer than 24 hours within the last 90 days.', at);
    }
    if (startUs < (simNow - this.retentionMs) * 1000) {
      return errorReply(400, 'Period must not be longer than 24 hours within the last 90 days.', at);
    }

    let limit = STACKIT_DEFAULT_LIMIT;
    const limitText = q.get('limit');
    if (limitText !== null) {
      const n = limitText.trim() === '' ? Number.NaN : Number(limitText);
      if (!Number.isInteger(n) || n < 1) {
        return errorReply(400, `Invalid value "${limitText}" for limit: must be a number >= 1`, at);
      }
      limit = Math.min(n, STACKIT_MAX_LIMIT);
    }

    const binding: CursorBinding = { scope: scope.key, startUs, endUs, order: this.order };
    const cursorText = q.get('cursor') ?? undefined;
    let after: CursorPosition | undefined;
    if (cursorText !== undefined) {
      const decoded = this.#codec.decode(cursorText, binding);
      if ('error' in decoded) return errorReply(400, `Invalid cursor: ${decoded.error}`, at);
      after = decoded;
    }
    return { scope, binding, limit, after, cursorText };
  }

  /** One page: up to `limit` visible items after the cursor; a cursor iff at least one more exists now. */
  #page(query: ListQuery, simNow: number): Page {
    const items: SimEvent[] = [];
    let more = false;
    for (const event of this.traffic.scan(query.scope, {
      fromUs: query.binding.startUs,
      toUs: query.binding.endUs,
      order: this.order,
      after: query.after,
      visibleBy: simNow,
    })) {
      if (items.length === query.limit) {
        more = true;
        break;
      }
      items.push(event);
    }
    const last = items[items.length - 1];
    const cursor =
      more && last ? this.#codec.encode(query.binding, { tUs: last.tUs, id: last.id }) : undefined;
    return { query, items, raws: items.map((e) => this.traffic.rawBytes(e)), cursor };
  }

  // ---------------------------------------------------------------- control routes

  #truthRoute(ctx: RouteContext): SimReply {
    const q = ctx.url.searchParams;
    const kind = q.get('kind') ?? '';
    const id = (q.get('id') ?? '').toLowerCase();
    if (!this.traffic.scope(kind, id)) return jsonReply(404, { message: `no scope ${kind}:${id}` });
    const num = (name: string): number | undefined | null => {
      const text = q.get(name);
      if (text === null || text === '') return undefined;
      const n = /^-?\d+(\.\d+)?$/.test(text) ? Number(text) : (parseRfc3339Us(text) ?? Number.NaN) / 1000;
      return Number.isFinite(n) ? n : null;
    };
    const fromMs = num('from');
    const toMs = num('to');
    const visibleBy = num('visibleBy');
    if (fromMs === null || toMs === null || visibleBy === null) {
      return jsonReply(400, { message: 'from, to and visibleBy must be epoch ms or RFC 3339' });
    }
    const events = this.truth.iterate({ scope: { kind, id }, fromMs, toMs, visibleBy });
    return {
      status: 200,
      headers: { 'content-type': 'application/x-ndjson' },
      stream: ndjson(events),
    };
  }

  #trafficRoute(ctx: RouteContext): SimReply {
    if (ctx.method === 'PUT') {
      let doc: unknown;
      try {
        doc = JSON.parse(ctx.body);
      } catch {
        return jsonReply(400, {
          message: 'body must be JSON: {"startMs"?: number|null, "endMs"?: number|null}',
        });
      }
      const bounds = doc as { startMs?: unknown; endMs?: unknown };
      const ok = (v: unknown): boolean =>
        v === undefined || v === null || (typeof v === 'number' && Number.isFinite(v));
      if (typeof doc !== 'object' || doc === null || !ok(bounds.startMs) || !ok(bounds.endMs)) {
        return jsonReply(400, { message: 'startMs and endMs must be epoch ms numbers or null' });
      }
      this.traffic.setWindow({
        startMs: bounds.startMs as number | null | undefined,
        endMs: bounds.endMs as number | null | undefined,
      });
    }
    const { startMs, endMs } = this.traffic.window;
    return jsonReply(200, {
      startMs: Number.isFinite(startMs) ? startMs : null,
      endMs: Number.isFinite(endMs) ? endMs : null,
    });
  }
}

/** The provider's `Date` header follows its own (possibly skewed) clock. */
function withProviderDate(reply: SimReply, nowMs: number): SimReply {
  if ('reset' in reply) return reply;
  return { ...reply, headers: { ...reply.headers, date: new Date(nowMs).toUTCString() } };
}

function* ndjson(events: Iterable<TruthEvent>): Generator<string, void, undefined> {
  let chunk = '';
  for (const event of events) {
    chunk += `${JSON.stringify(event)}\n`;
    if (chunk.length > 64 * 1024) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk !== '') yield chunk;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text).toLowerCase();
  } catch {
    return text.toLowerCase();
  }
}

function jsonReply(status: number, value: unknown): SimResponse {
  return { status, headers: JSON_HEADERS, body: JSON.stringify(value) };
}

/** STACKIT's `ErrorResponse`: `{message, path, status, timestamp}` with the status as text, as in the spec. */
/** Where an error happened: the request path and the provider clock. */
interface At {
  readonly path: string;
  readonly nowMs: number;
}

function errorReply(status: number, message: string, at: At): SimResponse {
  return jsonReply(status, {
    message,
    path: at.path,
    status: STATUS_TEXT[status] ?? String(status),
    timestamp: formatRfc3339Ms(at.nowMs),
  });
}

function statusFaultReply(status: number, retryAfterSec: number | undefined, at: At): SimResponse {
  const reply =
    status === 500
      ? errorReply(500, 'Internal Server Error', at)
      : // Gateway errors come from the gateway: GatewayErrorResponse.
        jsonReply(status, { message: STATUS_TEXT[status] ?? 'Error', status: String(status) });
  if (retryAfterSec === undefined) return reply;
  return { ...reply, headers: { ...reply.headers, 'retry-after': String(Math.ceil(retryAfterSec)) } };
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

/** A position before every item of the window (a cursor that re-reads from the start). */
function startPosition(query: ListQuery): CursorPosition {
  return query.binding.order === 'asc'
    ? { tUs: query.binding.startUs, id: '' }
    : { tUs: query.binding.endUs, id: '' };
}

const ITEMS_PREFIX = Buffer.from('{"items":[');
const COMMA = Buffer.from(',');

/** `{"items":[<raw>,<raw>…],"cursor":…,"limit":N}` assembled from the items' bytes, never re-encoded. */
function pageBody(raws: readonly Buffer[], cursorJson: string | undefined, limit: number): Buffer {
  const cursorPart = cursorJson === undefined ? '' : `,"cursor":${cursorJson}`;
  const tail = Buffer.from(`]${cursorPart},"limit":${limit}}`);
  const parts: Buffer[] = new Array(raws.length * 2 + 1);
  let n = 0;
  let length = ITEMS_PREFIX.length + tail.length;
  parts[n++] = ITEMS_PREFIX;
  for (let i = 0; i < raws.length; i++) {
    const raw = raws[i] as Buffer;
    if (i > 0) {
      parts[n++] = COMMA;
      length += 1;
    }
    parts[n++] = raw;
    length += raw.length;
  }
  parts[n++] = tail;
  parts.length = n;
  return Buffer.concat(parts, length);
}

function pageReply(page: Page): SimResponse {
  const cursorJson = page.cursor === undefined ? undefined : JSON.stringify(page.cursor);
  return { status: 200, headers: JSON_HEADERS, body: pageBody(page.raws, cursorJson, page.query.limit) };
}

function malformedReply(kind: MalformedKind, page: Page): SimResponse {
  const limit = page.query.limit;
  const cursorJson = page.cursor === undefined ? undefined : JSON.stringify(page.cursor);
  const body = (content: string | Buffer): SimResponse => ({
    status: 200,
    headers: JSON_HEADERS,
    body: content,
  });
  switch (kind) {
    case 'invalid-json': {
      const full = pageBody(page.raws, cursorJson, limit);
      const first = page.raws[0];
      const cut = first
        ? ITEMS_PREFIX.length + Math.max(1, Math.floor(first.length / 2))
        : Math.floor(full.length / 2);
      return body(full.subarray(0, cut));
    }
    case 'html':
      return { status: 200, headers: { 'content-type': 'text/html; charset=utf-8' }, body: HTML_ERROR_PAGE };
    case 'missing-items':
      return body(`{"limit":${limit}}`);
    case 'items-not-array':
      return body(
        `{"items":{}${cursorJson === undefined ? '' : `,"cursor":${cursorJson}`},"limit":${limit}}`,
      );
    case 'item-wrong-types': {
      const [first, ...rest] = page.raws;
      const firstEvent = page.items[0];
      const broken: Record<string, unknown> = first
        ? (JSON.parse(first.toString('utf8')) as Record<string, unknown>)
        : {};
      broken.id = 1000 + page.items.length;
      broken.eventTimeStamp = firstEvent ? firstEvent.eventTimeMs : Date.now();
      return body(pageBody([Buffer.from(JSON.stringify(broken)), ...rest], cursorJson, limit));
    }
    case 'cursor-wrong-type':
      return body(pageBody(page.raws, '42', limit));
  }
}
