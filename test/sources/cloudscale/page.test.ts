import { describe, expect, it } from 'vitest';
import {
  entryDefects,
  MalformedPageError,
  parsePage,
  toAuditEvent,
} from '../../../src/sources/cloudscale/page.ts';

const SCOPE = { kind: 'project', id: 'my-project' } as const;
const E1 =
  '{"timestamp":"2025-09-03T11:15:19.391447Z","action":"volume_create","message":"Volume \'caf\\u00e9\' has been created","ip_address":"185.98.122.110","actor":{"user":{"email":"alice@example.com"}},"subject":{"project":{"uuid":"2f3c0000-0000-4000-8000-000000000001","name":"prod"}}}';
const E2 =
  '{ "action" : "server_stop", "timestamp" : "2025-09-03T11:15:20+00:00", "path": "\\/v1\\/servers", "size": 1.50 }';

describe('parsing a project-logs page', () => {
  it('keeps each entry byte for byte and reads the links', () => {
    const body = `{"next":"https://api.cloudscale.ch/v1/project-logs?cursor=10225","poll_more":"https://api.cloudscale.ch/v1/project-logs?cursor=10225","results":[${E1},\n  ${E2}]}`;
    const page = parsePage(body);
    expect(page.entries.map((e) => e.raw)).toEqual([E1, E2]);
    expect(page.next).toBe('https://api.cloudscale.ch/v1/project-logs?cursor=10225');
    expect(page.pollMore).toBe('https://api.cloudscale.ch/v1/project-logs?cursor=10225');
  });

  it('reads next: null as the end, and tolerates unknown members', () => {
    const page = parsePage(
      '{"previous":null,"next":null,"count":0,"poll_more":"https://x/v1/project-logs?cursor=1","results":[]}',
    );
    expect(page.next).toBeUndefined();
    expect(page.pollMore).toBe('https://x/v1/project-logs?cursor=1');
    expect(page.entries).toEqual([]);
  });

  it.each([
    ['not JSON', '{"results":[{"timesta', 'invalid_json', /not JSON/],
    ['an HTML page', '<html>502</html>', 'invalid_json', /not JSON/],
    ['no results', '{"next":null,"poll_more":"https://x/"}', 'invalid_response', /results/],
    ['results not a list', '{"results":{},"next":null}', 'invalid_response', /results/],
    ['a numeric poll_more', '{"results":[],"next":null,"poll_more":42}', 'invalid_response', /poll_more/],
  ])('refuses %s as a whole', (_what, body, kind, message) => {
    let error: unknown;
    try {
      parsePage(body);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(MalformedPageError);
    expect((error as MalformedPageError).kind).toBe(kind);
    expect((error as Error).message).toMatch(message);
  });
});

describe('entry defects', () => {
  it('names what is missing for an event', () => {
    expect(entryDefects(JSON.parse(E1))).toEqual([]);
    expect(entryDefects('x')[0]).toMatchObject({ field: 'entry', message: 'expected an object, got "x"' });
    expect(entryDefects({ action: 'a' })[0]).toMatchObject({ field: 'timestamp', message: /got nothing/ });
    expect(entryDefects({ timestamp: 1756898119391 })[0]).toMatchObject({
      field: 'timestamp',
      message: /got number/,
    });
    expect(entryDefects({ timestamp: '2025-02-30T00:00:00Z' })[0]?.field).toBe('timestamp');
  });
});

describe('normalizing an entry', () => {
  const event = (value: unknown, raw = JSON.stringify(value)) =>
    toAuditEvent({ index: 0, value, raw, depth: 1 }, SCOPE, 'id-1', Date.UTC(2026, 0, 1));

  it('maps the known fields and keeps raw untouched', () => {
    const e = event(JSON.parse(E1), E1);
    expect(e).toEqual({
      id: 'id-1',
      provider: 'cloudscale',
      scope: SCOPE,
      time: '2025-09-03T11:15:19.391447Z',
      timeMs: Date.UTC(2025, 8, 3, 11, 15, 19, 391),
      action: 'volume_create',
      actor: { email: 'alice@example.com', type: 'user' },
      sourceIp: '185.98.122.110',
      resource: { id: '2f3c0000-0000-4000-8000-000000000001', name: 'prod', type: 'project' },
      raw: E1,
    });
  });

  it('reads timestamps with an offset as UTC', () => {
    expect(event(JSON.parse(E2), E2).time).toBe('2025-09-03T11:15:20Z');
  });

  it.each([
    [{ api_token: { uuid: 'u-1', description: 'ci' } }, { id: 'u-1', type: 'api-token' }],
    [{ system: {} }, { type: 'system' }],
    [{ admin: {} }, { type: 'admin' }],
    ['bob@example.com', { email: 'bob@example.com', type: 'user' }],
    [{ service: { id: 's-1' } }, { id: 's-1', type: 'service' }],
  ])('maps actor %j', (actor, expected) => {
    const e = event({ timestamp: '2025-09-03T11:15:19Z', actor, ip_address: null });
    expect(e.actor).toEqual(expected);
    expect(e.sourceIp).toBeUndefined();
    expect(e.anomalies).toBeUndefined();
  });

  it('maps organization and user subjects', () => {
    const org = event({
      timestamp: '2025-09-03T11:15:19Z',
      subject: {
        organization: {
          href: 'https://api.cloudscale.ch/v1/organizations/o-1',
          uuid: 'o-1',
          name: 'Example AG',
        },
      },
    });
    expect(org.resource).toEqual({ id: 'o-1', name: 'Example AG', type: 'organization' });
    const user = event({ timestamp: '2025-09-03T11:15:19Z', subject: { user: { email: 'x@example.com' } } });
    expect(user.resource).toEqual({ id: 'x@example.com', type: 'user' });
  });

  it('records unrecognised shapes as anomalies instead of dropping anything', () => {
    const raw =
      '{"timestamp":"2025-09-03T11:15:19Z","actor":["a","b"],"subject":{"a":{},"b":{}},"ip_address":7,"action":5}';
    const e = event(JSON.parse(raw), raw);
    expect(e.anomalies).toEqual([
      'actor: unrecognised shape (an array)',
      'subject: unrecognised shape (object)',
      'ip_address: expected a string or null, got number',
      'action: expected a string, got number',
    ]);
    expect(e.actor).toBeUndefined();
    expect(e.raw).toBe(raw);
  });

  it('fills a missing time from the fetch time, and says so', () => {
    const e = event({ action: 'server_stop' });
    expect(e.time).toBe('2026-01-01T00:00:00.000Z');
    expect(e.anomalies).toEqual([
      'timestamp: expected an ISO 8601 date-time, got nothing',
      'time is when the shipper fetched the entry',
    ]);
  });
});
