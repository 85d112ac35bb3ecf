import type { CheckStep } from '../../http/check.ts';

/** Runs a sink instance's own check and closes it again (its connections, its SDK client). */
export async function checkWith(
  sink: { check(signal: AbortSignal): Promise<CheckStep[]>; close(): Promise<void> },
  signal: AbortSignal,
): Promise<CheckStep[]> {
  try {
    return await sink.check(signal);
  } finally {
    await sink.close();
  }
}
