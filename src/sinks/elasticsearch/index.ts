import { checkWith } from '../shared/check.ts';
import { defineSink } from '../sink.ts';
import { elasticsearchSinkSchema } from './config.ts';
import { ElasticsearchSink } from './sink.ts';

export const elasticsearch = defineSink({
  type: 'elasticsearch',
  description: 'Elasticsearch or OpenSearch _bulk with create and _id = event id (data streams or indices)',
  schema: elasticsearchSinkSchema,
  create: (instance, deps) => new ElasticsearchSink(instance, deps),
  check: (instance, deps, signal) => checkWith(new ElasticsearchSink(instance, deps), signal),
});

/** The same sink under the name OpenSearch users look for; no product check is involved. */
export const opensearch = defineSink({
  type: 'opensearch',
  description: 'OpenSearch _bulk with create and _id = event id (same sink as elasticsearch)',
  schema: elasticsearchSinkSchema,
  create: (instance, deps) => new ElasticsearchSink(instance, deps),
  check: (instance, deps, signal) => checkWith(new ElasticsearchSink(instance, deps), signal),
});
