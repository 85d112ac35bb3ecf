import { z } from 'zod';
import { httpUrl, text } from '../../config/fields.ts';
import { batchingKeys, httpAuthSchema, timeoutKey, tlsSchema } from '../shared/config.ts';

export const otlpSinkSchema = z.strictObject({
  url: httpUrl().describe(
    'The OTLP/HTTP logs endpoint, used as given: e.g. https://collector:4318/v1/logs, https://loki.example.com/otlp/v1/logs, https://es.example.com/_otlp/v1/logs.',
  ),
  encoding: z
    .enum(['protobuf', 'json'])
    .default('protobuf')
    .describe('protobuf (application/x-protobuf, the OTLP default) or json (OTLP/JSON).'),
  compression: z.enum(['gzip', 'none']).default('gzip').describe('Request body compression.'),
  auth: httpAuthSchema({ apiKey: true }),
  headers: z
    .object({})
    .catchall(text())
    .default({})
    .describe('Extra request headers, e.g. a tenant header. Credentials belong in auth, never here.'),
  resourceAttributes: z
    .object({})
    .catchall(text())
    .default({ 'service.name': 'auditlog-shipper' })
    .describe('Resource attributes of every exported record (string values), e.g. service.name.'),
  ...batchingKeys({ maxEvents: 1_000, maxBytes: '4MiB', linger: '1s', concurrency: 2 }),
  timeout: timeoutKey('30s'),
  tls: tlsSchema,
});

export type OtlpSinkSettings = z.output<typeof otlpSinkSchema>;
