import { checkWith } from '../shared/check.ts';
import { defineSink } from '../sink.ts';
import { s3SinkSchema } from './config.ts';
import { S3Sink } from './sink.ts';

export const s3 = defineSink({
  type: 's3',
  description:
    'S3 and S3-compatible stores (AWS, STACKIT, cloudscale, MinIO, Ceph): gzip NDJSON objects, content-derived keys, create-only',
  schema: s3SinkSchema,
  create: (instance, deps) => new S3Sink(instance, deps),
  check: (instance, deps, signal) => checkWith(new S3Sink(instance, deps), signal),
});
