// The simulator in its own process, so the benchmark measures the shipper's CPU and not the API's.
import { makeScopeIds, startSimulator } from '../src/simulator/index.ts';

const [scopes, rate, seed] = process.argv.slice(2).map(Number) as [number, number, number];
const projects = makeScopeIds(seed, scopes);
const sim = await startSimulator({
  seed,
  stackit: {
    scopes: projects.map((id) => ({ kind: 'project' as const, id, eventsPerMinute: rate })),
    delay: { minMs: 0, maxMs: 500, lateFraction: 0, lateMaxMs: 500 },
  },
  cacheEvents: 2_000_000,
});
process.stdout.write(`${JSON.stringify({ url: sim.url, token: sim.token, projects })}\n`);
process.on('SIGTERM', () => void sim.close().then(() => process.exit(0)));
