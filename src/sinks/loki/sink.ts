import { gzipSync } from 'node:zlib';
import type { Logger } from 'pino';
import { compress as snappy } from 'snappyjs';
import { type CheckStep, checkEndpoint, fail, ok, warn } from '../../http/check.ts';
import { parseRetryAfter } from '../../http/retry.ts';
import type { OutboxEvent } from '../../pipeline/envelope.ts';
import { VERSION } from '../../version.ts';
import { batchPolicy } from '../shared/config.ts';
import { envelopeFields, epochNanos, fieldAt } from '../shared/envelope-fields.ts';
import { excerpt, SinkHttp, SinkTransportError } from '../shared/http.ts';
import type { BatchPolicy, Sink, SinkDeps, SinkInstance, Verdict } from '../sink.ts';
import type { LokiSinkSettings } from './config.ts';
import { canonicalLabels, LabelRenderer } from './labels.ts';
import { encodeJson, encodeProtobuf, type PushEntry, type PushStream } from './push-request.ts';
import { isConfigurationError, parseRejections } from './rejections.ts';

const PUSH_PATH = 'loki/api/v1/push';
/** Requests one `send` may spend narrowing down a 400 or a 413 before the rest waits for the next attempt. */
const REQUEST_BUDGET = 64;
const MAX_RETRY_AFTER_MS = 10 * 60_000;

interface Prepared {
  /** Position in the batch. */
  readonly index: number;
  readonly event: OutboxEvent;
  readonly labels: string;
  readonly stream: string;
  readonly entry: PushEntry;
  readonly lineBytes: number;
}

/**
 * Ships events to Loki's push API. Each event is one entry: the outbox line (the event JSON) at the
 * event's own time in nanoseconds, in a stream labelled from a few bounded envelope fields, with the
 * event id and other per-event fields as structured metadata. Loki drops an entry identical to one it
 * has (same stream, timestamp, line and metadata), so a re-send after a lost answer stores nothing
 * twice. Loki's answers are classified per entry: a 400 names the entries it refused (too old, too far
 * behind the stream, line too long); those are dead-lettered with Loki's words and the rest is sent again
 * (harmless, see above); a 400 that names nothing is narrowed down by halving the batch; 413 halves it
 * too; 429/5xx/timeouts retry; 260 (ingestion blocked) is a failure, never a success.
 */
export class LokiSink implements Sink {
  readonly name: string;
  readonly batching: Partial<BatchPolicy>;
  readonly #s: LokiSinkSettings;
  readonly #log: Logger;
  readonly #http: SinkHttp;
  readonly #labels: LabelRenderer;
  readonly #path: string;

  constructor(instance: SinkInstance<LokiSinkSettings>, deps: SinkDeps) {
    this.name = instance.name;
    this.#s = instance.settings;
    this.#log = deps.log;
    this.batching = batchPolicy(this.#s);
    const url = new URL(this.#s.url);
    const pushInUrl = url.pathname.replace(/\/+$/, '').endsWith(`/${PUSH_PATH}`);
    this.#path = pushInUrl ? url.pathname : PUSH_PATH;
    this.#http = new SinkHttp({
      sink: this.name,
      baseUrl: pushInUrl ? url.origin : this.#s.url,
      timeoutMs: this.#s.timeout,
      tls: this.#s.tls,
      auth: this.#s.auth,
      headers: this.#s.tenant ? { 'x-scope-orgid': this.#s.tenant } : {},
      userAgent: `auditlog-shipper/${VERSION}`,
      onRequest: deps.onRequest,
    });
    this.#labels = new LabelRenderer(this.#s.labels);
  }

  async start(): Promise<void> {
    if (this.#s.tls.insecureSkipVerify) {
      this.#log.warn(`sink "${this.name}": TLS certificate verification is OFF (tls.insecureSkipVerify)`);
    }
  }

  /** One stream per lane: its entries go out in order, one push at a time. */
  partitionKey(event: OutboxEvent): string {
    const fields = envelopeFields(event.line);
    return typeof fields === 'string' ? event.scopeKey : this.#labels.render(fields);
  }

  async send(batch: readonly OutboxEvent[], signal: AbortSignal): Promise<readonly Verdict[]> {
    const verdicts: Verdict[] = new Array(batch.length);
    const prepared: Prepared[] = [];
    const nowMs = Date.now();
    batch.forEach((event, index) => {
      const item = this.#prepare(event, index, nowMs);
      if (typeof item === 'string') verdicts[index] = { kind: 'rejected', reason: item };
      else prepared.push(item);
    });
    // Oldest first, so every half of a split is a contiguous stretch of time and a stream's entries
    // reach Loki in time order.
    prepared.sort((a, b) => compareNanos(a.entry.tsNanos, b.entry.tsNanos) || a.index - b.index);
    const budget = { requests: REQUEST_BUDGET };
    if (prepared.length > 0) await this.#push(prepared, verdicts, budget, signal);
    return verdicts;
  }

  async close(): Promise<void> {
    await this.#http.close();
  }

