import { Agent as HttpsAgent } from 'node:https';
import {
  HeadBucketCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type PutObjectCommandInput,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import type { Logger } from 'pino';
import { PEM_FILE_MAX_BYTES, readBoundedFile } from '../../config/bounded-file.ts';
import { type CheckStep, checkEndpoint, fail, ok, warn } from '../../http/check.ts';
import type { OutboxEvent } from '../../pipeline/envelope.ts';
import { batchPolicy } from '../shared/config.ts';
import type { BatchPolicy, Sink, SinkDeps, SinkInstance, SinkRequestSample, Verdict } from '../sink.ts';
import type { S3SinkSettings } from './config.ts';
import { type ObjectPlan, planObjects } from './objects.ts';
import { type ConditionalWriteProbe, describeProbe, probeConditionalWrites } from './probe.ts';

type Outcome =
  | { kind: 'stored' }
  | { kind: 'duplicate' }
  | { kind: 'retry'; reason: string }
  | { kind: 'rejected'; reason: string };

/**
 * Archives events to S3 or an S3-compatible store as gzip'd NDJSON objects whose keys derive from
 * their content (see objects.ts), written create-only (`If-None-Match: *`): re-sending a batch after a
 * crash or a lost answer finds the object there (412) and counts as a duplicate, never a second copy.
 * The delivery worker seals each batch before its first send (stable batches), so after a crash the
 * same events come back in the same composition and therefore under the same keys. Content-MD5 is
 * always sent (Object Lock buckets require it); the SDK's newer default checksums are off because
 * several S3-compatible stores refuse them. Every failure is retried: nothing an S3 store says is a
 * reason to drop an audit event.
 */
export class S3Sink implements Sink {
  readonly name: string;
  readonly batching: Partial<BatchPolicy>;
  readonly #s: S3SinkSettings;
  readonly #log: Logger;
  readonly #client: S3Client;
  readonly #onRequest: ((sample: SinkRequestSample) => void) | undefined;
  /** The conditional-write probe's verdict; undefined until one was conclusive (or none is needed). */
  #probe: ConditionalWriteProbe | undefined;

  constructor(instance: SinkInstance<S3SinkSettings>, deps: SinkDeps) {
    this.name = instance.name;
    this.#s = instance.settings;
    this.#log = deps.log;
    this.#onRequest = deps.onRequest;
    this.batching = batchPolicy(this.#s, { stableBatches: true });
    const { auth, tls } = this.#s;
    const ca = tls.caFile ? readBoundedFile(tls.caFile, PEM_FILE_MAX_BYTES).toString('utf8') : undefined;
    this.#client = new S3Client({
      region: this.#s.region,
      ...(this.#s.endpoint ? { endpoint: this.#s.endpoint } : {}),
      forcePathStyle: this.#s.forcePathStyle ?? this.#s.endpoint !== undefined,
      ...(auth
        ? {
            credentials: {
              accessKeyId: auth.accessKeyId.reveal(),
              secretAccessKey: auth.secretAccessKey.reveal(),
              ...(auth.sessionToken ? { sessionToken: auth.sessionToken.reveal() } : {}),
            },
          }
        : {}),
      // The delivery worker retries with backoff, forever; the SDK's own retries would hide failures.
      maxAttempts: 1,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: {
        requestTimeout: this.#s.timeout,
        connectionTimeout: Math.min(this.#s.timeout, 10_000),
        httpsAgent: new HttpsAgent({
          keepAlive: true,
          rejectUnauthorized: !tls.insecureSkipVerify,
          ...(ca ? { ca } : {}),
        }),
      },
    });
  }

  async start(): Promise<void> {
    if (this.#s.tls.insecureSkipVerify) {
      this.#log.warn(`sink "${this.name}": TLS certificate verification is OFF (tls.insecureSkipVerify)`);
    }
    if (this.#s.conditionalWrites !== 'ifNoneMatch') {
      this.#log.warn(
        `sink "${this.name}": conditionalWrites is off: each object is written after a HEAD check (at-least-once; a crash between the two can store a batch twice)`,
      );
      return;
    }
    // A store that ignores If-None-Match would overwrite silently: refuse to start rather than pretend.
    await this.#ensureConditionalWrites(AbortSignal.timeout(this.#s.timeout));
  }

  /**
   * Runs the probe until it gives a verdict and returns why writing must wait, if it must. A store
   * unreachable at start (down, a transient 503, a credential not yet mounted) is no reason to refuse
   * to start: the next send probes again, and until a probe succeeds nothing is written.
   */
  async #ensureConditionalWrites(signal: AbortSignal, atStart = true): Promise<string | undefined> {
    if (this.#probe !== undefined) return undefined;
    const probe = await probeConditionalWrites(this.#client, this.#s.bucket, this.#s.prefix, signal);
    const message = `s3 sink "${this.name}" (bucket ${this.#s.bucket}): ${describeProbe(probe)}`;
    if (probe.kind === 'ignored' || probe.kind === 'unsupported') {
      if (atStart) throw new Error(message);
      this.#log.error(message);
      return message;
    }
    if (probe.kind === 'inconclusive') {
      if (atStart) this.#log.warn(`${message}; probing again before the first write`);
      return message;
    }
    this.#log.info(message);
    this.#probe = probe;
    return undefined;
  }

  /**
   * For `doctor`: the endpoint, HeadBucket (credentials and access to the bucket), then the
   * conditional-write probe `start` runs, which is the harmless write.
   */
  async check(signal: AbortSignal): Promise<CheckStep[]> {
    const { bucket, region, endpoint, tls } = this.#s;
    const steps = await checkEndpoint(endpoint ?? `https://s3.${region}.amazonaws.com`, tls);
    if (steps.some((s) => s.status === 'fail')) return steps;
    try {
      await this.#client.send(new HeadBucketCommand({ Bucket: bucket }), { abortSignal: signal });
      steps.push(ok('auth', 'request signed and accepted'), ok('permission', `HeadBucket ${bucket}: 200`));
    } catch (error) {
      const status = statusOf(error);
      const code = errorCode(error) ?? 'error';
      if (code === 'InvalidAccessKeyId' || code === 'SignatureDoesNotMatch' || status === 401) {
        steps.push(
          fail('auth', `HeadBucket ${bucket}: HTTP ${status ?? '-'} ${code} (check the credentials)`),
        );
      } else if (status === 403) {
        // A HEAD answer has no body, so S3 cannot say which: a wrong key and a missing grant look alike.
        steps.push(
          fail(
            'auth',
            `HeadBucket ${bucket}: HTTP 403: wrong credentials, or no access to the bucket (the policy must allow s3:ListBucket, s3:PutObject, s3:DeleteObject)`,
          ),
        );
      } else if (status === 404) {
        steps.push(fail('permission', `HeadBucket ${bucket}: HTTP 404: no such bucket (create it)`));
      } else if (status === 301) {
        steps.push(
          fail(
            'permission',
            `HeadBucket ${bucket}: HTTP 301: the bucket is in another region than ${region}`,
          ),
        );
      } else {
        steps.push(
          fail('permission', `HeadBucket ${bucket}: ${status !== undefined ? `HTTP ${status} ` : ''}${code}`),
        );
      }
      return steps;
    }
    const probe = await probeConditionalWrites(this.#client, bucket, this.#s.prefix, signal);
    const detail = describeProbe(probe);
    if (probe.kind === 'supported') steps.push(ok('write', `canary written and deleted; ${detail}`));
    else if (probe.kind === 'inconclusive') steps.push(fail('write', detail));
    // Without conditional writes the sink runs only where the config accepts at-least-once.
    else if (this.#s.conditionalWrites === 'headBeforePut')
      steps.push(warn('write', `${detail} (configured: at-least-once)`));
    else steps.push(fail('write', detail));
    return steps;
  }

  /** A scope's events share a lane, so its objects are fewer and larger. */
  partitionKey(event: OutboxEvent): string {
    return event.scopeKey;
  }

  async send(batch: readonly OutboxEvent[], signal: AbortSignal): Promise<readonly Verdict[]> {
    if (this.#s.conditionalWrites === 'ifNoneMatch') {
      const waiting = await this.#ensureConditionalWrites(signal, false);
      if (waiting !== undefined) return batch.map(() => ({ kind: 'retry', reason: waiting }));
    }
    const verdicts: Verdict[] = new Array(batch.length);
    const plans = planObjects(batch, this.#s.prefix);
    await Promise.all(
      plans.map(async (plan) => {
        const outcome = await this.#write(plan, signal);
        const verdict: Verdict =
          outcome.kind === 'stored'
            ? { kind: 'delivered' }
            : outcome.kind === 'duplicate'
              ? { kind: 'duplicate' }
              : outcome;
        for (const index of plan.indexes) verdicts[index] = verdict;
      }),
    );
    return verdicts;
  }

  async close(): Promise<void> {
    this.#client.destroy();
  }

  async #write(plan: ObjectPlan, signal: AbortSignal): Promise<Outcome> {
    const { bucket } = this.#s;
    if (this.#s.conditionalWrites === 'headBeforePut') {
      const existing = await this.#head(plan, signal);
      if (existing) return existing;
    }
    const input: PutObjectCommandInput = {
      Bucket: bucket,
      Key: plan.key,
      Body: plan.body,
      ContentLength: plan.body.length,
      ContentType: 'application/gzip',
      ContentMD5: plan.contentMd5,
      Metadata: {
        events: String(plan.events.length),
        'first-event-id': (plan.events[0] as OutboxEvent).id,
        'last-event-id': (plan.events.at(-1) as OutboxEvent).id,
        'content-sha256': plan.contentSha256,
      },
      ...(this.#s.conditionalWrites === 'ifNoneMatch' ? { IfNoneMatch: '*' } : {}),
      ...(this.#s.serverSideEncryption
        ? {
            ServerSideEncryption: this.#s.serverSideEncryption.type,
            ...(this.#s.serverSideEncryption.kmsKeyId
              ? { SSEKMSKeyId: this.#s.serverSideEncryption.kmsKeyId }
              : {}),
          }
        : {}),
      ...(this.#s.objectLock
        ? {
            ObjectLockMode: this.#s.objectLock.mode,
            ObjectLockRetainUntilDate: new Date(Date.now() + this.#s.objectLock.retainDays * 86_400_000),
          }
        : {}),
      ...(this.#s.storageClass
        ? { StorageClass: this.#s.storageClass as PutObjectCommandInput['StorageClass'] }
        : {}),
      ...(this.#s.additionalChecksum ? { ChecksumAlgorithm: this.#s.additionalChecksum } : {}),
    };
    const started = performance.now();
    try {
      const out = await this.#client.send(new PutObjectCommand(input), { abortSignal: signal });
      this.#sample('put_object', String(out.$metadata.httpStatusCode ?? 200), started);
      return { kind: 'stored' };
    } catch (error) {
      if (signal.aborted) throw error;
      const status = statusOf(error);
      this.#sample('put_object', status === undefined ? 'error' : String(status), started);
      if (status === 412 || errorCode(error) === 'PreconditionFailed') {
        // Already there: confirm it holds these events (the key embeds their hash; the metadata has all of it).
        return (await this.#head(plan, signal)) ?? { kind: 'duplicate' };
      }
      return { kind: 'retry', reason: this.#describe(error, plan) };
    }
  }

  /** For a key that may exist: duplicate if it holds our content, rejected if it holds other bytes. */
  async #head(plan: ObjectPlan, signal: AbortSignal): Promise<Outcome | undefined> {
    const started = performance.now();
    try {
      const head = await this.#client.send(new HeadObjectCommand({ Bucket: this.#s.bucket, Key: plan.key }), {
        abortSignal: signal,
      });
      this.#sample('head_object', String(head.$metadata.httpStatusCode ?? 200), started);
      const stored = head.Metadata?.['content-sha256'];
      if (stored !== undefined && stored !== plan.contentSha256) {
        return {
          kind: 'rejected',
          reason: `s3 sink "${this.name}": s3://${this.#s.bucket}/${plan.key} already exists with different content (sha256 ${stored}, ours ${plan.contentSha256}); not overwritten`,
        };
      }
      return { kind: 'duplicate' };
    } catch (error) {
      if (signal.aborted) throw error;
      const status = statusOf(error);
      this.#sample('head_object', status === undefined ? 'error' : String(status), started);
      if (status === 404) return undefined;
      if (this.#s.conditionalWrites === 'ifNoneMatch') {
        // The store said 412; without read access we cannot compare, and the key already names our content.
        this.#log.debug(
          { sink: this.name, key: plan.key, status },
          'HEAD after 412 failed; counting as duplicate',
        );
        return { kind: 'duplicate' };
      }
      return { kind: 'retry', reason: this.#describe(error, plan) };
    }
  }

  #describe(error: unknown, plan: ObjectPlan): string {
    const status = statusOf(error);
    const code = errorCode(error);
    const message = error instanceof Error ? error.message : String(error);
    const first = (plan.events[0] as OutboxEvent).id;
    let hint = '';
    if (code === 'InvalidAccessKeyId' || code === 'SignatureDoesNotMatch' || status === 403) {
      hint = ' (check the credentials and the bucket policy)';
    } else if (code === 'NotImplemented' || status === 501) {
      hint = ' (the store may not support If-None-Match: set conditionalWrites: false)';
    } else if (code === 'NoSuchBucket') hint = ' (create the bucket)';
    const reason = `s3 sink "${this.name}": PUT s3://${this.#s.bucket}/${plan.key}: ${status !== undefined ? `HTTP ${status} ` : ''}${code ?? 'error'}: ${message}${hint} (${plan.events.length} events, first ${first})`;
    if (status === 403 || status === 400 || status === 404 || status === 501)
      this.#log.error({ sink: this.name, status, code, firstEventId: first }, reason);
    return reason;
  }

  #sample(operation: string, status: string, started: number): void {
    this.#onRequest?.({ operation, status, seconds: (performance.now() - started) / 1000 });
  }
}

function statusOf(error: unknown): number | undefined {
  if (error instanceof S3ServiceException) return error.$metadata.httpStatusCode;
  const meta = (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata;
  return meta?.httpStatusCode;
}

function errorCode(error: unknown): string | undefined {
  if (error instanceof S3ServiceException) return error.name;
  return error instanceof Error ? ((error as { code?: string }).code ?? error.name) : undefined;
}
