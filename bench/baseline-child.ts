// The ceiling: the same STACKIT source code pages the same windows and appends NDJSON lines, with no
// Redis, no dedupe, no outbox. argv: JSON { url, token, projects, lookback, out }.
import { open } from 'node:fs/promises';
import { pino } from 'pino';
import { withEnv } from '../src/config/fields.ts';
import { serializeEnvelope } from '../src/pipeline/envelope.ts';
import { stackitProviderSchema, stackitScopeSchema } from '../src/sources/stackit/config.ts';
import { StackitSource } from '../src/sources/stackit/source.ts';

const o = JSON.parse(process.argv[2] ?? '{}') as {
  url: string;
  token: string;
  projects: string[];
  lookback: string;
  out: string;
};
const log = pino({ level: 'silent' });
const settings = withEnv({ T: o.token }, () =>
  stackitProviderSchema.parse({
    auditLogUrl: o.url,
    auth: { token: '${T}' },
    lookback: o.lookback,
    overlap: '5s',
    settleLag: '1s',
  }),
);
const source = new StackitSource(
  { name: 'sim', type: 'stackit', settings },
  { log, instanceId: 'bench', onRequest: () => {} },
);
const file = await open(o.out, 'a');
const started = performance.now();
let events = 0;
await Promise.all(
  o.projects.map(async (id) => {
    const scope = {
      key: `stackit:project:${id}`,
      provider: 'sim',
      ref: { kind: 'project', id },
      settings: stackitScopeSchema.parse({ project: id }),
    };
    for await (const page of source.pull(scope, undefined, {
      signal: new AbortController().signal,
      log,
      now: Date.now,
    })) {
      if (page.events.length === 0) continue;
      const now = Date.now();
      await file.write(`${page.events.map((e) => serializeEnvelope(e, now)).join('\n')}\n`);
      await file.datasync();
      events += page.events.length;
    }
  }),
);
await file.close();
await source.close();
const seconds = (performance.now() - started) / 1000;
const cpu = process.cpuUsage();
process.stdout.write(
  `${JSON.stringify({ events, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024) })}\n`,
);
