import { z } from 'zod';

export const stdoutSinkSchema = z.strictObject({});

export type StdoutSinkSettings = z.output<typeof stdoutSinkSchema>;
