import { describe, expect, it } from 'vitest';
import {
  itemDefects,
  MalformedPageError,
  parsePage,
  toAuditEvent,
} from '../../../src/sources/stackit/page.ts';

const scope = { kind: 'project', id: '0b1f3c2e-1234-4abc-8def-0123456789ab' };
const item =
  '{"id":"e-1","eventTimeStamp":"2025-09-02T08:01:22.645123Z","receivedTimeStamp":"2025-09-02T08:01:30.027Z",' +
  '"eventName":"Project member added","eventSource":"membership","sourceIpAddress":"203.0.113.7",' +
  '"initiator":{"id":"sa-1","email":"bot@sa.stackit.cloud"},"resourceId":"r-1","resourceName":"demo","userAgent":"curl\\/8"}';

describe('parsePage', () => {
  it('keeps each item’s bytes and the cursor', () => {
    const page = parsePage(`{"items":[${item}],"cursor":"abc","limit":100}`);
    expect(page.cursor).toBe('abc');
    expect(page.items).toHaveLength(1);
    expect(page.items[0]?.raw).toBe(item);
  });

  it('treats an absent or null cursor as the last page', () => {
    expect(parsePage('{"items":[]}').cursor).toBeUndefined();
    expect(parsePage('{"items":[],"cursor":null}').cursor).toBeUndefined();
  });

  it.each([
    ['invalid JSON', '{"items":[{"id":"a"', 'invalid_json'],
    ['an HTML error page', '<html><body>502 Bad Gateway</body></html>', 'invalid_json'],
    ['missing items', '{"limit":100}', 'invalid_response'],
    ['items not an array', '{"items":{}}', 'invalid_response'],
    ['a cursor of the wrong type', '{"items":[],"cursor":42}', 'invalid_response'],
  ])('refuses %s with a named error', (_what, body, kind) => {
    let caught: unknown;
    try {
      parsePage(body);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(MalformedPageError);
    expect((caught as MalformedPageError).kind).toBe(kind);
  });
});

describe('itemDefects', () => {
  it('names missing or mistyped ids and times', () => {
    expect(itemDefects({ id: 'x', eventTimeStamp: '2025-01-01T00:00:00Z' })).toEqual([]);
    expect(itemDefects({ id: 5, eventTimeStamp: 123 }).map((d) => d.field)).toEqual(['id', 'eventTimeStamp']);
    expect(itemDefects({ id: 'x', eventTimeStamp: 'yesterday' })[0]?.message).toContain('"yesterday"');
    expect(itemDefects('nope')[0]?.field).toBe('item');
  });
});

describe('toAuditEvent', () => {
  it('normalizes the envelope and keeps the raw bytes', () => {
    const [parsed] = parsePage(`{"items":[${item}]}`).items;
    const event = toAuditEvent(parsed!, scope, { id: 'unused', timeMs: 0 });
    expect(event).toEqual({
      id: 'e-1',
      provider: 'stackit',
      scope,
      time: '2025-09-02T08:01:22.645123Z',
      timeMs: Date.UTC(2025, 8, 2, 8, 1, 22, 645),
      receivedAt: '2025-09-02T08:01:30.027Z',
      action: 'Project member added',
      actor: { id: 'sa-1', email: 'bot@sa.stackit.cloud', type: 'service-account' },
      sourceIp: '203.0.113.7',
      resource: { id: 'r-1', name: 'demo', type: 'membership' },
      raw: item,
    });
  });

  it('fills accepted defects from fallbacks and records them as anomalies', () => {
    const raw = '{"id":7,"receivedTimeStamp":"2025-09-02T08:01:30Z"}';
    const [parsed] = parsePage(`{"items":[${raw}]}`).items;
    const event = toAuditEvent(parsed!, scope, { id: 'sha256:abc', timeMs: 1 });
    expect(event.id).toBe('sha256:abc');
    expect(event.time).toBe('2025-09-02T08:01:30Z');
    expect(event.anomalies).toEqual([
      'id: expected a non-empty string, got number',
      'eventTimeStamp: expected an RFC 3339 date-time, got nothing',
      'time taken from receivedTimeStamp',
    ]);
    expect(event.raw).toBe(raw);
  });
});
