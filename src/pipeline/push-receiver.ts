import type { Logger } from 'pino';
import type { Metrics } from '../observability/metrics.ts';
import { describeProblems } from '../otlp/errors.ts';
import { OtlpGrpcReceiver } from '../otlp/receiver/grpc.ts';
import type { ExportAnswer, ReceiverTransport } from '../otlp/receiver/handler.ts';
import { OtlpHttpReceiver } from '../otlp/receiver/http.ts';
import type { DecodedLogs } from '../otlp/validate.ts';
import type { RedisClient } from '../redis/client.ts';
import type { ProviderInstance, PushedEvent, PushReceiverSettings, PushSupport } from '../sources/source.ts';
import { PATHS_MAX, PATHS_WINDOW_MS } from './paths.ts';
import type { PushCommitter } from './push-commit.ts';

export interface PushReceiverDeps {
  readonly provider: ProviderInstance;
  readonly push: PushSupport;
  readonly redis: RedisClient;
  readonly committer: PushCommitter;
  /** The sinks every pushed event goes to, read per request so a reload applies at once. */
  readonly sinks: () => readonly string[];
  readonly maxOutbox: number;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly now?: () => number;
  /** A commit that takes longer is answered 503 (it may still land; a retry is deduped). */
  readonly commitTimeoutMs?: number;
  /** Retry-After for a full outbox and for Redis trouble. */
  readonly busyRetryAfterSeconds?: number;
  readonly unavailableRetryAfterSeconds?: number;
}

/**
 * The push path of one provider: its OTLP receiver (HTTP, and gRPC when configured) on every replica,
 * each request mapped by the source and committed with the same atomic dedupe-and-outbox step as a
 * polled page, one script per scope. The sender hears success only when every record of the request is
 * durable in Redis; a full outbox (429) or unreachable Redis (503) refuses the request with Retry-After,
 * so the sender keeps the data. A scope committed before a refusal is deduped when the request returns.
 */
export class PushReceiver {
  readonly #deps: PushReceiverDeps;
  readonly #settings: PushReceiverSettings;
  readonly #now: () => number;
  readonly #http: OtlpHttpReceiver;
  readonly #grpc: OtlpGrpcReceiver | undefined;
  #ports: { http: number; grpc?: number } | undefined;