  /**
   * For `doctor`: readiness, then one line pushed to a stream of its own
   * (`{service_name="auditlog-shipper-doctor"}`), so no audit stream ever holds a test entry.
   */
  async check(signal: AbortSignal): Promise<CheckStep[]> {
    const url = new URL(this.#s.url);
    const steps = await checkEndpoint(url.origin, this.#s.tls);
    if (steps.some((s) => s.status === 'fail')) return steps;
    const ready = await this.#http
      .send({ method: 'GET', path: 'ready', operation: 'ready', signal })
      .catch((error: Error) => ({ status: 0, body: error.message }));
    steps.push(
      ready.status === 200
        ? ok('ready', 'GET /ready answered 200')
        : // A gateway in front of Loki may not route /ready: the push below decides.
          warn(
            'ready',
            `GET /ready: ${ready.status === 0 ? ready.body : `HTTP ${ready.status} ${excerpt(ready.body, 120)}`}`,
          ),
    );
    const line = JSON.stringify({
      message: 'auditlog-shipper doctor test entry',
      at: new Date().toISOString(),
    });
    const body = JSON.stringify({
      streams: [
        {
          stream: { service_name: 'auditlog-shipper-doctor' },
          values: [[`${BigInt(Date.now()) * 1_000_000n}`, line]],
        },
      ],
    });
    try {
      const response = await this.#http.send({
        method: 'POST',
        path: this.#path,
        operation: 'push',
        headers: { 'content-type': 'application/json' },
        body: Buffer.from(body),
        signal,
      });
      if (response.status === 204 || response.status === 200) {
        steps.push(
          ok('auth', 'push accepted'),
          ok('write', 'one entry pushed to {service_name="auditlog-shipper-doctor"}'),
        );
      } else if (response.status === 401 || response.status === 403) {
        steps.push(
          fail(
            'auth',
            `push: HTTP ${response.status} ${excerpt(response.body, 160)} (check auth and tenant)`,
          ),
        );
      } else {
        steps.push(fail('write', `push: HTTP ${response.status} ${excerpt(response.body, 160)}`));
      }
    } catch (error) {
      steps.push(fail('write', `push: ${(error as Error).message}`));
    }
    return steps;
  }

  /** Turns an outbox event into a Loki entry, or says why Loki would refuse it (checked here, first). */
  #prepare(event: OutboxEvent, index: number, nowMs: number): Prepared | string {
    const fields = envelopeFields(event.line);
    if (typeof fields === 'string') return `loki sink "${this.name}": event ${event.id}: ${fields}`;
    const tsNanos = epochNanos(fields.time);
    if (tsNanos === undefined)
      return `loki sink "${this.name}": event ${event.id}: time "${fields.time}" is not RFC 3339 UTC`;
    const lineBytes = Buffer.byteLength(event.line, 'utf8');
    const { maxLineSize, rejectOlderThan, maxFuture } = this.#s.limits;
    if (maxLineSize > 0 && lineBytes > maxLineSize) {
      return `line_too_long: event ${event.id} is ${lineBytes} bytes, over the ${maxLineSize}-byte max_line_size configured for Loki (limits.maxLineSize)`;
    }
    const timeMs = Number(BigInt(tsNanos) / 1_000_000n);
    if (rejectOlderThan > 0 && timeMs < nowMs - rejectOlderThan) {
      return `greater_than_max_sample_age: event ${event.id} at ${fields.time} is older than Loki accepts (limits.rejectOlderThan ${rejectOlderThan / 3_600_000} h)`;
    }
    if (maxFuture > 0 && timeMs > nowMs + maxFuture) {
      return `too_far_in_future: event ${event.id} at ${fields.time} is more than ${maxFuture / 60_000} min ahead of now`;
    }
    const labels = this.#labels.render(fields);
    const metadata: Array<[string, string]> = [];
    for (const [name, path] of Object.entries(this.#s.structuredMetadata)) {
      const value = fieldAt(fields, path);
      if (value !== undefined) metadata.push([name, value]);
    }
    return {
      index,
      event,
      labels,
      stream: canonicalLabels(labels) ?? labels,
      entry: { tsNanos, line: event.line, metadata },
      lineBytes,
    };
  }

