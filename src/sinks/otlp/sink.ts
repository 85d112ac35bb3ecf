import { gzipSync } from 'node:zlib';
import type { Logger } from 'pino';
import { parseRetryAfter } from '../../http/retry.ts';
import { OtlpDecodeError } from '../../otlp/errors.ts';
import { decodeJsonResponse, encodeJsonRequest } from '../../otlp/json.ts';
import type { LogRecord, LogsResponse } from '../../otlp/model.ts';
import { decodeProtobufResponse, encodeProtobufRequest } from '../../otlp/protobuf.ts';
import type { OutboxEvent } from '../../pipeline/envelope.ts';
import { VERSION } from '../../version.ts';
import { batchPolicy } from '../shared/config.ts';
import { excerpt, SinkHttp, type SinkHttpResponse, SinkTransportError } from '../shared/http.ts';
import type { BatchPolicy, Sink, SinkDeps, SinkInstance, Verdict } from '../sink.ts';
import type { OtlpSinkSettings } from './config.ts';
import { eventRecord, exportRequest } from './records.ts';

/** Requests one `send` may spend halving a refused batch before the rest waits for the next attempt. */
const REQUEST_BUDGET = 32;
const MAX_RETRY_AFTER_MS = 10 * 60_000;
/** The OTLP specification's retryable HTTP statuses. */
const RETRYABLE = new Set([429, 502, 503, 504]);

interface Item {
  readonly index: number;
  readonly event: OutboxEvent;
  readonly record: LogRecord;
}

/**
 * Exports events to an OTLP/HTTP logs endpoint, one log record per event (records.ts). Answers follow the
 * OTLP specification: 2xx is success, except that a partial success naming rejected records makes those
 * records' fate unknowable per event, so a batch with rejections is dead-lettered whole with the store's
 * message (never assumed delivered; a redrive may duplicate the ones it kept). 429/502/503/504 retry
 * after Retry-After; 400 and 413 are narrowed down by halving to the events the store refuses alone;
 * other statuses (401, 403, 404…) are setup problems the events wait out.
 */
export class OtlpSink implements Sink {
  readonly name: string;
  readonly batching: Partial<BatchPolicy>;
  readonly #s: OtlpSinkSettings;
  readonly #log: Logger;
  readonly #http: SinkHttp;
  readonly #path: string;

  constructor(instance: SinkInstance<OtlpSinkSettings>, deps: SinkDeps) {
    this.name = instance.name;
    this.#s = instance.settings;
    this.#log = deps.log;
    this.batching = batchPolicy(this.#s);
    const url = new URL(this.#s.url);
    this.#path = `${url.pathname}${url.search}`;
    this.#http = new SinkHttp({
      sink: this.name,
      baseUrl: url.origin,
      timeoutMs: this.#s.timeout,
      tls: this.#s.tls,
      auth: this.#s.auth,
      headers: this.#s.headers,
      userAgent: `auditlog-shipper/${VERSION}`,
      onRequest: deps.onRequest,
    });
  }

  async start(): Promise<void> {
    if (this.#s.tls.insecureSkipVerify) {
      this.#log.warn(`sink "${this.name}": TLS certificate verification is OFF (tls.insecureSkipVerify)`);
    }
  }

  async send(batch: readonly OutboxEvent[], signal: AbortSignal): Promise<readonly Verdict[]> {
    const verdicts: Verdict[] = new Array(batch.length);
    const items: Item[] = [];
    batch.forEach((event, index) => {
      const record = eventRecord(event);
      if (typeof record === 'string')
        verdicts[index] = { kind: 'rejected', reason: `otlp sink "${this.name}": ${record}` };
      else items.push({ index, event, record });
    });
    if (items.length > 0) await this.#export(items, verdicts, { requests: REQUEST_BUDGET }, signal);
    return verdicts;
  }

  async close(): Promise<void> {
    await this.#http.close();
  }

