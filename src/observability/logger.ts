import { type Logger, pino } from 'pino';
import { redactSecrets } from '../config/redact.ts';
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
      // Every line passes the redactor: a provider or a sink that echoes a credential in an error body
      // puts it into messages and error objects, under any field name.
      hooks: { streamWrite: redactSecrets },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? pino.destination({ fd: 2, sync: false }),
  );
}

/**
 * Logs a recurring error at most once per `intervalMs`, with how many were held back. During a Redis
 * outage every client retries several times a second; one line every few seconds says it all.
 */
export function throttledErrorLog(
  log: Logger,
  message: string,
  intervalMs = 5_000,
): (error: unknown) => void {
  let lastMs = 0;
  let suppressed = 0;
  return (error) => {
    const now = Date.now();
    if (now - lastMs < intervalMs) {
      suppressed++;
      return;
    }
    log.error({ err: error, suppressed }, message);
    lastMs = now;
    suppressed = 0;
  };
}
