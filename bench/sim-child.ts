// The simulator in its own process, so the benchmark measures the shipper's CPU and not the API's.
// argv: a JSON object { scopes, eventsPerMinute, seed, delayMaxMs }. Prints { url, token, projects }.
import { makeScopeIds, startSimulator } from '../src/simulator/index.ts';

const options = JSON.parse(process.argv[2] ?? '{}') as {
  scopes: number;
  eventsPerMinute: number;
  seed: number;
  delayMaxMs?: number;
};
const projects = makeScopeIds(options.seed, options.scopes);
const sim = await startSimulator({
  seed: options.seed,
  stackit: {
    scopes: projects.map((id) => ({
      kind: 'project' as const,
      id,
      eventsPerMinute: options.eventsPerMinute,
    })),
    delay: {
      minMs: 0,
      maxMs: options.delayMaxMs ?? 500,
      lateFraction: 0,
      lateMaxMs: options.delayMaxMs ?? 500,
    },
  },
  cacheEvents: 2_000_000,
  requestLogSize: 1_000,
});
process.stdout.write(`${JSON.stringify({ url: sim.url, token: sim.token, projects })}\n`);
process.on('SIGTERM', () => void sim.close().then(() => process.exit(0)));
