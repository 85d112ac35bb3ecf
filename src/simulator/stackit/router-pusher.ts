/**
 * A STACKIT Telemetry Router imitation on the sending side: pushes audit log records to an OpenTelemetry
 * destination (the shipper's receiver) the way an OTLP exporter in a router would. What STACKIT's router
 * really does is unconfirmed (transport, encoding, batch size, retry policy: research update §2.2), so
 * every variant a receiver must survive is here:
 *
 * - OTLP/HTTP with protobuf or JSON bodies (`/v1/logs` appended to the destination URI unless present),
 *   gzip or not, and OTLP/gRPC (`LogsService/Export`, gzip-compressed messages optional);
 * - batches of `batchSize` records, sent one at a time;
 * - retries of 429, 5xx, gRPC UNAVAILABLE/RESOURCE_EXHAUSTED and network errors with exponential backoff,
 *   honouring `Retry-After` (seconds or an HTTP date), until `maxElapsedMs` (then the batch is dropped
 *   and reported, as an OTLP exporter would);
 * - redelivery of batches already answered with success (`redeliverRate`), and batches sent out of
 *   order (`shuffle`), both drawn from `seed`.
 *
 * The report says which records were acknowledged, redelivered, rejected by partial success or dropped:
 * the ground truth a receiver test judges the sinks by.
 */
import { gzipSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { request } from 'undici';
import { parseRetryAfter } from '../../http/retry.ts';
import { decodeJsonResponse, encodeJsonRequest } from '../../otlp/json.ts';
import type { LogRecord, LogsResponse } from '../../otlp/model.ts';
import { GRPC_EXPORT_PATH } from '../../otlp/proto.ts';
import { decodeProtobufResponse, encodeProtobufRequest } from '../../otlp/protobuf.ts';
import { Rng } from '../random.ts';
import type { Truth } from '../truth.ts';
import { auditLogRecord, auditLogsRequest, logIdOf } from './audit-records.ts';
import type { StackitTelemetry } from './telemetry.ts';

export type PushProtocol = 'http/protobuf' | 'http/json' | 'grpc';

/** An OpenTelemetry destination as the Router API holds it. */
export interface PushTarget {
  readonly uri: string;
  readonly bearerToken?: string | undefined;
  readonly basicAuth?: { readonly username: string; readonly password: string } | undefined;
}

export interface PusherOptions {
  /** One destination, or several replicas behind what a Service would be: requests rotate over them. */
  readonly target: PushTarget | readonly PushTarget[];
  readonly protocol?: PushProtocol;
  /** Compress request bodies (default true). */
  readonly gzip?: boolean;
  /** Records per export request (default 100). */
  readonly batchSize?: number;
  /** Seeds redelivery and shuffling (default 1). */
  readonly seed?: number;
  /** Chance that a batch answered with success is sent again (default 0). */
  readonly redeliverRate?: number;
  /** Send the batches in a seeded random order instead of in order (default false). */
  readonly shuffle?: boolean;
  /** First retry delay; doubles up to `maxBackoffMs` (defaults 1 s and 30 s). */
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /** Retry-After values above this are clamped (default 5 min). */
  readonly maxRetryAfterMs?: number;
  /** Give a batch up after retrying this long (default 5 min, as OTLP exporters do). */
  readonly maxElapsedMs?: number;
  /** Deadline of one request (default 10 s). */
  readonly timeoutMs?: number;
  /** How the pusher waits between attempts; tests inject one that records the delays. */
  readonly sleep?: (ms: number) => Promise<void>;
}

export interface PushReport {
  /** Export requests that got a final answer (success or given up), redeliveries included. */
  readonly batches: number;
  /** Requests sent, retries included. */
  readonly attempts: number;
  /** Answers by status (`200`, `429`, `grpc:14`, `network`…). */
  readonly statuses: Readonly<Record<string, number>>;
  /** `stackit.log.id`s of records in batches answered with success (each once). */
  readonly acknowledged: readonly string[];
  /** Records sent again after their batch had succeeded. */
  readonly redelivered: number;
  /** Records the receiver rejected through OTLP partial success. */
  readonly rejected: number;
  /** Ids of records in batches given up after `maxElapsedMs` or a non-retryable answer. */
  readonly dropped: readonly string[];
  /** Every wait between attempts, in order. */
  readonly delaysMs: readonly number[];
}

type Outcome =
  | { readonly kind: 'ok'; readonly response: LogsResponse }
  | { readonly kind: 'retry'; readonly status: string; readonly retryAfterMs?: number | undefined }
  | { readonly kind: 'fail'; readonly status: string };

const RETRYABLE_GRPC = new Set([
  grpc.status.UNAVAILABLE,
  grpc.status.RESOURCE_EXHAUSTED,
  grpc.status.ABORTED,
  grpc.status.DEADLINE_EXCEEDED,
  grpc.status.CANCELLED,
  grpc.status.DATA_LOSS,
]);

export class RouterPusher {
  readonly #o: Required<Omit<PusherOptions, 'sleep'>> & { sleep: (ms: number) => Promise<void> };
  readonly #rng: Rng;
  readonly #targets: readonly PushTarget[];
  readonly #grpc = new Map<string, grpc.Client>();
  readonly #closed = new AbortController();
  #sent = 0;

  constructor(options: PusherOptions) {
    this.#o = {
      protocol: 'http/protobuf',
      gzip: true,
      batchSize: 100,
      seed: 1,
      redeliverRate: 0,
      shuffle: false,
      initialBackoffMs: 1_000,
      maxBackoffMs: 30_000,
      maxRetryAfterMs: 300_000,
      maxElapsedMs: 300_000,
      timeoutMs: 10_000,
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
      ...options,
    };
    this.#rng = Rng.fromString(`telemetry router pusher|${this.#o.seed}`);
    this.#targets = Array.isArray(options.target) ? options.target : [options.target as PushTarget];
    if (this.#targets.length === 0) throw new Error('RouterPusher needs at least one target');
  }

  /** Pushes `records` in batches; resolves when every batch was acknowledged or given up. */
  async push(records: readonly LogRecord[]): Promise<PushReport> {
    const batches: LogRecord[][] = [];
    for (let i = 0; i < records.length; i += this.#o.batchSize) {
      batches.push(records.slice(i, i + this.#o.batchSize));
    }
    if (this.#o.shuffle) {
      for (let i = batches.length - 1; i > 0; i--) {
        const j = Math.floor(this.#rng.next() * (i + 1));
        [batches[i], batches[j]] = [batches[j] as LogRecord[], batches[i] as LogRecord[]];
      }
    }
    const report = {
      batches: 0,
      attempts: 0,
      statuses: {} as Record<string, number>,
      acknowledged: new Set<string>(),
      redelivered: 0,
      rejected: 0,
      dropped: [] as string[],
      delaysMs: [] as number[],
    };
    for (const batch of batches) {
      if (this.#closed.signal.aborted) break;
      const ok = await this.#deliver(batch, report);
      if (ok && this.#rng.next() < this.#o.redeliverRate) {
        // A router that lost the answer (or its own state) sends the same batch again.
        report.redelivered += batch.length;
        await this.#deliver(batch, report);
      }
    }
    return { ...report, acknowledged: [...report.acknowledged] };
  }

  /** Stops: a push in progress ends after the request in flight; what it did not send stays unsent. */
  close(): void {
    this.#closed.abort();
    for (const client of this.#grpc.values()) client.close();
    this.#grpc.clear();
  }

  async #deliver(
    batch: readonly LogRecord[],
    report: {
      batches: number;
      attempts: number;
      statuses: Record<string, number>;
      acknowledged: Set<string>;
      rejected: number;
      dropped: string[];
      delaysMs: number[];
    },
  ): Promise<boolean> {
    let elapsedMs = 0;
    for (let attempt = 0; ; attempt++) {
      report.attempts++;
      const outcome = await this.#send(batch);
      const status = outcome.kind === 'ok' ? 'ok' : outcome.status;
      report.statuses[status] = (report.statuses[status] ?? 0) + 1;
      if (outcome.kind === 'ok') {
        report.batches++;
        report.rejected += Number(outcome.response.partialSuccess?.rejectedLogRecords ?? 0n);
        for (const record of batch) report.acknowledged.add(logIdOf(record));
        return true;
      }
      const backoff = Math.min(this.#o.maxBackoffMs, this.#o.initialBackoffMs * 2 ** attempt);
      const delay =
        outcome.kind === 'retry' && outcome.retryAfterMs !== undefined
          ? Math.min(outcome.retryAfterMs, this.#o.maxRetryAfterMs)
          : backoff;
      if (outcome.kind === 'fail' || elapsedMs + delay > this.#o.maxElapsedMs) {
        report.batches++;
        report.dropped.push(...batch.map(logIdOf));
        return false;
      }
      report.delaysMs.push(delay);
      elapsedMs += delay;
      await abortableSleep(this.#o.sleep(delay), this.#closed.signal);
      if (this.#closed.signal.aborted) return false;
    }
  }

  #send(batch: readonly LogRecord[]): Promise<Outcome> {
    const target = this.#targets[this.#sent++ % this.#targets.length] as PushTarget;
    return this.#o.protocol === 'grpc' ? this.#sendGrpc(target, batch) : this.#sendHttp(target, batch);
  }

  async #sendHttp(target: PushTarget, batch: readonly LogRecord[]): Promise<Outcome> {
    const json = this.#o.protocol === 'http/json';
    const payload = auditLogsRequest(batch);
    const raw = json ? Buffer.from(encodeJsonRequest(payload)) : Buffer.from(encodeProtobufRequest(payload));
    const body = this.#o.gzip ? gzipSync(raw) : raw;
    const url = new URL(target.uri);
    if (!url.pathname.endsWith('/v1/logs')) url.pathname = `${url.pathname.replace(/\/$/, '')}/v1/logs`;
    const headers: Record<string, string> = {
      'content-type': json ? 'application/json' : 'application/x-protobuf',
      'user-agent': 'stackit-telemetry-router-simulator',
      ...(this.#o.gzip ? { 'content-encoding': 'gzip' } : {}),
      ...authorization(target),
    };
    try {
      const response = await request(url, {
        method: 'POST',
        headers,
        body,
        signal: AbortSignal.timeout(this.#o.timeoutMs),
      });
      const bytes = Buffer.from(await response.body.arrayBuffer());
      const status = String(response.statusCode);
      if (response.statusCode >= 200 && response.statusCode < 300) {
        return { kind: 'ok', response: decodeAnswer(bytes, json) };
      }
      if (response.statusCode === 429 || response.statusCode >= 500) {
        const header = response.headers['retry-after'];
        const text = Array.isArray(header) ? header[0] : header;
        return {
          kind: 'retry',
          status,
          retryAfterMs: parseRetryAfter(text, Date.now(), this.#o.maxRetryAfterMs),
        };
      }
      return { kind: 'fail', status };
    } catch {
      return { kind: 'retry', status: 'network' };
    }
  }

  #sendGrpc(target: PushTarget, batch: readonly LogRecord[]): Promise<Outcome> {
    const url = new URL(target.uri);
    let client = this.#grpc.get(url.host);
    if (client === undefined) {
      const credentials =
        url.protocol === 'https:' ? grpc.credentials.createSsl() : grpc.credentials.createInsecure();
      client = new grpc.Client(url.host, credentials, {
        ...(this.#o.gzip ? { 'grpc.default_compression_algorithm': 2 } : {}),
      });
      this.#grpc.set(url.host, client);
    }
    const metadata = new grpc.Metadata();
    for (const [key, value] of Object.entries(authorization(target))) metadata.set(key, value);
    const message = Buffer.from(encodeProtobufRequest(auditLogsRequest(batch)));
    return new Promise((resolve) => {
      (client as grpc.Client).makeUnaryRequest(
        GRPC_EXPORT_PATH,
        (value: Buffer) => value,
        (value: Buffer) => value,
        message,
        metadata,
        { deadline: Date.now() + this.#o.timeoutMs },
        (error, value) => {
          if (error) {
            const status = `grpc:${error.code}`;
            resolve(RETRYABLE_GRPC.has(error.code) ? { kind: 'retry', status } : { kind: 'fail', status });
            return;
          }
          resolve({ kind: 'ok', response: decodeAnswer(value ?? Buffer.alloc(0), false) });
        },
      );
    });
  }
}

/** Waits for `sleeping`, or less when `signal` aborts first. */
function abortableSleep(sleeping: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      signal.removeEventListener('abort', done);
      resolve();
    };
    signal.addEventListener('abort', done, { once: true });
    void sleeping.then(done);
  });
}

/** The destination's credential as headers (bearer token or basic auth, as the Router API allows). */
function authorization(target: PushTarget): Record<string, string> {
  if (target.bearerToken !== undefined) return { authorization: `Bearer ${target.bearerToken}` };
  if (target.basicAuth !== undefined) {
    const { username, password } = target.basicAuth;
    return { authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}` };
  }
  return {};
}

/** A success answer's partial success, if the receiver sent one; an empty or odd body means none. */
function decodeAnswer(bytes: Buffer, json: boolean): LogsResponse {
  if (bytes.length === 0) return {};
  try {
    return json ? decodeJsonResponse(bytes.toString('utf8')) : decodeProtobufResponse(bytes);
  } catch {
    return {};
  }
}

/**
 * What a router built with the management APIs would push: its OpenTelemetry destinations as push
 * targets, and the audit records of every container linked to it (active links only; no inheritance),
 * for events in `[fromMs, toMs)`, ordered by event time. Containers without a simulated audit log add
 * nothing.
 */
export function routerFeed(
  telemetry: StackitTelemetry,
  truth: Truth,
  routerId: string,
  range: { fromMs: number; toMs: number },
): { targets: PushTarget[]; records: LogRecord[] } {
  const targets = telemetry
    .destinations(routerId)
    .flatMap((d) => (d.config.openTelemetry ? [d.config.openTelemetry] : []))
    .map((otel) => ({ uri: otel.uri, bearerToken: otel.bearerToken, basicAuth: otel.basicAuth }));
  const served = new Set(truth.scopes().map((s) => `${s.kind}:${s.id}`));
  const containers = new Map<string, { kind: 'organization' | 'folder' | 'project'; id: string }>();
  for (const link of telemetry.linkedContainers(routerId)) {
    const key = `${link.level}:${link.containerId}`;
    if (served.has(key)) containers.set(key, { kind: link.level, id: link.containerId });
  }
  const events = [...containers.values()]
    .flatMap((scope) => truth.events({ scope, fromMs: range.fromMs, toMs: range.toMs }))
    .sort((a, b) => a.eventTimeMs - b.eventTimeMs || a.id.localeCompare(b.id));
  return { targets, records: events.map(auditLogRecord) };
}
