import { defineSink } from '../sink.ts';
import { fileSinkSchema } from './config.ts';
import { FileSink } from './sink.ts';

export const file = defineSink({
  type: 'file',
  description: 'Appends NDJSON to a local file, fsync before acknowledging',
  schema: fileSinkSchema,
  create: (instance, deps) => new FileSink(instance, deps),
});
