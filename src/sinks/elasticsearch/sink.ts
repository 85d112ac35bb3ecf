import { randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { Logger } from 'pino';
import { type CheckStep, checkEndpoint, fail, ok, warn } from '../../http/check.ts';
import { parseRetryAfter } from '../../http/retry.ts';
import type { OutboxEvent } from '../../pipeline/envelope.ts';
import { VERSION } from '../../version.ts';
import { batchPolicy } from '../shared/config.ts';
import { type EnvelopeFields, envelopeFields } from '../shared/envelope-fields.ts';
import { excerpt, SinkHttp, SinkTransportError } from '../shared/http.ts';
import type { BatchPolicy, Sink, SinkDeps, SinkInstance, Verdict } from '../sink.ts';
import { actionLine, bulkResponseSchema, classifyItem, documentId, documentSource } from './bulk.ts';
import type { ElasticsearchSinkSettings } from './config.ts';
import { indexTemplate } from './template.ts';

const MAX_RETRY_AFTER_MS = 10 * 60_000;
/** Requests one `send` may spend on splitting a batch the cluster found too large (413). */
const SPLIT_BUDGET = 32;

interface Doc {
  readonly index: number;
  readonly event: OutboxEvent;
  readonly action: string;
  readonly source: string;
}

/**
 * Ships events to Elasticsearch or OpenSearch with `_bulk`: each event is a `create` with `_id` = the
 * event id, so a re-send after a lost answer comes back 409 and counts as a duplicate, never as a
 * second document. Items are classified one by one: 409 duplicate; 429/5xx and cluster-side problems
 * retried alone; other 4xx (mapping, parsing) dead-lettered with the error type and reason. Raw HTTP,
 * not the official client: it refuses OpenSearch (product check) and its bulk helper drops 5xx/409
 * items. Query parameters a server does not know (`include_source_on_error` before ES 8.18,
 * `require_data_stream` on OpenSearch) are dropped the first time the server says so.
 */
/** Where `doctor` creates (and deletes) its test document, apart from any audit index. */
const CHECK_INDEX = 'auditlog-shipper-doctor';

export class ElasticsearchSink implements Sink {
  readonly name: string;
  readonly batching: Partial<BatchPolicy>;
  readonly #s: ElasticsearchSinkSettings;
  readonly #log: Logger;
  readonly #http: SinkHttp;
  /** Optional parameters still sent; ones the server called unrecognized are removed. */
  readonly #optional = new Map<string, string>();
  #templateInstalled = false;

  constructor(instance: SinkInstance<ElasticsearchSinkSettings>, deps: SinkDeps) {
    this.name = instance.name;
    this.#s = instance.settings;
    this.#log = deps.log;
    this.batching = batchPolicy(this.#s);
    this.#http = new SinkHttp({
      sink: this.name,
      baseUrl: this.#s.url,
      timeoutMs: this.#s.timeout,
      tls: this.#s.tls,
      auth: this.#s.auth,
      userAgent: `auditlog-shipper/${VERSION}`,
      onRequest: deps.onRequest,
    });
    // Audit events must not be echoed back into error messages (and from there into logs).
    this.#optional.set('include_source_on_error', 'false');
    if (this.#s.mode === 'dataStream') this.#optional.set('require_data_stream', 'true');
  }

  async start(): Promise<void> {
    if (this.#s.tls.insecureSkipVerify) {
      this.#log.warn(`sink "${this.name}": TLS certificate verification is OFF (tls.insecureSkipVerify)`);
    }
    // The template is installed before the first bulk, not here: a cluster that is down at start must
    // not stop the shipper (the other sinks keep flowing).
  }

  async send(batch: readonly OutboxEvent[], signal: AbortSignal): Promise<readonly Verdict[]> {
    if (this.#s.manageTemplate && !this.#templateInstalled) await this.#installTemplate(signal);
    const verdicts: Verdict[] = new Array(batch.length);
    const docs: Doc[] = [];
    batch.forEach((event, index) => {
      const fields = envelopeFields(event.line);
      if (typeof fields === 'string') {
        verdicts[index] = {
          kind: 'rejected',
          reason: `elasticsearch sink "${this.name}": event ${event.id}: ${fields}`,
        };
        return;
      }
      docs.push({
        index,
        event,
        action: actionLine(this.#target(fields), documentId(event.id)),
        source: documentSource(event.line, fields.time),
      });
    });
    if (docs.length > 0) await this.#bulk(docs, verdicts, { requests: SPLIT_BUDGET }, signal);
    return verdicts;
  }

  async close(): Promise<void> {
    await this.#http.close();
  }

  #target(fields: EnvelopeFields): string {
    const day = fields.time.slice(0, 10); // RFC 3339 UTC: YYYY-MM-DD…
    return this.#s.target.replace(/\{([a-z.]+)\}/g, (_, name: string) => {
      if (name === 'provider') return fields.provider.toLowerCase();
      if (name === 'scope.kind') return fields.scope.kind.toLowerCase();
      if (name === 'date') return day.replaceAll('-', '.');
      return day.slice(0, 7).replace('-', '.');
    });
  }

  async #bulk(
    docs: Doc[],
    verdicts: Verdict[],
    budget: { requests: number },
    signal: AbortSignal,
  ): Promise<void> {
    const first = docs[0]?.event.id;
    const retryAll = (reason: string, retryAfterMs?: number): void => {
      for (const d of docs)
        verdicts[d.index] =
          retryAfterMs !== undefined ? { kind: 'retry', reason, retryAfterMs } : { kind: 'retry', reason };
    };
    if (budget.requests-- <= 0) {
      retryAll(`elasticsearch sink "${this.name}": batch still being split; continuing on the next attempt`);
      return;
    }
    const ndjson = Buffer.from(`${docs.map((d) => `${d.action}\n${d.source}\n`).join('')}`, 'utf8');
    const body = this.#s.compression === 'gzip' ? gzipSync(ndjson) : ndjson;
    let response: Awaited<ReturnType<SinkHttp['send']>>;
    try {
      response = await this.#http.send({
        method: 'POST',
        path: `_bulk?${this.#query()}`,
        operation: 'bulk',
        headers: {
          'content-type': 'application/x-ndjson',
          ...(this.#s.compression === 'gzip' ? { 'content-encoding': 'gzip' } : {}),
        },
        body,
        signal,
      });
    } catch (error) {
      if (signal.aborted || !(error instanceof SinkTransportError)) throw error;
      retryAll(`${error.message} (first event ${first})`);
      return;
    }
    const { status } = response;
    const what = `elasticsearch sink "${this.name}": HTTP ${status}`;
    if (status === 200) {
      this.#items(docs, verdicts, response.body);
      return;
    }
    if (status === 413) {
      if (docs.length === 1) {
        verdicts[(docs[0] as Doc).index] = {
          kind: 'rejected',
          reason: `${what}: event ${first} alone is larger than the cluster accepts (http.max_content_length)`,
        };
        return;
      }
      const middle = Math.ceil(docs.length / 2);
      await this.#bulk(docs.slice(0, middle), verdicts, budget, signal);
      await this.#bulk(docs.slice(middle), verdicts, budget, signal);
      return;
    }
    if (status === 400 && this.#dropUnrecognized(response.body)) {
      await this.#bulk(docs, verdicts, budget, signal);
      return;
    }
    if ((status === 429 || status >= 500) && status !== 501) {
      const retryAfterMs = parseRetryAfter(response.headers['retry-after'], Date.now(), MAX_RETRY_AFTER_MS);
      retryAll(`${what}: ${excerpt(response.body, 200)} (first event ${first})`, retryAfterMs);
      return;
    }
    // 401/403 (credentials, privileges), 404, a request-level 400: nothing the events can be blamed
    // for. They wait, loudly, instead of being dead-lettered en masse.
    const reason = `${what}: ${excerpt(response.body, 300)} (first event ${first}; the events wait until this is fixed)`;
    this.#log.error({ sink: this.name, status, firstEventId: first }, reason);
    retryAll(reason);
  }

  #items(docs: Doc[], verdicts: Verdict[], text: string): void {
    let parsed: ReturnType<typeof bulkResponseSchema.parse>;
    try {
      parsed = bulkResponseSchema.parse(JSON.parse(text));
    } catch {
      throw new Error(
        `elasticsearch sink "${this.name}": bulk answer is not a bulk response: ${excerpt(text, 200)}`,
      );
    }
    const items = parsed.items ?? [];
    if (items.length !== docs.length) {
      throw new Error(
        `elasticsearch sink "${this.name}": bulk answer has ${items.length} items for ${docs.length} documents`,
      );
    }
    let degraded = 0;
    docs.forEach((doc, i) => {
      const item = Object.values(items[i] as Record<string, unknown>)[0] as Parameters<
        typeof classifyItem
      >[0];
      if (item.failure_store === 'used') degraded++;
      verdicts[doc.index] = classifyItem(item, this.name, doc.event.id);
    });
    if (degraded > 0) {
      this.#log.warn(
        { sink: this.name, events: degraded },
        `sink "${this.name}": ${degraded} events went to the data stream's failure store (mapping or pipeline failure)`,
      );
    }
  }

  /** True when the answer names optional parameters this server does not know; they are not sent again. */
  #dropUnrecognized(body: string): boolean {
    const match = /unrecognized parameters?: (.*?)(?:"|$|\]\s*->)/.exec(body);
    if (!match) return false;
    let dropped = false;
    for (const [, name] of (match[1] as string).matchAll(/\[([a-z_]+)\]/g)) {
      if (this.#optional.delete(name as string)) {
        dropped = true;
        this.#log.info(
          { sink: this.name, parameter: name },
          `sink "${this.name}": server does not know ${name}; not sending it`,
        );
      }
    }
    return dropped;
  }

  #query(): string {
    const params = new URLSearchParams({
      filter_path: 'errors,items.*.status,items.*.error,items.*.failure_store',
    });
    for (const [key, value] of this.#optional) params.set(key, value);
    if (this.#s.pipeline) params.set('pipeline', this.#s.pipeline);
    return params.toString();
  }

  /**
   * For `doctor`: cluster health (auth), the index template (installed as the first send would when
   * `manageTemplate` is on, else looked up), then one document created in the test index
   * `auditlog-shipper-doctor` and deleted again.
   */
  async check(signal: AbortSignal): Promise<CheckStep[]> {
    const steps = await checkEndpoint(this.#s.url, this.#s.tls);
    if (steps.some((s) => s.status === 'fail')) return steps;
    const call = async (
      method: 'GET' | 'PUT' | 'DELETE',
      path: string,
      operation: string,
      body?: unknown,
    ) => {
      try {
        return await this.#http.send({
          method,
          path,
          operation,
          ...(body !== undefined
            ? { headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify(body)) }
            : {}),
          signal,
        });
      } catch (error) {
        return { status: 0, body: (error as Error).message, headers: {} };
      }
    };
    const answer = (r: { status: number; body: string }) =>
      r.status === 0 ? r.body : `HTTP ${r.status} ${excerpt(r.body, 160)}`;
    const health = await call('GET', '_cluster/health', 'health');
    if (health.status === 401) {
      steps.push(fail('auth', `GET _cluster/health: ${answer(health)} (check auth)`));
      return steps;
    }
    if (health.status === 200) {
      const status = (JSON.parse(health.body) as { status?: string }).status ?? 'unknown';
      steps.push(ok('auth', 'credentials accepted'));
      steps.push((status === 'red' ? fail : ok)('health', `cluster status ${status}`));
    } else {
      // Least-privilege API keys may lack the monitor privilege; the write below is what matters.
      steps.push(warn('health', `GET _cluster/health: ${answer(health)}`));
    }
    const name = encodeURIComponent(this.#s.templateName);
    if (this.#s.manageTemplate) {
      const put = await call(
        'PUT',
        `_index_template/${name}`,
        'put_template',
        indexTemplate(this.#s.target, this.#s.mode === 'dataStream'),
      );
      steps.push(
        put.status === 200
          ? ok('template', `index template ${this.#s.templateName} installed`)
          : fail(
              'template',
              `PUT _index_template/${this.#s.templateName}: ${answer(put)} (needs manage_index_templates)`,
            ),
      );
    } else {
      const get = await call('GET', `_index_template/${name}`, 'get_template');
      steps.push(
        get.status === 200
          ? ok('template', `index template ${this.#s.templateName} exists`)
          : warn(
              'template',
              `GET _index_template/${this.#s.templateName}: ${answer(get)} (manageTemplate is off: install one yourself)`,
            ),
      );
    }
    const id = `doctor-${randomUUID()}`;
    const created = await call('PUT', `${CHECK_INDEX}/_create/${id}`, 'create', {
      '@timestamp': new Date().toISOString(),
      message: 'auditlog-shipper doctor test document',
    });
    if (created.status === 201 || created.status === 200) {
      await call('DELETE', `${CHECK_INDEX}/_doc/${id}`, 'delete');
      steps.push(ok('write', `document created (and deleted) in ${CHECK_INDEX}`));
    } else {
      steps.push(
        fail(created.status === 403 ? 'permission' : 'write', `create in ${CHECK_INDEX}: ${answer(created)}`),
      );
    }
    return steps;
  }

  async #installTemplate(signal: AbortSignal): Promise<void> {
    const name = encodeURIComponent(this.#s.templateName);
    const response = await this.#http.send({
      method: 'PUT',
      path: `_index_template/${name}`,
      operation: 'put_template',
      headers: { 'content-type': 'application/json' },
      body: Buffer.from(JSON.stringify(indexTemplate(this.#s.target, this.#s.mode === 'dataStream'))),
      signal,
    });
    if (response.status !== 200) {
      throw new Error(
        `elasticsearch sink "${this.name}": installing index template ${this.#s.templateName} failed with HTTP ${response.status}: ${excerpt(response.body, 300)}`,
      );
    }
    this.#templateInstalled = true;
    this.#log.info(
      { sink: this.name, template: this.#s.templateName },
      `sink "${this.name}": index template ${this.#s.templateName} installed`,
    );
  }
}
