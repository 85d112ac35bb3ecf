import { defineSink } from '../sink.ts';
import { otlpSinkSchema } from './config.ts';
import { OtlpSink } from './sink.ts';

export const otlp = defineSink({
  type: 'otlp',
  description:
    'Any OTLP/HTTP logs endpoint (OpenTelemetry Collector, Loki /otlp, Elasticsearch /_otlp): one log record per event, raw as body',
  schema: otlpSinkSchema,
  create: (instance, deps) => new OtlpSink(instance, deps),
});
