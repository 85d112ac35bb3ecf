import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OutboxEvent } from '../../src/pipeline/envelope.ts';
import { serializeEnvelope } from '../../src/pipeline/envelope.ts';
import { elasticsearchSinkSchema } from '../../src/sinks/elasticsearch/config.ts';
import { ElasticsearchSink } from '../../src/sinks/elasticsearch/sink.ts';
import { lokiSinkSchema } from '../../src/sinks/loki/config.ts';
import { LokiSink } from '../../src/sinks/loki/sink.ts';
import type { Verdict } from '../../src/sinks/sink.ts';
import { silentLogger } from '../support/logger.ts';

interface Answer {
  status: number;
  body: string;
}

/** An answer as served, with the `_id`s of the bulk request it answered (in order). */
interface Served extends Answer {
  ids: string[];
}

let server: Server;
let url = '';
let answers: Answer[] = [];
let served: Served[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const answer = answers[Math.min(served.length, answers.length - 1)] ?? { status: 500, body: '' };
      const ids = [
        ...Buffer.concat(chunks)
          .toString('utf8')
          .matchAll(/"_id":"([^"]+)"/g),
      ].map((m) => m[1] as string);
      served.push({ ...answer, ids });
      res.writeHead(answer.status, { 'content-type': 'application/json' }).end(answer.body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const now = Date.now();
function events(n: number): OutboxEvent[] {
  return Array.from({ length: n }, (_, i) => {
    const timeMs = now - 60_000 + i;
    const event = {
      id: `e${i}`,
      provider: 'stackit',
      scope: { kind: 'project', id: 'p' },
      time: new Date(timeMs).toISOString(),
      timeMs,
      raw: `{"id":"e${i}"}`,
    };
    return {
      entryId: `${i}-0`,
      id: event.id,
      scopeKey: 's',
      timeMs,
      seenAtMs: now,
      line: serializeEnvelope(event, now),
    };
  });
}

const deps = { log: silentLogger, instanceId: 'fuzz', onRequest: () => {} };

/** Statuses and bodies a store, a proxy or a broken network path might answer with. */
function answer(valid: fc.Arbitrary<string>): fc.Arbitrary<Answer> {
  return fc.oneof(
    // Mostly the store's real answer, so the verdict logic is exercised, not just the error paths.
    { arbitrary: fc.record({ status: fc.constantFrom(200, 200, 204), body: valid }), weight: 4 },
    {
      arbitrary: fc.record({
        status: fc.constantFrom(260, 400, 401, 404, 413, 429, 500, 502, 503),
        body: valid,
      }),
      weight: 2,
    },
    {
      arbitrary: fc.record({
        status: fc.integer({ min: 200, max: 599 }),
        body: fc.string({ maxLength: 80 }),
      }),
      weight: 1,
    },
    {
      arbitrary: fc.record({ status: fc.constant(200), body: fc.jsonValue().map((v) => JSON.stringify(v)) }),
      weight: 1,
    },
  );
}

/** Sends, and returns the verdicts, or 'threw' (a thrown send means: retry the whole batch). */
async function attempt(send: () => Promise<readonly Verdict[]>): Promise<readonly Verdict[] | 'threw'> {
  try {
    return await send();
  } catch {
    return 'threw';
  }
}

describe('sink answers (fuzz): an event counts as stored only when the store said so', () => {
  it('Elasticsearch: delivered or duplicate only for items the bulk answer acknowledged one by one', async () => {
    const sink = new ElasticsearchSink(
      {
        name: 'es',
        type: 'elasticsearch',
        settings: elasticsearchSinkSchema.parse({
          url,
          mode: 'index',
          target: 'audit',
          compression: 'none',
          manageTemplate: false,
        }),
      },
      deps,
    );
    const itemStatus = fc.constantFrom(201, 200, 409, 400, 429, 500, 503);
    /** A bulk answer for n documents (sometimes the wrong count: the sink must not trust it). */
    const bulk = (n: number) =>
      fc
        .array(
          fc.record({
            status: itemStatus,
            type: fc.constantFrom('version_conflict_engine_exception', 'mapper_parsing_exception', 'x'),
          }),
          { minLength: n, maxLength: n },
        )
        .chain((items) => fc.constantFrom(items, items, items, items, items.slice(1), [...items, ...items]))
        .map((items) =>
          JSON.stringify({
            errors: items.some((i) => i.status >= 300),
            items: items.map((i) => ({
              create: {
                _index: 'audit',
                status: i.status,
                ...(i.status >= 300 ? { error: { type: i.type, reason: 'r' } } : {}),
              },
            })),
          }),
        );
    let judged = 0;
    await fc.assert(
      fc.asyncProperty(
        fc
          .integer({ min: 1, max: 4 })
          .chain((n) => fc.tuple(fc.array(answer(bulk(n)), { minLength: 1, maxLength: 4 }), fc.constant(n))),
        async ([list, n]) => {
          answers = list;
          served = [];
          const batch = events(n);
          const verdicts = await attempt(() => sink.send(batch, new AbortController().signal));
          if (verdicts === 'threw') return;
          expect(verdicts).toHaveLength(n);
          // Every stored verdict is backed by a 200 answer whose item, at the position of that event in
          // the request it answered, says stored (2xx) or already there (409).
          verdicts.forEach((v, i) => {
            if (v.kind !== 'delivered' && v.kind !== 'duplicate') return;
            judged++;
            const id = batch[i]?.id as string;
            const backed = served.some((answer) => {
              if (answer.status !== 200) return false;
              const at = answer.ids.indexOf(id);
              const items = (JSON.parse(answer.body) as { items?: Array<{ create: { status: number } }> })
                .items;
              const status = at < 0 ? undefined : items?.[at]?.create.status;
              if (status === undefined || items?.length !== answer.ids.length) return false;
              return v.kind === 'delivered' ? status >= 200 && status < 300 : status === 409;
            });
            expect(backed, `${v.kind} verdict for ${id} without a store answer saying so`).toBe(true);
          });
        },
      ),
      { numRuns: 300 },
    );
    expect(judged).toBeGreaterThan(10); // the property was exercised, not vacuously true
    await sink.close();
  });

  it('Loki: delivered only after a 2xx that means stored; refusals are named; nothing else passes', async () => {
    const sink = new LokiSink(
      {
        name: 'loki',
        type: 'loki',
        settings: lokiSinkSchema.parse({ url, format: 'json', compression: 'none' }),
      },
      deps,
    );
    const lokiAnswers = fc.oneof(
      fc.constant(''),
      fc.constantFrom(
        'entry for stream \'{scope_id="p"}\' has timestamp too old: 2020-01-01T00:00:00Z',
        "entry with timestamp 2020-01-01 00:00:00 +0000 UTC ignored, reason: 'entry too far behind'",
        'line too long',
        'error at least one label pair is required per stream',
      ),
    );
    let delivered = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(answer(lokiAnswers), { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 1, max: 4 }),
        async (list, n) => {
          answers = list;
          served = [];
          const verdicts = await attempt(() => sink.send(events(n), new AbortController().signal));
          if (verdicts === 'threw') return;
          expect(verdicts).toHaveLength(n);
          const stored = served.some((a) => a.status === 204 || a.status === 200);
          for (const v of verdicts) {
            if (v.kind === 'delivered') {
              delivered++;
              expect(stored).toBe(true);
            }
            if (v.kind === 'rejected') expect(v.reason.length).toBeGreaterThan(0);
          }
          if (!stored)
            expect(verdicts.every((v) => v.kind !== 'delivered' && v.kind !== 'duplicate')).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
    expect(delivered).toBeGreaterThan(50);
    await sink.close();
  });
});
