import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { withEnv } from '../../src/config/fields.ts';
import { Metrics } from '../../src/observability/metrics.ts';
import { RedisKeys } from '../../src/pipeline/keys.ts';
import { PushCommitter } from '../../src/pipeline/push-commit.ts';
import { PushReceiver } from '../../src/pipeline/push-receiver.ts';
import { telemetryProviderSchema } from '../../src/sources/stackit-telemetry/config.ts';
import { stackitTelemetry } from '../../src/sources/stackit-telemetry/index.ts';
import { silentLogger } from './logger.ts';

export const PROJECT = '7f3c1a2b-0000-4000-8000-00000000000a';
export const TOKEN = 'router-token-s3cr3t+/=';

/** Attributes of one STACKIT audit record as the Telemetry Router data-format page documents them. */
export function stackitAttributes(n: number, overrides: Record<string, string> = {}): Record<string, string> {
  return {
    'service.name': 'secrets-manager',
    'service.instance.id': `instance-${n}`,
    'cloud.provider': 'stackit',
    'cloud.region': 'eu01',
    'stackit.resource.type': 'PROJECT',
    'stackit.resource.id': PROJECT,
    'stackit.log.id': `log-${String(n).padStart(6, '0')}`,
    'stackit.log.type': 'AUDIT',
    'stackit.action': 'secrets-manager.apikey.delete',
    'stackit.visibility': 'PUBLIC',
    'stackit.initiator': 'user-1@example.com',
    'stackit.request.body': JSON.stringify({ name: `key-${n}` }),
    'user_agent.original': 'terraform/1.9',
    'http.request.method': 'DELETE',
    'url.path': `/v1/projects/${PROJECT}/keys/${n}`,
    'client.address': '192.0.2.7',
    ...overrides,
  };
}

export interface ReceiverHarness {
  readonly receiver: PushReceiver;
  readonly metrics: Metrics;
  readonly keys: RedisKeys;
  readonly url: string;
  readonly grpcPort: number;
  close(): Promise<void>;
}

/** A stackit-telemetry receiver on free loopback ports committing into `redis`, for the sinks given. */
export async function startReceiver(
  redis: Redis,
  options: {
    readonly provider?: Record<string, unknown>;
    readonly sinks?: readonly string[];
    readonly maxOutbox?: number;
    readonly commitTimeoutMs?: number;
  } = {},
): Promise<ReceiverHarness> {
  const settings = withEnv({ ROUTER_TOKEN: TOKEN }, () =>
    telemetryProviderSchema.parse({
      listen: { host: '127.0.0.1', port: 0, grpcPort: 0 },
      auth: { bearerToken: '${ROUTER_TOKEN}' },
      allowPlainHttp: true,
      ...options.provider,
    }),
  );
  const keys = new RedisKeys('{test}');
  const metrics = new Metrics();
  const receiver = new PushReceiver({
    provider: { name: 'stackit-push', type: 'stackit-telemetry', settings },
    push: stackitTelemetry.push as NonNullable<typeof stackitTelemetry.push>,
    redis,
    committer: new PushCommitter(redis, keys),
    sinks: () => options.sinks ?? ['archive'],
    maxOutbox: options.maxOutbox ?? 100_000,
    metrics,
    log: silentLogger,
    ...(options.commitTimeoutMs !== undefined ? { commitTimeoutMs: options.commitTimeoutMs } : {}),
  });
  const ports = await receiver.start();
  const scheme = settings.tls ? 'https' : 'http';
  return {
    receiver,
    metrics,
    keys,
    url: `${scheme}://127.0.0.1:${ports.http}/v1/logs`,
    grpcPort: ports.grpc ?? 0,
    close: () => receiver.close(),
  };
}

/** Outbox entries of a sink: the events committed for it, in order. */
export async function outboxEvents(
  redis: Redis,
  keys: RedisKeys,
  sink = 'archive',
): Promise<Array<Record<string, unknown>>> {
  const entries = await redis.xrange(keys.outbox(sink), '-', '+');
  return entries.map(([, fields]) => {
    const line = fields[fields.indexOf('line') + 1] as string;
    return JSON.parse(line) as Record<string, unknown>;
  });
}

/** A self-signed certificate for 127.0.0.1 (openssl), in a fresh directory. */
export function selfSignedCertificate(name = 'server'): { certFile: string; keyFile: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), 'auditlog-tls-'));
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      keyFile,
      '-out',
      certFile,
    ],
    { stdio: 'ignore' },
  );
  return { certFile, keyFile, cert: readFileSync(certFile, 'utf8') };
}
