import { z } from 'zod';
import { duration, httpUrl, text } from '../../config/fields.ts';
import { batchingKeys, byteSize, httpAuthSchema, timeoutKey, tlsSchema } from '../shared/config.ts';

/** Envelope fields a label or metadata template may use: all bounded, none per-event unique. */
export const LABEL_FIELDS = [
  'provider',
  'scope.kind',
  'scope.id',
  'action',
  'actor.type',
  'resource.type',
] as const;
/** Envelope fields that may go into structured metadata (per-event values are fine there). */
export const METADATA_FIELDS = [
  'id',
  'provider',
  'scope.kind',
  'scope.id',
  'action',
  'actor.id',
  'actor.email',
  'actor.type',
  'sourceIp',
  'resource.id',
  'resource.name',
  'resource.type',
  'receivedAt',
] as const;

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const PLACEHOLDER = /\{([a-zA-Z.]+)\}/g;

const labelTemplates = z
  .object({})
  .catchall(text())
  .superRefine((labels, ctx) => {
    const names = Object.keys(labels);
    if (names.length === 0) ctx.addIssue({ code: 'custom', message: 'needs at least one label' });
    if (names.length > 15)
      ctx.addIssue({ code: 'custom', message: `${names.length} labels; Loki accepts at most 15 per stream` });
    for (const [name, template] of Object.entries(labels)) {
      if (!LABEL_NAME.test(name) || name.startsWith('__')) {
        ctx.addIssue({
          code: 'custom',
          path: [name],
          message: 'label names are [a-zA-Z_][a-zA-Z0-9_]* and must not start with "__"',
        });
      }
      for (const [, field] of template.matchAll(PLACEHOLDER)) {
        if (!(LABEL_FIELDS as readonly string[]).includes(field as string)) {
          ctx.addIssue({
            code: 'custom',
            path: [name],
            message: `{${field}} is not a label field; use ${LABEL_FIELDS.map((f) => `{${f}}`).join(', ')} (per-event values such as ids belong in structuredMetadata)`,
          });
        }
      }
    }
  });

const metadataFields = z
  .object({})
  .catchall(z.enum(METADATA_FIELDS))
  .superRefine((fields, ctx) => {
    for (const name of Object.keys(fields)) {
      if (!LABEL_NAME.test(name) || name.startsWith('__')) {
        ctx.addIssue({ code: 'custom', path: [name], message: 'names are [a-zA-Z_][a-zA-Z0-9_]*' });
      }
    }
  });

export const DEFAULT_LABELS = {
  service_name: 'auditlog-shipper',
  provider: '{provider}',
  scope_kind: '{scope.kind}',
  scope_id: '{scope.id}',
};

export const DEFAULT_METADATA = {
  event_id: 'id',
  action: 'action',
  actor_id: 'actor.id',
  actor_email: 'actor.email',
  source_ip: 'sourceIp',
} as const;

export const lokiSinkSchema = z.strictObject({
  url: httpUrl().describe(
    'Loki base URL, e.g. https://loki.example.com (the push path /loki/api/v1/push is added unless the URL already ends in it).',
  ),
  tenant: text()
    .optional()
    .describe('Tenant id sent as X-Scope-OrgID (multi-tenant Loki, Grafana Cloud via a gateway).'),
  auth: httpAuthSchema({ apiKey: false }),
  format: z
    .enum(['protobuf', 'json'])
    .default('protobuf')
    .describe("protobuf: snappy-compressed protobuf (Loki's native format). json: the JSON push format."),
  compression: z
    .enum(['gzip', 'none'])
    .default('gzip')
    .describe('Compression of JSON bodies (protobuf bodies are always snappy).'),
  labels: labelTemplates
    .default(DEFAULT_LABELS)
    .describe(
      'Stream labels: name → template. Templates may use {provider}, {scope.kind}, {scope.id}, {action}, {actor.type}, {resource.type}. Every label value multiplies the number of streams: keep them few and bounded.',
    ),
  structuredMetadata: metadataFields
    .default(DEFAULT_METADATA)
    .describe(
      'Per-entry structured metadata: name → envelope field (id, action, actor.id, actor.email, sourceIp, …). Needs Loki 3 with schema v13; set {} for older Loki.',
    ),
  limits: z
    .strictObject({
      maxLineSize: byteSize({ min: 0 })
        .prefault('256KiB')
        .describe(
          "Loki's max_line_size: longer events are dead-lettered here instead of being sent. 0: no check.",
        ),
      rejectOlderThan: duration()
        .prefault('7d')
        .describe("Loki's reject_old_samples_max_age: older events are dead-lettered here. 0s: no check."),
      maxFuture: duration()
        .prefault('10m')
        .describe(
          "Loki's creation_grace_period: events further in the future are dead-lettered. 0s: no check.",
        ),
    })
    .prefault({})
    .describe(
      "Mirror of the Loki server's limits, checked before sending so known-bad events are dead-lettered with a clear reason at once. Loki's own 400 answers are handled either way.",
    ),
  ...batchingKeys({ maxEvents: 10_000, maxBytes: '1MiB', linger: '1s', concurrency: 2 }),
  timeout: timeoutKey('30s'),
  tls: tlsSchema,
});

export type LokiSinkSettings = z.output<typeof lokiSinkSchema>;
