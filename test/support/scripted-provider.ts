/**
 * A provider API reduced to what a hostile case needs: a loopback server that answers every request
 * with the bytes a test scripts (invalid UTF-8, deep nesting, ...), and a Poller wired to a real
 * STACKIT or cloudscale source and a real Redis, so a case runs through the same parse, map and commit
 * path as production.
 */
import { createServer, type IncomingMessage } from 'node:http';
import { withEnv } from '../../src/config/fields.ts';
import type { ScopeSpec } from '../../src/config/types.ts';
import { Metrics } from '../../src/observability/metrics.ts';
import { Committer } from '../../src/pipeline/commit.ts';
import { RedisKeys } from '../../src/pipeline/keys.ts';
import { LeaseManager } from '../../src/pipeline/lease.ts';
import { OutboxMonitor } from '../../src/pipeline/outbox.ts';
import { Poller } from '../../src/pipeline/poller.ts';
import { ScopeStateStore } from '../../src/pipeline/scope-state.ts';
import { cloudscaleProviderSchema, cloudscaleScopeSchema } from '../../src/sources/cloudscale/config.ts';
import { CloudscaleSource } from '../../src/sources/cloudscale/source.ts';
import type { Source } from '../../src/sources/source.ts';
import { stackitProviderSchema, stackitScopeSchema } from '../../src/sources/stackit/config.ts';
import { StackitSource } from '../../src/sources/stackit/source.ts';
import { memoryLogger } from './logger.ts';
import { closeServer, listenLoopback } from './loopback.ts';
import type { TestRedis } from './redis.ts';

export interface ScriptedServer {
  readonly url: string;
  /** What the next requests get; `respond` sees the request and the base URL. */
  respond: (req: IncomingMessage, url: string) => Buffer | string;
  readonly requests: string[];
  close(): Promise<void>;
}

export async function startScriptedServer(): Promise<ScriptedServer> {
  const requests: string[] = [];
  const state = {
    respond: (_req: IncomingMessage, _url: string): Buffer | string => '{}',
  };
  let url = '';
  const server = createServer((req, res) => {
    requests.push(req.url ?? '');
    const body = state.respond(req, url);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(body);
  });
  url = await listenLoopback(server);
  return {
    url,
    requests,
    get respond() {
      return state.respond;
    },
    set respond(fn) {
      state.respond = fn;
    },
    close: () => closeServer(server),
  };
}

export type ProviderKind = 'stackit' | 'cloudscale';

const TOKEN = 'scripted-token';

/** A Poller over one scope of `kind` whose API is `server`, committing to sink `archive` in `redis`. */
export function scriptedPoller(kind: ProviderKind, server: ScriptedServer, redis: TestRedis, now = Date.now) {
  const keys = new RedisKeys('{test}');
  const env = { SCRIPTED_TOKEN: TOKEN };
  const { log, lines } = memoryLogger();
  const metrics = new Metrics();
  const deps = { log, instanceId: 't', onRequest: () => {} };
  const retry = { attempts: 1, initialBackoff: '10ms', maxBackoff: '10ms' };
  let source: Source;
  let scope: ScopeSpec;
  if (kind === 'stackit') {
    const settings = withEnv(env, () =>
      stackitProviderSchema.parse({
        auditLogUrl: server.url,
        auth: { token: '${SCRIPTED_TOKEN}' },
        lookback: '15m',
        overlap: '1m',
        settleLag: '1s',
        retry,
      }),
    );
    source = new StackitSource({ name: 'scripted', type: 'stackit', settings }, deps);
    const project = '0b1f3c2e-1234-4abc-8def-0123456789ab';
    scope = {
      key: `stackit:project:${project}`,
      provider: 'scripted',
      providerType: 'stackit',
      ref: { kind: 'project', id: project },
      intervalMs: 1_000,
      sinks: ['archive'],
      settings: stackitScopeSchema.parse({ project }),
    };
  } else {
    const settings = withEnv(env, () =>
      cloudscaleProviderSchema.parse({ apiUrl: server.url, lookback: '15m', overlap: '1m', retry }),
    );
    source = new CloudscaleSource({ name: 'scripted', type: 'cloudscale', settings }, deps);
    scope = {
      key: 'cloudscale:project:alpha',
      provider: 'scripted',
      providerType: 'cloudscale',
      ref: { kind: 'project', id: 'alpha' },
      intervalMs: 1_000,
      sinks: ['archive'],
      settings: withEnv(env, () =>
        cloudscaleScopeSchema.parse({ project: 'alpha', auth: { token: '${SCRIPTED_TOKEN}' } }),
      ),
    };
  }
  const poller = new Poller({
    sources: new Map([['scripted', source]]),
    leases: new LeaseManager(redis.client, keys),
    committer: new Committer(redis.client, keys),
    outbox: new OutboxMonitor(redis.client, keys),
    state: new ScopeStateStore(redis.client, keys),
    metrics,
    log,
    leaseTtlMs: 10_000,
    outboxMaxLength: 100_000,
    now,
  });
  const poll = () => poller.poll(scope, new AbortController().signal);
  /** The outbox's serialized lines, parsed. */
  const delivered = async (): Promise<Array<Record<string, unknown>>> => {
    const entries = await redis.client.xrange(keys.outbox('archive'), '-', '+');
    return entries.map(([, f]) => JSON.parse(f[f.indexOf('line') + 1] as string) as Record<string, unknown>);
  };
  return { poll, lines, metrics, scope, source, keys, delivered };
}

/** One page of `kind` holding `items` (each the exact bytes of one entry). */
export function pageOf(kind: ProviderKind, items: readonly (Buffer | string)[], baseUrl: string): Buffer {
  const parts: Buffer[] = [];
  parts.push(Buffer.from(kind === 'stackit' ? '{"items":[' : '{"results":['));
  items.forEach((item, i) => {
    if (i > 0) parts.push(Buffer.from(','));
    parts.push(Buffer.isBuffer(item) ? item : Buffer.from(item, 'utf8'));
  });
  parts.push(
    Buffer.from(
      kind === 'stackit'
        ? '],"cursor":null}'
        : `],"next":null,"poll_more":${JSON.stringify(`${baseUrl}/v1/project-logs?cursor=end`)}}`,
    ),
  );
  return Buffer.concat(parts);
}

/** An entry of `kind` at `timeMs` whose `message` field holds `message` (bytes spliced in as given). */
export function entryOf(kind: ProviderKind, timeMs: number, message: Buffer | string, id = 'ev-1'): Buffer {
  const time = new Date(timeMs).toISOString();
  const head =
    kind === 'stackit'
      ? `{"id":"${id}","eventTimeStamp":"${time}","eventName":"delete","details":"`
      : `{"timestamp":"${time}","action":"delete","message":"`;
  return Buffer.concat([
    Buffer.from(head),
    Buffer.isBuffer(message) ? message : Buffer.from(message),
    Buffer.from('"}'),
  ]);
}
