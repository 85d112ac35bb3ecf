import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { closeServer, listenLoopback } from './loopback.ts';
import { SinkFaultControl, sleep } from './sink-faults.ts';

/**
 * An Elasticsearch/OpenSearch `_bulk` endpoint that enforces the real rules, for tests (facts:
 * shared/research/sinks.md §2):
 * - NDJSON that must end with a newline; gzip bodies; `create` fails with 409
 *   version_conflict_engine_exception when the _id exists in the target; items answer in order;
 * - data streams come from index templates with `data_stream: {}`: they take only `create`, need
 *   `@timestamp`, and live in a backing index `.ds-<name>-000001`; `require_data_stream=true` refuses a
 *   target that is no data stream (index_not_found_exception); without it a plain index is auto-created;
 * - mappings: template-typed fields (date_nanos must parse, objects with enabled:false are skipped),
 *   otherwise dynamic: the first JSON type of a field fixes it, a conflicting one is a 400
 *   document_parsing_exception;
 * - flavors: OpenSearch rejects the ES-only query parameters with "unrecognized parameter";
 * - auth (ApiKey/Basic/Bearer) → 401 security_exception; http.max_content_length → 413;
 * - faults: down (503), item-level 429 es_rejected_execution_exception for chosen _ids, and `faults`
 *   (queued or at a rate): a status (429 es_rejected_execution_exception, 5xx from ES or a proxy in
 *   front), a slow answer, a request processed whose answer is lost (connection dropped), a partial
 *   bulk (every other item refused with an item-level 429).
 */
export interface StoredDoc {
  readonly index: string;
  readonly id: string;
  /** The source line as sent. */
  readonly source: string;
}

export interface EsServerOptions {
  readonly flavor?: 'elasticsearch' | 'opensearch';
  readonly authorization?: string;
  readonly maxContentLength?: number;
}

interface Template {
  patterns: RegExp[];
  dataStream: boolean;
  properties: Record<string, unknown>;
  priority: number;
}

const ES_PARAMS = new Set([
  'filter_path',
  'include_source_on_error',
  'require_data_stream',
  'require_alias',
  'pipeline',
  'refresh',
  'routing',
  'timeout',
  'wait_for_active_shards',
  '_source',
]);
const OS_PARAMS = new Set([
  'filter_path',
  'require_alias',
  'pipeline',
  'refresh',
  'routing',
  'timeout',
  'wait_for_active_shards',
  '_source',
]);

export class EsTestServer {
  readonly #o: EsServerOptions;
  readonly #server: Server;
  readonly #docs = new Map<string, Map<string, StoredDoc>>();
  readonly #templates = new Map<string, Template>();
  readonly #dataStreams = new Set<string>();
  readonly #fieldTypes = new Map<string, Map<string, string>>();
  readonly #rejectIds = new Map<string, number>();
  #down = false;
  url = '';
  readonly requests: Array<{ path: string; status: number; encoding: string; query: string }> = [];
  /** Injected faults (torture tests); none unless set. */
  readonly faults: SinkFaultControl;

