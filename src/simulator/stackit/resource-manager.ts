/**
 * STACKIT Resource Manager API v2, simulated (research/providers.md §3): an organization tree of nested
 * folders and projects (with labels and lifecycle states) that tests change at runtime, listed by
 * `GET /v2/folders` and `GET /v2/projects` with `containerParentId` (a UUID or a containerId) and
 * offset/limit paging (default 50, clamped to 100, no total, no next link). Only direct children are
 * listed. Errors are the spec's `ErrorResponse {timeStamp, path, status, error, message}`. The same
 * bearer tokens as the Audit Log API are accepted. Every container added here can also get an audit
 * log, so discovery tests see the events of what they discover.
 */
import { randomUUID } from 'node:crypto';
import type { SimClock } from '../clock.ts';
import type { FaultInjector } from '../faults.ts';
import { UUID_PATTERN } from '../random.ts';
import { formatRfc3339Ms } from '../rfc3339.ts';
import type { Route, RouteContext, SimModule, SimReply, SimResponse } from '../server.ts';
import type { StackitAuditLog } from './audit-log.ts';
import type { StackitIdentity } from './identity.ts';

export const RM_DEFAULT_LIMIT = 50;
export const RM_MAX_LIMIT = 100;

export const LIFECYCLE_STATES = ['CREATING', 'ACTIVE', 'DELETING', 'INACTIVE'] as const;
export type LifecycleState = (typeof LIFECYCLE_STATES)[number];

export type ContainerKind = 'organization' | 'folder' | 'project';

export interface SimContainer {
  readonly kind: ContainerKind;
  readonly id: string;
  /** `organization-…`, `folder-…`, `project-…`: the human-readable container id. */
  readonly containerId: string;
  name: string;
  parentId: string | undefined;
  labels: Record<string, string>;
  lifecycleState: LifecycleState | undefined;
  readonly creationTime: string;
  updateTime: string;
  /** Insertion order: listings are stable across pages. */
  readonly seq: number;
}

export interface AddContainer {
  /** Default: a fresh UUID. */
  readonly id?: string | undefined;
  readonly name?: string | undefined;
  readonly labels?: Record<string, string> | undefined;
  /** Events per minute of its audit log; undefined: no audit log is served for it. */
  readonly eventsPerMinute?: number | undefined;
}

export interface ResourceManagerDeps {
  readonly clock: SimClock;
  readonly identity: StackitIdentity;
  readonly auditLog: StackitAuditLog;
  /** Faults of this API only. */
  readonly faults: FaultInjector;
}

const JSON_HEADERS = { 'content-type': 'application/json' } as const;
const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

export class StackitResourceManager implements SimModule {
  readonly name = 'stackit.resource-manager';
  readonly routes: readonly Route[];
  readonly #deps: ResourceManagerDeps;
  readonly #containers = new Map<string, SimContainer>();
  #seq = 0;

  constructor(deps: ResourceManagerDeps) {
    this.#deps = deps;
    this.routes = [
      {
        name: this.name,
        methods: ['GET'],
        path: /^\/v2\/(folders|projects)$/,
        handle: (ctx) => this.#list(ctx),
      },
    ];
  }

  addOrganization(options: AddContainer = {}): SimContainer {
    return this.#add('organization', undefined, options);
  }

  addFolder(parentId: string, options: AddContainer = {}): SimContainer {
    const parent = this.#need(parentId);
    if (parent.kind === 'project') throw new Error('a folder cannot live under a project');
    return this.#add('folder', parent.id, options);
  }

  addProject(
    parentId: string,
    options: AddContainer & { readonly lifecycleState?: LifecycleState | undefined } = {},
  ): SimContainer {
    const parent = this.#need(parentId);
    if (parent.kind === 'project') throw new Error('a project cannot live under a project');
    const project = this.#add('project', parent.id, options);
    project.lifecycleState = options.lifecycleState ?? 'ACTIVE';
    return project;
  }

  /**
   * Deletes a container (it must have no children, as in STACKIT). Its audit log answers 404 from now
   * on unless `keepAuditLog`.
   */
  remove(id: string, options: { keepAuditLog?: boolean } = {}): void {
    const container = this.#need(id);
    for (const other of this.#containers.values()) {
      if (other.parentId === container.id) throw new Error(`${id} still has children`);
    }
    this.#containers.delete(container.id);
    if (!options.keepAuditLog) this.#deps.auditLog.removeScope({ kind: container.kind, id: container.id });
  }

  /** Moves a folder or project under another parent. */
  move(id: string, parentId: string): void {
    const container = this.#need(id);
    const parent = this.#need(parentId);
    if (parent.kind === 'project') throw new Error('nothing lives under a project');
    container.parentId = parent.id;
    this.#touch(container);
  }

  setLabels(id: string, labels: Record<string, string>): void {
    const container = this.#need(id);
    container.labels = { ...labels };
    this.#touch(container);
  }

  setLifecycleState(id: string, state: LifecycleState): void {
    const container = this.#need(id);
    if (container.kind !== 'project') throw new Error('only projects have a lifecycle state');
    container.lifecycleState = state;
    this.#touch(container);
  }

  get(id: string): SimContainer | undefined {
    return this.#containers.get(id.toLowerCase());
  }