  constructor(deps: PushReceiverDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
    this.#settings = deps.push.receiver(deps.provider.settings);
    const log = deps.log.child({ provider: deps.provider.name, receiver: 'otlp' });
    const common = {
      host: this.#settings.host,
      tls: this.#settings.tls,
      auth: this.#settings.auth,
      maxBodyBytes: this.#settings.maxBodyBytes,
      handler: (request: DecodedLogs, transport: ReceiverTransport) => this.handle(request, transport),
      observe: (sample: { transport: string; outcome: string }) =>
        deps.metrics.pushRequests.inc({ provider: deps.provider.name, ...sample }),
      log,
    };
    this.#http = new OtlpHttpReceiver({ ...common, port: this.#settings.port });
    this.#grpc =
      this.#settings.grpcPort === undefined
        ? undefined
        : new OtlpGrpcReceiver({ ...common, port: this.#settings.grpcPort });
  }

  /** Starts listening; returns the bound ports (differ from the configured ones only for port 0). */
  async start(): Promise<{ http: number; grpc?: number }> {
    const http = await this.#http.listen();
    const grpc = this.#grpc ? await this.#grpc.listen() : undefined;
    this.#ports = { http, ...(grpc !== undefined ? { grpc } : {}) };
    this.#deps.log.info(
      { provider: this.#deps.provider.name, ...this.#ports, tls: this.#settings.tls !== undefined },
      `OTLP receiver of ${this.#deps.provider.name} listening: HTTP ${this.#settings.host}:${http}/v1/logs${grpc !== undefined ? `, gRPC :${grpc}` : ''}`,
    );
    return this.#ports;
  }

  get ports(): { http: number; grpc?: number } | undefined {
    return this.#ports;
  }

  async close(): Promise<void> {
    await Promise.all([this.#http.close(), this.#grpc?.close()]);
  }

  /** One decoded request: map, commit per scope, answer. Exposed for tests and the benchmark. */
  async handle(request: DecodedLogs, transport: ReceiverTransport): Promise<ExportAnswer> {
    const { metrics, provider } = this.#deps;
    const receivedAtMs = this.#now();
    const labels = { provider: provider.name };
    const mapped = request.records.map((record) => this.#deps.push.map(record, { provider, receivedAtMs }));
    const byScope = new Map<string, PushedEvent[]>();
    for (const pushed of mapped) {
      const group = byScope.get(pushed.scopeKey);
      if (group) group.push(pushed);
      else byScope.set(pushed.scopeKey, [pushed]);
    }

    if (this.#deps.redis.status !== 'ready') {
      return this.#unavailable(transport, new Error(`Redis connection is ${this.#deps.redis.status}`));
    }
    const timer = metrics.pushCommitSeconds.startTimer(labels);
    const sinks = this.#deps.sinks();
    let added = 0;
    let duplicates = 0;
    try {
      // One atomic script per scope, all in flight at once: a request of many projects must not pay one
      // round trip each in turn. If some scopes commit and another is refused, the sender retries the
      // whole request and the committed scopes' events are recognised as duplicates.
      const options = {
        maxOutbox: this.#deps.maxOutbox,
        forgetSeenBeforeMs: receivedAtMs - this.#settings.dedupeWindowMs,
        pathsKeepAfterMs: receivedAtMs - PATHS_WINDOW_MS,
        pathsMax: PATHS_MAX,
      };
      const results = await this.#withTimeout(
        Promise.all(
          [...byScope].map(([scopeKey, group]) =>
            this.#deps.committer.commit(
              scopeKey,
              sinks,
              group.map((p) => p.event),
              receivedAtMs,
              options,
            ),
          ),
        ),
      );
      for (const result of results) {
        if (result.outcome === 'outbox_full') {
          metrics.outboxFullPauses.inc({ sink: result.sink });
          const retryAfterSeconds = this.#deps.busyRetryAfterSeconds ?? 30;
          this.#deps.log.warn(
            {
              provider: provider.name,
              sink: result.sink,
              outboxLength: result.length,
              cap: this.#deps.maxOutbox,
            },
            `outbox of sink "${result.sink}" is full; pushed requests are refused with 429 until it drains`,
          );
          return {
            kind: 'busy',
            retryAfterSeconds,
            message: `outbox of sink "${result.sink}" is full (${result.length} of ${this.#deps.maxOutbox}); retry after ${retryAfterSeconds} s`,
          };
        }
        added += result.added.length;
        duplicates += result.duplicates;
      }
    } catch (error) {
      return this.#unavailable(transport, error);
    } finally {
      timer();
    }

    const anomalous = mapped.filter((p) => !p.mapped);
    const malformed = request.problems.reduce((n, p) => n + p.records, 0);
    if (added > 0) metrics.pushRecords.inc({ ...labels, outcome: 'committed' }, added);
    if (duplicates > 0) metrics.pushRecords.inc({ ...labels, outcome: 'duplicate' }, duplicates);
    if (anomalous.length > 0) metrics.pushRecords.inc({ ...labels, outcome: 'anomalous' }, anomalous.length);
    if (malformed > 0) metrics.pushRecords.inc({ ...labels, outcome: 'malformed' }, malformed);

    if (request.problems.length > 0) {
      const message = `${malformed} log record(s) are not valid OTLP and were not accepted: ${describeProblems(request.problems)}; the ${mapped.length} valid record(s) of this request were committed`;
      this.#deps.log.warn({ provider: provider.name, transport, malformed }, message);
      return { kind: 'invalid', message };
    }
    if (anomalous.length > 0) {
      const first = anomalous[0] as PushedEvent;
      const where = request.records[mapped.indexOf(first)]?.path ?? '';
      const message = `${anomalous.length} log record(s) lacked required STACKIT attributes and were committed with anomalies (first: ${where}: ${(first.event.anomalies ?? []).join('; ')})`;
      this.#deps.log.warn({ provider: provider.name, transport, anomalous: anomalous.length }, message);
      return { kind: 'accepted', rejected: anomalous.length, message };
    }
    return { kind: 'accepted', rejected: 0, message: '' };
  }

  #unavailable(transport: ReceiverTransport, error: unknown): ExportAnswer {
    const retryAfterSeconds = this.#deps.unavailableRetryAfterSeconds ?? 5;
    this.#deps.log.warn(
      { provider: this.#deps.provider.name, transport, err: error },
      'pushed request refused with 503: its commit to Redis did not complete',
    );
    return {
      kind: 'unavailable',
      retryAfterSeconds,
      message: `the shipper cannot reach its Redis to commit; retry after ${retryAfterSeconds} s`,
    };
  }

  async #withTimeout<T>(work: Promise<T>): Promise<T> {
    const ms = this.#deps.commitTimeoutMs ?? 10_000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`commit did not finish within ${ms} ms`)), ms);
    });
    try {
      return await Promise.race([work, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}