  constructor(options: EsServerOptions = {}, seed: number | string = 1) {
    this.#o = options;
    this.faults = new SinkFaultControl(`${seed}|es`);
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((error: unknown) => res.writeHead(500).end(String(error)));
    });
  }

  async start(port = 0): Promise<string> {
    this.url = await listenLoopback(this.#server, port);
    return this.url;
  }

  async stop(): Promise<void> {
    await closeServer(this.#server);
  }

  setDown(down: boolean): void {
    this.#down = down;
  }

  /** The next `times` bulk items for this _id are refused with 429 (write thread pool full). */
  rejectItem(id: string, times = 1): void {
    this.#rejectIds.set(id, times);
  }

  /** Every stored document, across indices and backing indices. */
  docs(): StoredDoc[] {
    return [...this.#docs.values()].flatMap((m) => [...m.values()]);
  }

  /** Documents created one at a time (PUT index/_create/id), not through _bulk; deleted ones leave. */
  readonly singleDocs = new Map<string, string>();
  singleCreates = 0;

  templates(): string[] {
    return [...this.#templates.keys()];
  }

  dataStreams(): string[] {
    return [...this.#dataStreams];
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    let body = await readAll(req);
    let fault: ReturnType<SinkFaultControl['next']>;
    const json = (status: number, value: unknown): void => {
      if (fault?.kind === 'lost-answer') {
        this.requests.push({ path: url.pathname, status: 0, encoding: '', query: url.search });
        req.socket.destroy();
        return;
      }
      this.requests.push({
        path: url.pathname,
        status,
        encoding: String(req.headers['content-encoding'] ?? ''),
        query: url.search,
      });
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
    };
    const error = (status: number, type: string, reason: string): void =>
      json(status, { error: { root_cause: [{ type, reason }], type, reason }, status });
    if (this.#o.authorization !== undefined && req.headers.authorization !== this.#o.authorization) {
      error(401, 'security_exception', 'missing authentication credentials for REST request [/_bulk]');
      return;
    }
    if (this.#down) {
      error(
        503,
        'cluster_block_exception',
        'blocked by: [SERVICE_UNAVAILABLE/1/state not recovered / initialized];',
      );
      return;
    }
    fault = req.method === 'GET' ? undefined : this.faults.next();
    if (fault?.kind === 'status') {
      this.#faultAnswer(res, fault.status, fault.retryAfterSec);
      this.requests.push({ path: url.pathname, status: fault.status, encoding: '', query: url.search });
      return;
    }
    if (fault?.kind === 'slow') await sleep(fault.delayMs);
    if (body.length > (this.#o.maxContentLength ?? 100 * 1024 * 1024)) {
      json(413, { error: 'Request Entity Too Large' });
      return;
    }
    if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
    if (req.method === 'PUT' && url.pathname.startsWith('/_index_template/')) {
      const t = JSON.parse(body.toString('utf8')) as {
        index_patterns: string[];
        data_stream?: object;
        priority?: number;
        template?: { mappings?: { properties?: Record<string, unknown> } };
      };
      this.#templates.set(decodeURIComponent(url.pathname.slice('/_index_template/'.length)), {
        patterns: t.index_patterns.map(
          (p) => new RegExp(`^${p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replaceAll('*', '.*')}$`),
        ),
        dataStream: t.data_stream !== undefined,
        properties: t.template?.mappings?.properties ?? {},
        priority: t.priority ?? 0,
      });
      json(200, { acknowledged: true });
      return;
    }
    if (req.method === 'GET' && url.pathname === '/_cluster/health') {
      json(200, { cluster_name: 'test', status: 'green', number_of_nodes: 1 });
      return;
    }
    if (req.method === 'GET' && url.pathname.startsWith('/_index_template/')) {
      const name = decodeURIComponent(url.pathname.slice('/_index_template/'.length));
      if (this.#templates.has(name)) json(200, { index_templates: [{ name }] });
      else error(404, 'resource_not_found_exception', `index template matching [${name}] not found`);
      return;
    }
    // Single-document create and delete (doctor's test document), kept apart from the bulk documents.
    const single = /^\/([^/_][^/]*)\/(_create|_doc)\/([^/]+)$/.exec(url.pathname);
    if (
      single &&
      ((req.method === 'PUT' && single[2] === '_create') || (req.method === 'DELETE' && single[2] === '_doc'))
    ) {
      const key = `${single[1]}/${decodeURIComponent(single[3] as string)}`;
      if (req.method === 'DELETE') {
        const existed = this.singleDocs.delete(key);
        json(existed ? 200 : 404, { result: existed ? 'deleted' : 'not_found' });
      } else if (this.singleDocs.has(key)) {
        error(
          409,
          'version_conflict_engine_exception',
          `[${single[3]}]: version conflict, document already exists`,
        );
      } else {
        this.singleDocs.set(key, body.toString('utf8'));
        this.singleCreates++;
        json(201, { _index: single[1], _id: single[3], result: 'created' });
      }
      return;
    }
    if (req.method === 'GET' && url.pathname === '/') {
      json(
        200,
        this.#o.flavor === 'opensearch'
          ? {
              version: { distribution: 'opensearch', number: '2.19.0' },
              tagline: 'The OpenSearch Project: https://opensearch.org/',
            }
          : { version: { number: '9.1.0' }, tagline: 'You Know, for Search' },
      );
      return;
    }
    const bulk = /^\/(?:([^/_][^/]*)\/)?_bulk$/.exec(url.pathname);
    if (req.method !== 'POST' || !bulk) {
      error(404, 'resource_not_found_exception', `no handler for ${req.method} ${url.pathname}`);
      return;
    }
    const known = this.#o.flavor === 'opensearch' ? OS_PARAMS : ES_PARAMS;
    const unknown = [...url.searchParams.keys()].filter((k) => !known.has(k));
    if (unknown.length > 0) {
      error(
        400,
        'illegal_argument_exception',
        `request [/_bulk] contains unrecognized parameter${unknown.length > 1 ? 's' : ''}: ${unknown.map((u) => `[${u}]`).join(', ')}`,
      );
      return;
    }
    const text = body.toString('utf8');
    if (!text.endsWith('\n')) {
      error(400, 'illegal_argument_exception', 'The bulk request must be terminated by a newline [\\n]');
      return;
    }
    const lines = text.slice(0, -1).split('\n');
    const items: unknown[] = [];
    let errors = false;
    for (let i = 0; i < lines.length; i += 2) {
      const action = JSON.parse(lines[i] as string) as Record<string, { _index?: string; _id?: string }>;
      const [op, meta] = Object.entries(action)[0] as [string, { _index?: string; _id?: string }];
      const id = meta._id ?? `auto-${i}`;
      const item =
        fault?.kind === 'partial' && (i / 2) % 2 === 1
          ? {
              _index: meta._index ?? bulk[1] ?? '',
              _id: id,
              status: 429,
              error: {
                type: 'es_rejected_execution_exception',
                reason: 'rejected execution of coordinating operation [shard_detail=[audit][0][P]]',
              },
            }
          : this.#write(op, meta._index ?? bulk[1] ?? '', id, lines[i + 1] as string, url.searchParams);
      if (item.status >= 300) errors = true;
      items.push({ [op]: item });
    }
    json(200, { took: 1, errors, items });
  }

  /** A whole-request fault: ES's own 429/500/503 JSON, or a proxy's plain 502/504 page. */
  #faultAnswer(res: ServerResponse, status: number, retryAfterSec: number | undefined): void {
    const headers: Record<string, string> =
      retryAfterSec === undefined ? {} : { 'retry-after': String(retryAfterSec) };
    if (status === 502 || status === 504) {
      res
        .writeHead(status, { 'content-type': 'text/html', ...headers })
        .end(
          `<html><body><h1>${status} ${status === 502 ? 'Bad Gateway' : 'Gateway Time-out'}</h1></body></html>`,
        );
      return;
    }
    const [type, reason] =
      status === 429
        ? [
            'es_rejected_execution_exception',
            'rejected execution of coordinating operation [queue capacity = 200]',
          ]
        : status === 503
          ? ['no_shard_available_action_exception', 'No shard available for [bulk]']
          : ['exception', 'internal server error'];
    res
      .writeHead(status, { 'content-type': 'application/json', ...headers })
      .end(JSON.stringify({ error: { root_cause: [{ type, reason }], type, reason }, status }));
  }

  #write(
    op: string,
    target: string,
    id: string,
    source: string,
    params: URLSearchParams,
  ): { status: number } & Record<string, unknown> {
    const fail = (status: number, type: string, reason: string) => ({
      _index: target,
      _id: id,
      status,
      error: { type, reason },
    });
    const rejects = this.#rejectIds.get(id) ?? 0;
    if (rejects > 0) {
      this.#rejectIds.set(id, rejects - 1);
      return fail(429, 'es_rejected_execution_exception', 'rejected execution of coordinating operation');
    }
    const template = [...this.#templates.values()]
      .filter((t) => t.patterns.some((p) => p.test(target)))
      .sort((a, b) => b.priority - a.priority)[0];
    const isDataStream =
      this.#dataStreams.has(target) || (template?.dataStream === true && !this.#docs.has(target));
    if (params.get('require_data_stream') === 'true' && !isDataStream) {
      return fail(
        404,
        'index_not_found_exception',
        `no such index [${target}] and [require_data_stream] request flag is [true] and [${target}] is not a data stream`,
      );
    }
    let doc: Record<string, unknown>;
    try {
      doc = JSON.parse(source) as Record<string, unknown>;
    } catch {
      return fail(400, 'document_parsing_exception', '[1:1] failed to parse');
    }
    let index = target;
    if (isDataStream) {
      if (op !== 'create')
        return fail(
          400,
          'illegal_argument_exception',
          `only write ops with an op_type of create are allowed in data streams`,
        );
      if (typeof doc['@timestamp'] !== 'string' && typeof doc['@timestamp'] !== 'number') {
        return fail(400, 'document_parsing_exception', 'data stream timestamp field [@timestamp] is missing');
      }
      this.#dataStreams.add(target);
      index = `.ds-${target}-000001`;
    }
    const mappingError = this.#checkMapping(index, template?.properties ?? {}, doc, '');
    if (mappingError) return fail(400, 'document_parsing_exception', mappingError);
    let docs = this.#docs.get(index);
    if (!docs) {
      docs = new Map();
      this.#docs.set(index, docs);
    }
    if (docs.has(id) && op === 'create') {
      return fail(
        409,
        'version_conflict_engine_exception',
        `[${id}]: version conflict, document already exists (current version [1])`,
      );
    }
    docs.set(id, { index, id, source });
    return { _index: index, _id: id, _version: 1, result: 'created', status: 201 };
  }

  #checkMapping(
    index: string,
    properties: Record<string, unknown>,
    doc: Record<string, unknown>,
    prefix: string,
  ): string | undefined {
    let types = this.#fieldTypes.get(index);
    if (!types) {
      types = new Map();
      this.#fieldTypes.set(index, types);
    }
    for (const [key, value] of Object.entries(doc)) {
      const path = prefix ? `${prefix}.${key}` : key;
      const mapped = properties[key] as
        | { type?: string; enabled?: boolean; properties?: Record<string, unknown> }
        | undefined;
      if (mapped?.enabled === false) continue;
      if (mapped?.type === 'date_nanos' || mapped?.type === 'date') {
        if (typeof value !== 'string' || Number.isNaN(Date.parse(value))) {
          return `[1:2] failed to parse field [${path}] of type [${mapped.type}] in document`;
        }
        continue;
      }
      const kind = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
      if (kind === 'object') {
        const was = types.get(path);
        if (was !== undefined && was !== 'object') {
          return `[1:2] failed to parse field [${path}] of type [${was}] in document: object given`;
        }
        types.set(path, 'object');
        const nested = this.#checkMapping(
          index,
          mapped?.properties ?? {},
          value as Record<string, unknown>,
          path,
        );
        if (nested) return nested;
        continue;
      }
      if (kind === 'null' || kind === 'array') continue;
      const known = types.get(path);
      if (known === undefined) types.set(path, kind);
      else if (known !== kind)
        return `[1:2] failed to parse field [${path}] of type [${known}] in document: ${kind} given`;
    }
    return undefined;
  }
}

async function readAll(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
