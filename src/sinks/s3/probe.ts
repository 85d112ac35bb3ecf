import { randomUUID } from 'node:crypto';
import { DeleteObjectCommand, PutObjectCommand, type S3Client, S3ServiceException } from '@aws-sdk/client-s3';

/**
 * Whether the store honours `If-None-Match: *`: a canary PUT twice with the header. Only a 412 on the
 * second proves it; several S3-compatibles (Ceph RGW before ceph/ceph#63348, chimera, s3d) answer 200
 * and overwrite, and some 501. The canary is deleted afterwards where the store allows it.
 */
export type ConditionalWriteProbe =
  | { readonly kind: 'supported' }
  /** The second PUT was accepted: the store ignores the header and overwrites. */
  | { readonly kind: 'ignored'; readonly status: number }
  /** The store refuses the header (501 NotImplemented and the like). */
  | { readonly kind: 'unsupported'; readonly status: number; readonly code: string }
  /** No verdict: the store could not be reached or refused the write itself (credentials, policy). */
  | { readonly kind: 'inconclusive'; readonly reason: string };

export const PROBE_PREFIX = '.auditlog-shipper-probe/';

export async function probeConditionalWrites(
  client: S3Client,
  bucket: string,
  prefix: string,
  signal?: AbortSignal,
): Promise<ConditionalWriteProbe> {
  const key = `${prefix}${PROBE_PREFIX}${randomUUID()}`;
  const put = () =>
    client.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: 'auditlog-shipper conditional-write probe; safe to delete\n',
        ContentType: 'text/plain',
        IfNoneMatch: '*',
      }),
      signal ? { abortSignal: signal } : {},
    );
  try {
    await put();
  } catch (error) {
    const { status, code } = describe(error);
    if (status === 501 || code === 'NotImplemented')
      return { kind: 'unsupported', status: status ?? 501, code: code ?? 'NotImplemented' };
    return { kind: 'inconclusive', reason: `first PUT of the canary failed: ${reason(error)}` };
  }
  try {
    const second = await put();
    return { kind: 'ignored', status: second.$metadata.httpStatusCode ?? 200 };
  } catch (error) {
    const { status, code } = describe(error);
    if (status === 412 || code === 'PreconditionFailed') return { kind: 'supported' };
    if (status === 501 || code === 'NotImplemented')
      return { kind: 'unsupported', status: status ?? 501, code: code ?? 'NotImplemented' };
    return { kind: 'inconclusive', reason: `second PUT of the canary failed: ${reason(error)}` };
  } finally {
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key })).catch(() => undefined);
  }
}

/** One line for an operator: what the probe found and what to do about it. */
export function describeProbe(probe: ConditionalWriteProbe): string {
  switch (probe.kind) {
    case 'supported':
      return 'If-None-Match: * honoured (second PUT of the canary answered 412)';
    case 'ignored':
      return `If-None-Match: * IGNORED: the second PUT of the canary answered ${probe.status} and overwrote it; set conditionalWrites: false to accept at-least-once writes with a HEAD check before each`;
    case 'unsupported':
      return `If-None-Match: * not supported (HTTP ${probe.status} ${probe.code}); set conditionalWrites: false to accept at-least-once writes with a HEAD check before each`;
    case 'inconclusive':
      return `conditional writes not verified: ${probe.reason}${/\b403\b/.test(probe.reason) ? ' (check the credentials and the bucket policy: the shipper needs s3:PutObject and s3:DeleteObject under its prefix)' : ''}`;
  }
}

function describe(error: unknown): { status?: number; code?: string } {
  const status =
    error instanceof S3ServiceException
      ? error.$metadata.httpStatusCode
      : (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
  const code = error instanceof Error ? error.name : undefined;
  return { ...(status !== undefined ? { status } : {}), ...(code !== undefined ? { code } : {}) };
}

function reason(error: unknown): string {
  const { status, code } = describe(error);
  const message = error instanceof Error ? error.message : String(error);
  return `${status !== undefined ? `HTTP ${status} ` : ''}${code ?? 'error'}: ${message}`;
}
