import { type Logger, pino } from 'pino';

/** A logger that records lines for assertions instead of printing them. */
export function memoryLogger(): { log: Logger; lines: () => Array<Record<string, unknown>> } {
  const chunks: string[] = [];
  const log = pino(
    { level: 'debug' },
    {
      write(chunk: string) {
        chunks.push(chunk);
      },
    },
  );
  return { log, lines: () => chunks.map((c) => JSON.parse(c) as Record<string, unknown>) };
}

export const silentLogger: Logger = pino({ level: 'silent' });
