import { randomBytes } from 'node:crypto';
import { makeScopeIds, type Simulator, startSimulator } from '../simulator/index.ts';

/** Scopes the embedded default simulates and polls. */
const SCOPES = 3;

/**
 * The config `auditlog-shipper run` uses without a config file: the simulator as provider, the local
 * Redis (embedded unless REDIS_URL is set), a file sink under ./data. It is an ordinary config document,
 * loaded and validated like any user file, so what it shows is exactly what a user would write.
 */
export function embeddedConfigText(projectIds: readonly string[]): string {
  return `# The embedded default: simulator → shipper → ./data/events.ndjson
daemon:
  dataDir: ./data
providers:
  - name: simulator
    type: stackit
    auditLogUrl: \${AUDITLOG_SIM_URL}
    allowInsecureHttp: true # the simulator listens on loopback
    auth:
      token: \${AUDITLOG_SIM_TOKEN}
    interval: 10s
    overlap: 5m       # the simulator delays up to 5% of events by up to 2 minutes
    settleLag: 10s
    lookback: 1h
    rateLimit: { requestsPerMinute: 60, burst: 60 } # the simulator's own budget: 60 a minute, 60 at once
scopes:
${projectIds.map((id) => `  - provider: simulator\n    project: ${id}`).join('\n')}
sinks:
  - name: events
    type: file
    path: ./data/events.ndjson
`;
}

export interface EmbeddedDefault {
  readonly simulator: Simulator;
  readonly configText: string;
  /** The environment the config's `${…}` references resolve against. */
  readonly env: NodeJS.ProcessEnv;
}

/** Starts the simulator with realistic traffic: late arrivals, a few 5xx and the real 60 requests/minute budget. */
export async function startEmbeddedDefault(): Promise<EmbeddedDefault> {
  const projectIds = makeScopeIds(1, SCOPES);
  const simulator = await startSimulator({
    seed: 1,
    stackit: {
      token: randomBytes(16).toString('hex'),
      scopes: projectIds.map((id) => ({ kind: 'project' as const, id, eventsPerMinute: 6 })),
      delay: { minMs: 1_000, maxMs: 8_000, lateFraction: 0.05, lateMaxMs: 120_000 },
    },
    budget: { capacity: 60, refillPerSecond: 1 },
    faults: { serverErrorRate: 0.02 },
  });
  return {
    simulator,
    configText: embeddedConfigText(projectIds),
    env: { ...process.env, AUDITLOG_SIM_URL: simulator.url, AUDITLOG_SIM_TOKEN: simulator.token },
  };
}
