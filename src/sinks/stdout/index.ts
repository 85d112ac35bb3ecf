import { defineSink } from '../sink.ts';
import { stdoutSinkSchema } from './config.ts';
import { StdoutSink } from './sink.ts';

export const stdout = defineSink({
  type: 'stdout',
  description: 'Writes NDJSON to standard output (logs go to standard error)',
  schema: stdoutSinkSchema,
  create: (instance, deps) => new StdoutSink(instance, deps),
});
