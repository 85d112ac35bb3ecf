import { type Logger, pino } from 'pino';
import type { LogLevel } from '../config/types.ts';

/**
 * Field paths pino censors wherever they appear. Credentials are Secret objects that already render as
 * `[redacted]`; this is the second line of defence for anything that slips through as a plain string.
 */
export const REDACTED_PATHS = [
  'token',
  '*.token',
  'password',
  '*.password',
  'secret',
  '*.secret',
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'apiKey',
  '*.apiKey',
  'privateKey',
  '*.privateKey',
  'accessKey',
  '*.secretAccessKey',
];

export interface LoggerOptions {
  readonly level: LogLevel;
  readonly instanceId: string;
  /** Where JSON lines go; standard error by default, keeping standard output for the stdout sink. */
  readonly destination?: NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: { instance: options.instanceId },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? pino.destination({ fd: 2, sync: false }),
  );
}
