import { getContainerRuntimeClient } from 'testcontainers';

/**
 * Whether a container engine is reachable; when it is not, the suites skip and say why, loudly (a
 * silent skip would look like a pass).
 */
export async function dockerUnavailable(): Promise<string | undefined> {
  try {
    await getContainerRuntimeClient();
    return undefined;
  } catch (error) {
    const reason = `no container engine reachable (${(error as Error).message.split('\n')[0]}); the real-image sink suites are SKIPPED`;
    console.warn(`\n⚠ test/containers: ${reason}\n`);
    return reason;
  }
}