  /** The request body for these records, as configured. */
  encode(records: readonly LogRecord[]): Buffer {
    const request = exportRequest(records, this.#s.resourceAttributes);
    const body =
      this.#s.encoding === 'protobuf'
        ? Buffer.from(encodeProtobufRequest(request))
        : Buffer.from(encodeJsonRequest(request), 'utf8');
    return this.#s.compression === 'gzip' ? gzipSync(body) : body;
  }

  async #export(
    items: Item[],
    verdicts: Verdict[],
    budget: { requests: number },
    signal: AbortSignal,
  ): Promise<void> {
    const settleAll = (verdict: Verdict): void => {
      for (const item of items) verdicts[item.index] = verdict;
    };
    const first = items[0]?.event.id;
    if (budget.requests-- <= 0) {
      settleAll({
        kind: 'retry',
        reason: `otlp sink "${this.name}": still narrowing down refused events; continuing on the next attempt`,
      });
      return;
    }
    let response: SinkHttpResponse;
    try {
      response = await this.#http.send({
        method: 'POST',
        path: this.#path,
        operation: 'export',
        headers: {
          'content-type': this.#s.encoding === 'protobuf' ? 'application/x-protobuf' : 'application/json',
          ...(this.#s.compression === 'gzip' ? { 'content-encoding': 'gzip' } : {}),
        },
        body: this.encode(items.map((i) => i.record)),
        signal,
      });
    } catch (error) {
      if (signal.aborted || !(error instanceof SinkTransportError)) throw error;
      settleAll({ kind: 'retry', reason: `${error.message} (first event ${first})` });
      return;
    }
    const { status, headers, body, bytes } = response;
    const what = `otlp sink "${this.name}": HTTP ${status}`;
    if (status >= 200 && status < 300) {
      const partial = this.#partialSuccess(headers['content-type'], bytes);
      const rejected = partial?.partialSuccess ? Number(partial.partialSuccess.rejectedLogRecords) : 0;
      if (rejected <= 0) {
        settleAll({ kind: 'delivered' });
        return;
      }
      const message = partial?.partialSuccess?.errorMessage ?? '';
      const reason =
        rejected >= items.length || items.length === 1
          ? `${what}: the store rejected ${items.length === 1 ? 'this event' : `all ${items.length} events of the request`}: ${excerpt(message)}`
          : `${what}: the store rejected ${rejected} of the ${items.length} events of this request without saying which (${excerpt(message)}); all are dead-lettered so none is lost, and a redrive may duplicate the ${items.length - rejected} it kept`;
      this.#log.warn({ sink: this.name, rejected, batch: items.length, firstEventId: first }, reason);
      settleAll({ kind: 'rejected', reason });
      return;
    }
    if (RETRYABLE.has(status) || status >= 500) {
      const retryAfterMs = parseRetryAfter(headers['retry-after'], Date.now(), MAX_RETRY_AFTER_MS);
      const reason = `${what}: ${excerpt(statusMessage(body))} (first event ${first})`;
      settleAll(
        retryAfterMs !== undefined ? { kind: 'retry', reason, retryAfterMs } : { kind: 'retry', reason },
      );
      return;
    }
    if (status === 400 || status === 413) {
      if (items.length === 1) {
        settleAll({
          kind: 'rejected',
          reason: `${what}: the store refused event ${first}: ${excerpt(statusMessage(body))}`,
        });
        return;
      }
      // A refused request stored nothing, so its halves can be sent again without duplicates.
      const middle = Math.ceil(items.length / 2);
      await this.#export(items.slice(0, middle), verdicts, budget, signal);
      await this.#export(items.slice(middle), verdicts, budget, signal);
      return;
    }
    const reason = `${what}: ${excerpt(statusMessage(body))} (a setup problem, not the events'; they wait until it is fixed; first event ${first})`;
    this.#log.error({ sink: this.name, status, firstEventId: first }, reason);
    settleAll({ kind: 'retry', reason });
  }

  #partialSuccess(contentType: string | undefined, body: Buffer): LogsResponse | undefined {
    if (body.length === 0) return undefined;
    try {
      if ((contentType ?? '').includes('json')) return decodeJsonResponse(body.toString('utf8'));
      return decodeProtobufResponse(body);
    } catch (error) {
      if (error instanceof OtlpDecodeError) return undefined;
      throw error;
    }
  }
}

/** The message of a google.rpc.Status in JSON, else the body itself (bounded by the caller). */
function statusMessage(body: string): string {
  try {
    const parsed = JSON.parse(body) as { message?: unknown };
    if (typeof parsed.message === 'string') return parsed.message;
  } catch {
    // not JSON: a protobuf Status or plain text
  }
  return body.replace(/[^\x20-\x7e]+/g, ' ');
}
