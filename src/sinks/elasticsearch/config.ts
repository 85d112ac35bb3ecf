import { z } from 'zod';
import { httpUrl, text } from '../../config/fields.ts';
import { batchingKeys, httpAuthSchema, timeoutKey, tlsSchema } from '../shared/config.ts';

/** Placeholders an index or data stream name may use; all rendered from the event, lower-case. */
export const TARGET_PLACEHOLDERS = ['provider', 'scope.kind', 'date', 'month'] as const;

export const elasticsearchSinkSchema = z.strictObject({
  url: httpUrl().describe('Cluster URL, e.g. https://es.example.com:9200 (Elasticsearch or OpenSearch).'),
  mode: z
    .enum(['dataStream', 'index'])
    .default('dataStream')
    .describe(
      'dataStream: append-only data stream (needs a matching index template; see manageTemplate). index: plain indices.',
    ),
  target: text()
    .default('audit-events')
    .refine(
      (t) =>
        [...t.matchAll(/\{([a-z.]+)\}/g)].every((m) =>
          (TARGET_PLACEHOLDERS as readonly string[]).includes(m[1] as string),
        ),
      'placeholders are {provider}, {scope.kind}, {date} (event day, yyyy.MM.dd) and {month} (yyyy.MM)',
    )
    .refine(
      (t) => t === t.toLowerCase() && !/[\\/*?"<>| ,#:]/.test(t),
      'index names are lower case without \\ / * ? " < > | space , # :',
    )
    .describe(
      'Data stream or index name. In index mode prefer a daily or monthly name such as audit-{date}: each event then has exactly one index, so its _id is unique for good.',
    ),
  auth: httpAuthSchema({ apiKey: true }),
  compression: z.enum(['gzip', 'none']).default('gzip').describe('Compression of bulk request bodies.'),
  pipeline: text().optional().describe('Ingest pipeline to run on each document.'),
  manageTemplate: z
    .boolean()
    .default(false)
    .describe(
      'Install (or update) an index template for the target at start: @timestamp as date_nanos, envelope fields as keywords, raw stored but not indexed. Needs manage_index_templates.',
    ),
  templateName: text().default('auditlog-shipper').describe('Name of the managed index template.'),
  ...batchingKeys({ maxEvents: 5_000, maxBytes: '5MiB', linger: '1s', concurrency: 2 }),
  timeout: timeoutKey('60s'),
  tls: tlsSchema,
});

export type ElasticsearchSinkSettings = z.output<typeof elasticsearchSinkSchema>;
