import type { Logger } from 'pino';
import type { ScopeRef } from '../../pipeline/envelope.ts';
import { ProviderError } from '../errors.ts';
import type { DiscoveryFilter, DiscoverySettings } from './config.ts';
import type { Container, ResourceManagerClient } from './resource-manager.ts';

export interface DiscoveredContainer extends Container {
  /** Ids from just below the root down to this container's parent. */
  readonly ancestors: readonly string[];
}

/**
 * Walks the Resource Manager breadth-first from a root (organization or folder): folders and projects
 * under each container, deduplicated by UUID. Whether `containerParentId` lists only direct children is
 * unconfirmed (research/providers.md §3), so each container's ancestry is rebuilt from its own `parent`
 * afterwards, and the filters are applied only then. Any failure fails the whole walk.
 */
export async function walkHierarchy(
  rm: ResourceManagerClient,
  root: ScopeRef,
  settings: DiscoverySettings,
  signal: AbortSignal,
  log: Logger,
): Promise<DiscoveredContainer[]> {
  const rootId = root.id.toLowerCase();
  const found = new Map<string, Container>();
  /** Parent as seen in the walk, for containers the API names no parent for. */
  const listedUnder = new Map<string, string>();
  const queue: string[] = [rootId];
  for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
    for (const kind of ['folder', 'project'] as const) {
      for (const child of await rm.children(kind, next, signal, log)) {
        if (child.id === rootId || found.has(child.id)) continue;
        found.set(child.id, child);
        listedUnder.set(child.id, next);
        if (found.size > settings.maxScopes) {
          throw new ProviderError({
            provider: 'stackit',
            reason: 'invalid_response',
            retryable: false,
            message:
              `discovery under ${root.kind} ${rootId} found more than ${settings.maxScopes} folders and projects (discover.maxScopes); ` +
              'it stopped and keeps polling the scopes it knew. Raise maxScopes or narrow the walk with include/exclude.',
          });
        }
        if (kind === 'folder') queue.push(child.id);
      }
    }
  }

  const chainOf = (id: string): string[] => {
    const chain: string[] = [];
    const visited = new Set<string>();
    let parent = found.get(id)?.parentId ?? listedUnder.get(id);
    while (parent !== undefined && parent !== rootId && found.has(parent) && !visited.has(parent)) {
      visited.add(parent);
      chain.unshift(parent);
      const container = found.get(parent) as Container;
      parent = container.parentId ?? listedUnder.get(parent);
    }
    return chain;
  };

  const out: DiscoveredContainer[] = [];
  for (const container of found.values()) {
    const ancestors = chainOf(container.id);
    const subtree = [...ancestors.map((id) => found.get(id) as Container), container];
    if (settings.exclude.some((filter) => matches(filter, subtree))) continue;
    if (settings.include.length > 0 && !settings.include.some((filter) => matches(filter, subtree))) continue;
    out.push({ ...container, ancestors });
  }
  return out;
}

/** A filter matches a container when the container or an ancestor has the id, and one has the labels. */
export function matches(filter: DiscoveryFilter, subtree: readonly Container[]): boolean {
  if (filter.id !== undefined && !subtree.some((c) => c.id === filter.id)) return false;
  const wanted = filter.labels;
  if (wanted !== undefined && !subtree.some((c) => labelsMatch(c.labels, wanted))) return false;
  return true;
}

function labelsMatch(
  labels: Readonly<Record<string, string>>,
  wanted: Readonly<Record<string, string>>,
): boolean {
  return Object.entries(wanted).every(([key, value]) =>
    value === '*' ? Object.hasOwn(labels, key) : labels[key] === value,
  );
}