  /** Sends `items` and settles each; narrows down 400s and 413s by attribution and halving. */
  async #push(
    items: Prepared[],
    verdicts: Verdict[],
    budget: { requests: number },
    signal: AbortSignal,
  ): Promise<void> {
    const retryAll = (reason: string, retryAfterMs?: number): void => {
      for (const item of items) {
        verdicts[item.index] =
          retryAfterMs !== undefined ? { kind: 'retry', reason, retryAfterMs } : { kind: 'retry', reason };
      }
    };
    if (budget.requests-- <= 0) {
      retryAll(
        `loki sink "${this.name}": still narrowing down rejected entries; continuing on the next attempt`,
      );
      return;
    }
    const first = items[0]?.event.id;
    let status: number;
    let body: string;
    let headers: Readonly<Record<string, string>>;
    try {
      const response = await this.#http.send({
        method: 'POST',
        path: this.#path,
        operation: 'push',
        headers: this.#contentHeaders(),
        body: this.#encode(items),
        signal,
      });
      ({ status, body, headers } = response);
    } catch (error) {
      if (signal.aborted || !(error instanceof SinkTransportError)) throw error;
      retryAll(`${error.message} (first event ${first})`);
      return;
    }
    const what = `loki sink "${this.name}": HTTP ${status}`;
    if (status === 204 || status === 200) {
      for (const item of items) verdicts[item.index] = { kind: 'delivered' };
      return;
    }
    if (status === 413) {
      if (items.length === 1) {
        verdicts[(items[0] as Prepared).index] = {
          kind: 'rejected',
          reason: `request_body_too_large: Loki refused event ${first} alone as too large (HTTP 413): ${excerpt(body)}`,
        };
        return;
      }
      await this.#halves(items, verdicts, budget, signal);
      return;
    }
    if (status === 400) {
      if (isConfigurationError(body)) {
        const reason = `${what}: ${excerpt(body)} (a setup problem, not the events'; they wait until it is fixed; first event ${first})`;
        this.#log.error({ sink: this.name, status, firstEventId: first }, reason);
        retryAll(reason);
        return;
      }
      const refused = this.#attribute(items, body);
      if (refused.size > 0) {
        for (const [item, reason] of refused)
          verdicts[item.index] = { kind: 'rejected', reason: `loki: ${reason}` };
        // Loki stored the others; sending them again is harmless (identical entries are dropped) and
        // tells us for sure, including about refusals beyond the ones Loki listed.
        const rest = items.filter((item) => !refused.has(item));
        if (rest.length > 0) await this.#push(rest, verdicts, budget, signal);
        return;
      }
      if (items.length === 1) {
        verdicts[(items[0] as Prepared).index] = {
          kind: 'rejected',
          reason: `loki: HTTP 400 for event ${first}: ${excerpt(body)}`,
        };
        return;
      }
      await this.#halves(items, verdicts, budget, signal);
      return;
    }
    if (status === 429 || status >= 500) {
      const retryAfterMs = parseRetryAfter(headers['retry-after'], Date.now(), MAX_RETRY_AFTER_MS);
      retryAll(`${what}: ${excerpt(body, 160)} (first event ${first})`, retryAfterMs);
      return;
    }
    if (status === 401 || status === 403) {
      const reason = `${what}: not authorized (check auth and tenant): ${excerpt(body, 160)} (first event ${first})`;
      this.#log.error({ sink: this.name, status }, reason);
      retryAll(reason);
      return;
    }
    // 260 is Loki's default "ingestion blocked" code: a 2xx that stored nothing.
    const reason =
      status === 260
        ? `${what}: ingestion is blocked for this tenant by Loki's operator; nothing was stored (first event ${first})`
        : `${what}: unexpected answer: ${excerpt(body, 160)} (first event ${first})`;
    this.#log.error({ sink: this.name, status }, reason);
    retryAll(reason);
  }

  async #halves(
    items: Prepared[],
    verdicts: Verdict[],
    budget: { requests: number },
    signal: AbortSignal,
  ): Promise<void> {
    const middle = Math.ceil(items.length / 2);
    await this.#push(items.slice(0, middle), verdicts, budget, signal);
    await this.#push(items.slice(middle), verdicts, budget, signal);
  }

  /** Matches Loki's refusals to our entries by stream and timestamp (or line length). */
  #attribute(items: readonly Prepared[], body: string): Map<Prepared, string> {
    const refused = new Map<Prepared, string>();
    for (const rejection of parseRejections(body)) {
      for (const item of items) {
        if (item.stream !== rejection.stream || refused.has(item)) continue;
        if (rejection.tsNanos !== undefined && item.entry.tsNanos === rejection.tsNanos)
          refused.set(item, rejection.reason);
        else if (rejection.lineLength !== undefined && item.lineBytes === rejection.lineLength)
          refused.set(item, rejection.reason);
      }
    }
    return refused;
  }

  #contentHeaders(): Record<string, string> {
    if (this.#s.format === 'protobuf') return { 'content-type': 'application/x-protobuf' };
    return this.#s.compression === 'gzip'
      ? { 'content-type': 'application/json', 'content-encoding': 'gzip' }
      : { 'content-type': 'application/json' };
  }

  #encode(items: readonly Prepared[]): Buffer {
    const streams = new Map<string, PushEntry[]>();
    for (const item of items) {
      const list = streams.get(item.labels);
      if (list) list.push(item.entry);
      else streams.set(item.labels, [item.entry]);
    }
    const push: PushStream[] = [...streams].map(([labels, entries]) => ({ labels, entries }));
    if (this.#s.format === 'protobuf') return snappy(encodeProtobuf(push));
    const json = encodeJson(push);
    return this.#s.compression === 'gzip' ? gzipSync(json) : json;
  }
}

function compareNanos(a: string, b: string): number {
  return a.length !== b.length ? a.length - b.length : a < b ? -1 : a > b ? 1 : 0;
}
