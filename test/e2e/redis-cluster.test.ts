import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { RedisKeys } from '../../src/pipeline/keys.ts';
import { waitFor } from '../support/daemon.ts';
import { readSinkFiles, summary } from '../support/oracle.ts';
import { startTestCluster, type TestCluster } from '../support/redis-ha.ts';
import { type Scenario, startScenario } from '../support/scenario.ts';

let scenario: Scenario | undefined;
let cluster: TestCluster | undefined;
afterEach(async () => {
  await scenario?.close();
  await cluster?.stop();
  scenario = undefined;
  cluster = undefined;
});

describe('Redis Cluster (three masters)', () => {
  it('puts every key the shipper and its BullMQ queues use in the slot of the prefix hash tag', async () => {
    cluster = await startTestCluster();
    const c = new Redis(cluster.ports[0] as number, '127.0.0.1');
    try {
      for (const prefix of ['{auditlog}', 'team-a:{prod-shipper}']) {
        const keys = new RedisKeys(prefix);
        const scope = 'stackit:project:0b1f3c2e-1234-4abc-8def-0123456789ab';
        const all = [
          keys.checkpoint(scope),
          keys.seen(scope),
          keys.lease(scope),
          keys.status(scope),
          keys.fence(),
          keys.outbox('loki'),
          keys.deadLetter('loki'),
          keys.consumerHeartbeat('loki', 'pod-1:ab12'),
          keys.leader(),
          keys.rateBucket('stackit:sa-1:auditlog'),
          keys.discoveredScopes(),
          keys.discoveryRoots(),
          keys.discoveryRechecks(),
          keys.backfill(scope),
          keys.backfills(),
          `${prefix}:batches:s3`,
          // BullMQ names its keys <prefix>:<queue>:…; the daemon gives it the shipper's prefix.
          `${prefix}:poll:wait`,
          `${prefix}:poll:repeat`,
          `${prefix}:backfill:active`,
        ];
        const slots = new Set(await Promise.all(all.map((key) => c.call('CLUSTER', 'KEYSLOT', key))));
        expect([...slots]).toEqual([await c.call('CLUSTER', 'KEYSLOT', prefix)]);
      }
    } finally {
      c.disconnect();
    }
  });

  it('runs the whole pipeline: every event once at the file sink', async () => {
    cluster = await startTestCluster();
    scenario = await startScenario({ projects: 3, eventsPerMinute: 300, historyMs: 2 * 60_000 });
    const s = scenario;
    const sink = join(s.dir, 'events.ndjson');
    const daemon = s.daemon(await s.config({ redisUrl: cluster.url }));
    await waitFor(
      'the first events in the sink',
      async () => (await readSinkFiles([sink])).length > 50,
      30_000,
    );
    s.sim.stopTraffic();
    const verdict = await s.settle(async () => [sink], 45_000);
    console.log(`cluster: ${summary(verdict)}`);
    expect(verdict.missing).toEqual([]);
    expect(verdict.unexpected).toEqual([]);
    expect(verdict.duplicated).toEqual([]);
    daemon.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
    expect(await daemon.strayLines()).toEqual([]);
  }, 120_000);
});
