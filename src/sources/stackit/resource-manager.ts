import type { Logger } from 'pino';
import { z } from 'zod';
import { ProviderError } from '../errors.ts';
import type { StackitApi } from './api.ts';

/** The Resource Manager's largest page (values above are clamped by the API). */
export const RM_PAGE_LIMIT = 100;
/** Guard against an API that never returns a short page. */
const MAX_PAGES = 10_000;

const parentSchema = z.object({
  id: z.string().min(1),
  containerId: z.string().optional(),
  type: z.string().optional(),
});

const labelsSchema = z.record(z.string(), z.string()).nullish();

const folderSchema = z.object({
  folderId: z.string().min(1),
  containerId: z.string().optional(),
  name: z.string().optional(),
  parent: parentSchema.optional(),
  labels: labelsSchema,
});

const projectSchema = z.object({
  projectId: z.string().min(1),
  containerId: z.string().optional(),
  name: z.string().optional(),
  parent: parentSchema.optional(),
  lifecycleState: z.string().optional(),
  labels: labelsSchema,
});

const listSchema = z.object({ items: z.array(z.unknown()) });

export interface Container {
  readonly kind: 'folder' | 'project';
  /** The UUID, lower-case. */
  readonly id: string;
  readonly name: string | undefined;
  /** UUID of the parent as the API reports it (lower-case), if it does. */
  readonly parentId: string | undefined;
  readonly labels: Readonly<Record<string, string>>;
  readonly lifecycleState: string | undefined;
}

/**
 * The two Resource Manager listings discovery needs: folders and projects whose parent is a container
 * (`GET /v2/folders|projects?containerParentId=…`), paged by offset/limit. The responses carry no total
 * and no next link, so paging stops at the first page shorter than the limit (as the STACKIT CLI does).
 */
export class ResourceManagerClient {
  readonly #api: StackitApi;

  constructor(api: StackitApi) {
    this.#api = api;
  }

  async children(
    kind: 'folder' | 'project',
    parentId: string,
    signal: AbortSignal,
    log: Logger,
  ): Promise<Container[]> {
    const collection = kind === 'folder' ? 'folders' : 'projects';
    const out: Container[] = [];
    for (let page = 0; ; page++) {
      if (page >= MAX_PAGES) {
        throw new ProviderError({
          provider: 'stackit',
          reason: 'pagination_loop',
          retryable: false,
          message: `resource manager: ${collection} of ${parentId} still paging after ${MAX_PAGES} pages; discovery stopped`,
        });
      }
      const offset = page * RM_PAGE_LIMIT;
      const url = new URL(`v2/${collection}`, this.#api.base);
      url.searchParams.set('containerParentId', parentId);
      url.searchParams.set('offset', String(offset));
      url.searchParams.set('limit', String(RM_PAGE_LIMIT));
      const where = `resource manager: ${collection} under ${parentId} (offset ${offset})`;
      const body = await this.#api.get(url, where, 'live', signal, log);
      const items = parseItems(body, where);
      for (const [index, item] of items.entries())
        out.push(toContainer(kind, item, `${where}, items[${index}]`));
      if (items.length < RM_PAGE_LIMIT) return out;
    }
  }

  close(): Promise<void> {
    return this.#api.close();
  }
}

function invalid(where: string, detail: string): ProviderError {
  return new ProviderError({
    provider: 'stackit',
    reason: 'invalid_response',
    retryable: false,
    message: `${where}: ${detail}; discovery keeps the scopes it knew`,
  });
}

function parseItems(body: string, where: string): unknown[] {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw invalid(where, 'the response is not JSON');
  }
  const parsed = listSchema.safeParse(json);
  if (!parsed.success) throw invalid(where, 'the response has no items array');
  return parsed.data.items;
}

function toContainer(kind: 'folder' | 'project', item: unknown, where: string): Container {
  if (kind === 'folder') {
    const parsed = folderSchema.safeParse(item);
    if (!parsed.success) throw invalid(where, `not a folder (${describeIssues(parsed.error)})`);
    const folder = parsed.data;
    return {
      kind,
      id: folder.folderId.toLowerCase(),
      name: folder.name,
      parentId: folder.parent?.id.toLowerCase(),
      labels: folder.labels ?? {},
      lifecycleState: undefined,
    };
  }
  const parsed = projectSchema.safeParse(item);
  if (!parsed.success) throw invalid(where, `not a project (${describeIssues(parsed.error)})`);
  const project = parsed.data;
  return {
    kind,
    id: project.projectId.toLowerCase(),
    name: project.name,
    parentId: project.parent?.id.toLowerCase(),
    labels: project.labels ?? {},
    lifecycleState: project.lifecycleState,
  };
}

function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map(
      (issue) =>
        `${issue.path.join('.') || 'item'}: ${issue.code === 'invalid_type' ? 'missing or wrong type' : issue.message}`,
    )
    .join('; ');
}
