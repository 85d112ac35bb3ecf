import { describe, expect, it } from 'vitest';
import { decodeJsonRequest } from '../../../src/otlp/json.ts';
import { EMPTY_RECORD, type KeyValue, type LocatedRecord } from '../../../src/otlp/model.ts';
import { sha256Hex } from '../../../src/pipeline/envelope.ts';
import { mapTelemetryRecord, timeOf } from '../../../src/sources/stackit-telemetry/record.ts';

const attrs = (entries: Record<string, string>): KeyValue[] =>
  Object.entries(entries).map(([key, value]) => ({ key, value: { kind: 'string', value } }));

function located(attributes: KeyValue[], time = 1_764_666_000_000_000_123n): LocatedRecord {
  return {
    resource: { attributes: [], droppedAttributesCount: 0 },
    resourceSchemaUrl: '',
    scope: { name: 'stackit-audit-provider', version: '', attributes: [], droppedAttributesCount: 0 },
    scopeSchemaUrl: '',
    record: { ...EMPTY_RECORD, timeUnixNano: time, body: { kind: 'string', value: 'done' }, attributes },
    path: 'resourceLogs[0].scopeLogs[0].logRecords[0]',
  };
}

describe('mapping a STACKIT Telemetry Router record', () => {
  it('uses the documented attributes and keeps nanoseconds', () => {
    const { event, scopeKey, mapped } = mapTelemetryRecord(
      located(
        attrs({
          'stackit.log.id': 'abc',
          'stackit.resource.type': 'FOLDER',
          'stackit.resource.id': 'DEADBEEF-0000-4000-8000-000000000001',
          'stackit.action': 'iam.member.add',
          'stackit.initiator': 'alice@example.com',
          'client.address': '2001:db8::1',
        }),
      ),
      0,
    );
    expect(mapped).toBe(true);
    expect(scopeKey).toBe('stackit:folder:deadbeef-0000-4000-8000-000000000001');
    expect(event).toMatchObject({
      id: 'abc',
      time: '2025-12-02T09:00:00.000000123Z',
      timeMs: 1_764_666_000_000,
      action: 'iam.member.add',
      actor: { id: 'alice@example.com' },
      sourceIp: '2001:db8::1',
    });
    expect(decodeJsonRequest(event.raw).records[0]?.record.timeUnixNano).toBe(1_764_666_000_000_000_123n);
  });

  it('never drops what it cannot map: hash id, unknown scope, arrival time, each as an anomaly', () => {
    const { event, scopeKey, mapped } = mapTelemetryRecord(located([], 0n), Date.UTC(2026, 11, 2));
    expect(mapped).toBe(false);
    expect(event.id).toBe(`otlp-sha256:${sha256Hex(event.raw)}`);
    expect(scopeKey).toBe('stackit:unknown:unknown');
    expect(event.time).toBe('2026-12-02T00:00:00.000Z');
    expect(event.anomalies).toHaveLength(3);
  });

  it('formats nanosecond times and refuses impossible ones', () => {
    expect(timeOf(1n)?.iso).toBe('1970-01-01T00:00:00.000000001Z');
    expect(timeOf(0n)).toBeUndefined();
    expect(timeOf(2n ** 64n - 1n)?.iso).toBe('2554-07-21T23:34:33.709551615Z');
    expect(timeOf(10n ** 21n)).toBeUndefined();
  });
});
