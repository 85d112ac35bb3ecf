import { checkWith } from '../shared/check.ts';
import { defineSink } from '../sink.ts';
import { lokiSinkSchema } from './config.ts';
import { LokiSink } from './sink.ts';

export const loki = defineSink({
  type: 'loki',
  description: 'Grafana Loki push API (protobuf+snappy or JSON), one entry per event at its own time',
  schema: lokiSinkSchema,
  create: (instance, deps) => new LokiSink(instance, deps),
  check: (instance, deps, signal) => checkWith(new LokiSink(instance, deps), signal),
});