  containers(): SimContainer[] {
    return [...this.#containers.values()].sort((a, b) => a.seq - b.seq);
  }

  #add(kind: ContainerKind, parentId: string | undefined, options: AddContainer): SimContainer {
    const id = (options.id ?? randomUUID()).toLowerCase();
    if (!UUID_PATTERN.test(id)) throw new Error(`container id must be a UUID, got ${id}`);
    if (this.#containers.has(id)) throw new Error(`container ${id} exists`);
    const now = formatRfc3339Ms(this.#deps.clock.simNow());
    const container: SimContainer = {
      kind,
      id,
      containerId: `${kind}-${id.slice(0, 8)}`,
      name: options.name ?? `${kind} ${id.slice(0, 8)}`,
      parentId,
      labels: { ...(options.labels ?? {}) },
      lifecycleState: undefined,
      creationTime: now,
      updateTime: now,
      seq: ++this.#seq,
    };
    this.#containers.set(id, container);
    if (options.eventsPerMinute !== undefined && !this.#deps.auditLog.traffic.scope(kind, id)) {
      this.#deps.auditLog.addScope({ kind, id, eventsPerMinute: options.eventsPerMinute });
    }
    return container;
  }

  #need(id: string): SimContainer {
    const container = this.#containers.get(id.toLowerCase());
    if (!container) throw new Error(`no container ${id}`);
    return container;
  }

  #touch(container: SimContainer): void {
    container.updateTime = formatRfc3339Ms(this.#deps.clock.simNow());
  }

  /** Resolves `containerParentId`: a UUID or a containerId. */
  #parent(ref: string): SimContainer | undefined {
    const byId = this.#containers.get(ref.toLowerCase());
    if (byId) return byId;
    for (const container of this.#containers.values()) if (container.containerId === ref) return container;
    return undefined;
  }

  // ---------------------------------------------------------------- the API

  #list(ctx: RouteContext): SimReply {
    const { url } = ctx;
    const simNow = this.#deps.clock.simNow();
    const at = { path: url.pathname, nowMs: simNow };
    ctx.observe({
      route: this.name,
      scope: null,
      scopeKey: null,
      startRange: null,
      endRange: null,
      limit: numberOrNull(url.searchParams.get('limit')),
      cursorPresent: false,
      simNowMs: simNow,
    });
    if (this.#deps.identity.authorize(ctx.req.headers.authorization) === undefined) {
      return errorReply(401, 'The request could not be authorized', at);
    }
    const fault = this.#deps.faults.next();
    if (fault?.type === 'reset') return { reset: true };
    if (fault?.type === 'status') return errorReply(fault.status, STATUS_TEXT[fault.status] ?? 'Error', at);

    const q = url.searchParams;
    const parentRef = q.get('containerParentId');
    if (parentRef === null || parentRef === '') {
      if (q.has('containerIds') || q.has('member')) {
        return errorReply(400, 'only containerParentId is simulated', at);
      }
      return errorReply(400, 'Either containerParentId OR containerIds OR member must be passed', at);
    }
    const offset = intParam(q.get('offset'), 0);
    const limit = intParam(q.get('limit'), RM_DEFAULT_LIMIT);
    if (offset === undefined || offset < 0) return errorReply(400, 'offset must be an integer >= 0', at);
    if (limit === undefined || limit < 1) return errorReply(400, 'limit must be an integer >= 1', at);
    const clamped = Math.min(limit, RM_MAX_LIMIT);
    const parent = this.#parent(parentRef);
    if (!parent) return errorReply(404, `container ${parentRef} not found`, at);

    const kind = url.pathname.endsWith('/folders') ? 'folder' : 'project';
    const children = this.containers().filter((c) => c.kind === kind && c.parentId === parent.id);
    const items = children.slice(offset, offset + clamped).map((c) => this.#render(c));
    const reply: SimResponse = {
      status: 200,
      headers: { ...JSON_HEADERS, date: new Date(simNow).toUTCString() },
      body: JSON.stringify({ items, offset, limit: clamped }),
    };
    return fault?.type === 'slow' ? { ...reply, delayMs: fault.delayMs } : reply;
  }

  #render(c: SimContainer): Record<string, unknown> {
    const parent = c.parentId === undefined ? undefined : this.#containers.get(c.parentId);
    const common = {
      containerId: c.containerId,
      name: c.name,
      ...(parent
        ? {
            parent: {
              id: parent.id,
              containerId: parent.containerId,
              type: parent.kind === 'organization' ? 'ORGANIZATION' : 'FOLDER',
            },
          }
        : {}),
      labels: c.labels,
      creationTime: c.creationTime,
      updateTime: c.updateTime,
    };
    return c.kind === 'folder'
      ? { folderId: c.id, ...common }
      : { projectId: c.id, ...common, lifecycleState: c.lifecycleState ?? 'ACTIVE' };
  }
}

function intParam(text: string | null, fallback: number): number | undefined {
  if (text === null || text === '') return fallback;
  return /^-?\d+$/.test(text.trim()) ? Number(text) : undefined;
}

function numberOrNull(text: string | null): number | null {
  if (text === null) return null;
  const n = Number(text);
  return Number.isFinite(n) ? n : null;
}

function errorReply(status: number, message: string, at: { path: string; nowMs: number }): SimResponse {
  return {
    status,
    headers: JSON_HEADERS,
    body: JSON.stringify({
      timeStamp: formatRfc3339Ms(at.nowMs),
      path: at.path,
      status,
      error: STATUS_TEXT[status] ?? 'Error',
      message,
    }),
  };
}
