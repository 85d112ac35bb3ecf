import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withEnv } from '../../src/config/fields.ts';
import { ProviderError } from '../../src/sources/errors.ts';
import { arrayElementSpans } from '../../src/sources/json-spans.ts';
import { stackitProviderSchema, stackitScopeSchema } from '../../src/sources/stackit/config.ts';
import { MalformedPageError, parsePage, toAuditEvent } from '../../src/sources/stackit/page.ts';
import { StackitSource } from '../../src/sources/stackit/source.ts';
import { silentLogger } from '../support/logger.ts';

const scope = { kind: 'project', id: '0b1f3c2e-1234-4abc-8def-0123456789ab' };

/** Valid-looking entries with arbitrary extra content, and arbitrary JSON in their place. */
const entry = fc.oneof(
  fc.record(
    {
      id: fc.oneof(fc.uuid(), fc.string(), fc.integer()),
      eventTimeStamp: fc.oneof(
        fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
        fc.string(),
        fc.integer(),
      ),
      eventName: fc.string(),
      initiator: fc.oneof(fc.record({ id: fc.string(), email: fc.emailAddress() }), fc.jsonValue()),
      request: fc.jsonValue(),
    },
    { requiredKeys: [] },
  ),
  fc.jsonValue(),
);
const page = fc.record(
  { items: fc.array(entry, { maxLength: 8 }), cursor: fc.option(fc.string(), { nil: undefined }) },
  { requiredKeys: [] },
);

describe('provider responses (fuzz)', () => {
  it('item byte ranges always parse back to the items JSON.parse sees, whatever the spacing', () => {
    fc.assert(
      fc.property(
        fc.array(fc.jsonValue(), { maxLength: 10 }),
        fc.constantFrom(0, 1, 2, '\t'),
        (items, indent) => {
          const body = JSON.stringify({ before: items[0] ?? null, items, after: 'x' }, null, indent);
          const spans = arrayElementSpans(body, 'items');
          expect(spans?.map(([a, b]) => JSON.parse(body.slice(a, b)))).toEqual(JSON.parse(body).items);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('a page either parses with every raw item intact or fails as a malformed page, never otherwise', () => {
    const body = fc.oneof(
      page.map((p) => JSON.stringify(p)),
      page.chain((p) => {
        const text = JSON.stringify(p);
        return fc.nat({ max: text.length }).map((cut) => text.slice(0, cut)); // truncated bodies
      }),
      fc.string({ maxLength: 200 }),
      fc.jsonValue().map((v) => JSON.stringify(v)),
    );
    fc.assert(
      fc.property(body, (text) => {
        let parsed: ReturnType<typeof parsePage>;
        try {
          parsed = parsePage(text);
        } catch (error) {
          expect(error).toBeInstanceOf(MalformedPageError);
          return;
        }
        const items = (JSON.parse(text) as { items: unknown[] }).items;
        expect(parsed.items.map((i) => JSON.parse(i.raw))).toEqual(items);
        for (const item of parsed.items) {
          // Whatever the item holds, normalizing it yields an event with an id, a time and the raw bytes.
          const event = toAuditEvent(item, scope, { id: 'sha256:x', timeMs: 0 });
          expect(event.id.length).toBeGreaterThan(0);
          expect(Number.isFinite(event.timeMs)).toBe(true);
          expect(event.raw).toBe(item.raw);
        }
      }),
      { numRuns: 1_000 },
    );
  });
});

describe('the STACKIT source against an API answering garbage (fuzz)', () => {
  let server: Server;
  let respond: () => { status: number; body: string } = () => ({ status: 200, body: '{"items":[]}' });
  let url = '';
  beforeAll(async () => {
    server = createServer((_req, res) => {
      const { status, body } = respond();
      res.writeHead(status, { 'content-type': 'application/json' }).end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('ends every poll with pages or a ProviderError, and sets the high-water mark only after a window’s last page', async () => {
    const settings = withEnv({ T: 'secret-token' }, () =>
      stackitProviderSchema.parse({
        auditLogUrl: url,
        auth: { token: '${T}' },
        lookback: '2h',
        retry: { attempts: 1, initialBackoff: '10ms', maxBackoff: '10ms' },
      }),
    );
    const source = new StackitSource(
      { name: 'fuzz', type: 'stackit', settings },
      { log: silentLogger, instanceId: 'f', onRequest: () => {} },
    );
    const answers = fc.array(
      fc.oneof(
        page.map((p) => ({ status: 200, body: JSON.stringify(p) })),
        fc.record({
          status: fc.constantFrom(200, 400, 401, 404, 429, 500, 503),
          body: fc.string({ maxLength: 100 }),
        }),
      ),
      { minLength: 1, maxLength: 6 },
    );
    await fc.assert(
      fc.asyncProperty(answers, async (list) => {
        const served: Array<{ status: number; body: string }> = [];
        respond = () => {
          const answer = list[Math.min(served.length, list.length - 1)] as { status: number; body: string };
          served.push(answer);
          return answer;
        };
        const yielded: Array<number | undefined> = [];
        const poll = {
          key: `stackit:project:${scope.id}`,
          provider: 'fuzz',
          ref: scope,
          settings: stackitScopeSchema.parse({ project: scope.id }),
        };
        try {
          for await (const p of source.pull(poll, undefined, {
            signal: new AbortController().signal,
            log: silentLogger,
            now: Date.now,
          })) {
            yielded.push(p.checkpoint.watermarkMs);
          }
        } catch (error) {
          expect(error).toBeInstanceOf(ProviderError);
          expect((error as ProviderError).message).not.toContain('secret-token');
        }
        // Each page came from one 200 answer, in order; the high-water mark is only set by a page
        // that had no cursor (the window's last), never while pages of the window were unread.
        yielded.forEach((watermark, i) => {
          const answer = served[i] as { status: number; body: string };
          expect(answer.status).toBe(200);
          const cursor = (JSON.parse(answer.body) as { cursor?: unknown }).cursor;
          expect(watermark !== undefined).toBe(cursor === undefined || cursor === null);
        });
      }),
      { numRuns: 150 },
    );
    await source.close();
  });
});
