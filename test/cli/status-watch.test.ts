import { describe, expect, it } from 'vitest';
import { type StatusReport, StatusWatch } from '../../src/cli/commands/status.ts';

function report(at: string, committed: number, waiting: number, failures = 0): StatusReport {
  return {
    at,
    scopes: [
      {
        scope: 'stackit:project:a',
        origin: 'config',
        lastPoll: at,
        outcome: failures > 0 ? 'failed' : 'completed',
        lagSeconds: 75,
        failuresInARow: failures,
        lastError: failures > 0 ? 'http: HTTP 503 from GET https://auditlog.api.stackit.cloud/v2/…' : null,
        committed,
      },
    ],
    sinks: [{ sink: 'loki', depth: waiting, oldestAgeSeconds: 12, deadLettered: 1 }],
    paths: [],
  };
}

const rows = (frame: string, first: string) =>
  frame
    .split('\n')
    .find((line) => line.startsWith(first))
    ?.split(/\s{2,}/) ?? [];

describe('status --watch', () => {
  it('draws a header, the scope and sink tables, and no rates on its first frame', () => {
    const frame = new StatusWatch().frame(report('2026-12-02T10:00:00.000Z', 100, 40), 0, 2_000);
    expect(frame.split('\n')[0]).toBe(
      'auditlog-shipper status  2026-12-02 10:00:00 UTC  every 2s  (Ctrl-C quits)',
    );
    expect(frame).toContain('1 scopes (0 failing)  1 sinks  40 events waiting');
    expect(rows(frame, 'SCOPE')).toEqual(['SCOPE', 'LAST POLL', 'LAG', 'EVENTS/S', 'FAILING', 'LAST ERROR']);
    expect(rows(frame, 'stackit:project:a')).toEqual([
      'stackit:project:a',
      '10:00:00 completed',
      '1m15s',
      '-',
      '0',
    ]);
    expect(rows(frame, 'loki')).toEqual(['loki', '40', '-', '12s', '1']);
  });

  it('shows events committed per second and the backlog trend between frames', () => {
    const watch = new StatusWatch();
    watch.frame(report('2026-12-02T10:00:00.000Z', 100, 40), 0, 2_000);
    const second = watch.frame(report('2026-12-02T10:00:02.000Z', 340, 10), 2_000, 2_000);
    expect(rows(second, 'stackit:project:a')[3]).toBe('120');
    expect(rows(second, 'loki')[2]).toBe('-15/s');
    const third = watch.frame(report('2026-12-02T10:00:04.000Z', 340, 13, 2), 4_000, 2_000);
    expect(rows(third, 'stackit:project:a')).toEqual([
      'stackit:project:a',
      '10:00:04 failed',
      '1m15s',
      '0',
      '2',
      'http: HTTP 503 from GET https://auditlog.api.stackit.cloud/…', // cut at 60 characters
    ]);
    expect(rows(third, 'loki')[2]).toBe('+1.5/s');
    expect(third).toContain('1 scopes (1 failing)');
  });
});
