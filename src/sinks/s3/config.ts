import { z } from 'zod';
import { httpUrl, pickSecret, secretKeys, text } from '../../config/fields.ts';
import type { Secret } from '../../config/secret.ts';
import { batchingKeys, timeoutKey } from '../shared/config.ts';

const staticCredentials = z
  .strictObject({
    ...secretKeys('accessKeyId'),
    ...secretKeys('secretAccessKey'),
    ...secretKeys('sessionToken'),
  })
  .transform((value, ctx) => {
    const raw = value as Record<string, unknown>;
    const accessKeyId = pickSecret(raw, 'accessKeyId', ctx, false);
    const secretAccessKey = pickSecret(raw, 'secretAccessKey', ctx, false);
    const sessionToken = pickSecret(raw, 'sessionToken', ctx, false);
    if (!accessKeyId && !secretAccessKey) return undefined;
    if (!accessKeyId || !secretAccessKey) {
      ctx.issues.push({
        code: 'custom',
        message: 'accessKeyId and secretAccessKey go together',
        input: '[redacted]',
      });
      return z.NEVER;
    }
    return { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) } as {
      accessKeyId: Secret;
      secretAccessKey: Secret;
      sessionToken?: Secret;
    };
  })
  .prefault({})
  .describe(
    'Static keys (accessKeyId/secretAccessKey, optional sessionToken, each ${ENV} or *File). Leave out for the default AWS credential chain: env, ~/.aws, web identity (EKS IRSA), ECS/EC2 roles.',
  );

export const s3SinkSchema = z.strictObject({
  bucket: text().pipe(z.string().min(3).max(63)).describe('Bucket name.'),
  prefix: text()
    .default('')
    .refine((p) => p === '' || p.endsWith('/'), 'must end with "/" (or be empty)')
    .describe(
      'Key prefix, e.g. auditlog/. Keys continue with provider/scope-kind/scope-id/date=YYYY-MM-DD/hour=HH/.',
    ),
  endpoint: httpUrl()
    .optional()
    .describe(
      'S3-compatible endpoint, e.g. https://object.storage.eu01.onstackit.cloud (STACKIT), https://objects.rma.cloudscale.ch (cloudscale), http://minio:9000. Leave out for AWS.',
    ),
  region: text().default('us-east-1').describe('Region (STACKIT: eu01; cloudscale: rma or lpg; MinIO: any).'),
  forcePathStyle: z
    .boolean()
    .optional()
    .describe(
      'Path-style addressing (endpoint/bucket/key). Default: on with a custom endpoint, off for AWS.',
    ),
  auth: staticCredentials,
  conditionalWrites: z
    .union([z.boolean(), z.enum(['ifNoneMatch', 'headBeforePut'])])
    .default(true)
    .transform((value) => (value === true || value === 'ifNoneMatch' ? 'ifNoneMatch' : 'headBeforePut'))
    .describe(
      'true (ifNoneMatch): PUT with If-None-Match: *, so the store refuses a second copy atomically; proven at start by a canary written twice (only a 412 counts), and the sink refuses to start on a store that ignores the header. false (headBeforePut): at-least-once for stores without conditional writes: a HEAD before each PUT; safe with one writer per key, which the deterministic keys give, but a crash between HEAD and PUT may write an object twice.',
    ),
  serverSideEncryption: z
    .strictObject({
      type: z.enum(['AES256', 'aws:kms']).describe('SSE-S3 (AES256) or SSE-KMS.'),
      kmsKeyId: text().optional().describe('KMS key id or ARN for aws:kms.'),
    })
    .optional()
    .describe('Server-side encryption requested per object.'),
  objectLock: z
    .strictObject({
      mode: z
        .enum(['GOVERNANCE', 'COMPLIANCE'])
        .describe('Try GOVERNANCE first: COMPLIANCE cannot be undone.'),
      retainDays: z
        .number()
        .int()
        .min(1)
        .max(36_500)
        .describe('Retention per object (STACKIT allows at most 365).'),
    })
    .optional()
    .describe(
      'Per-object Object Lock retention (the bucket must have Object Lock enabled). Content-MD5 is always sent.',
    ),
  storageClass: text().optional().describe('Storage class, e.g. STANDARD_IA (AWS only).'),
  additionalChecksum: z
    .enum(['CRC32', 'CRC32C', 'SHA1', 'SHA256'])
    .optional()
    .describe(
      'A flexible checksum on top of Content-MD5. Off by default: several S3-compatible stores reject these headers.',
    ),
  ...batchingKeys({ maxEvents: 20_000, maxBytes: '16MiB', linger: '5m', concurrency: 4 }),
  timeout: timeoutKey('60s'),
  tls: z
    .strictObject({
      caFile: text().optional().describe('Extra CA bundle (PEM) to trust.'),
      insecureSkipVerify: z.boolean().default(false).describe('Never in production.'),
    })
    .prefault({}),
});

export type S3SinkSettings = z.output<typeof s3SinkSchema>;
