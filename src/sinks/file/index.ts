import { rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { step } from '../../http/check.ts';
import { defineSink } from '../sink.ts';
import { fileSinkSchema } from './config.ts';
import { FileSink } from './sink.ts';

export const file = defineSink({
  type: 'file',
  description: 'Appends NDJSON to a local file, fsync before acknowledging',
  schema: fileSinkSchema,
  create: (instance, deps) => new FileSink(instance, deps),
  // The directory must exist and take a new file: create one beside the sink's file and remove it.
  async check(instance, deps) {
    const target = resolve(instance.settings.path.replaceAll('{instance}', deps.instanceId));
    const probe = join(dirname(target), `.auditlog-shipper-doctor-${process.pid}`);
    return [
      await step('write', async () => {
        await writeFile(probe, 'auditlog-shipper doctor\n', { flag: 'wx' });
        await rm(probe, { force: true });
        return `${dirname(target)} is writable (events go to ${target})`;
      }),
    ];
  },
});
