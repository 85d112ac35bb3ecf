import { z } from 'zod';
import { text } from '../../config/fields.ts';

export const fileSinkSchema = z.strictObject({
  path: text().describe(
    'NDJSON file to append to. "{instance}" is replaced by the process instance id, so replicas sharing a volume never write one file.',
  ),
  fsync: z
    .boolean()
    .default(true)
    .describe(
      'fsync after every batch, before it is acknowledged. Turning it off risks the last batches on power loss.',
    ),
});

export type FileSinkSettings = z.output<typeof fileSinkSchema>;
