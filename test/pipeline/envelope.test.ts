import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { serializeEnvelope } from '../../src/pipeline/envelope.ts';

const base = {
  id: 'e-1',
  provider: 'stackit',
  scope: { kind: 'project', id: 'p-1' },
  time: '2025-09-02T08:01:22.645123Z',
  timeMs: Date.UTC(2025, 8, 2, 8, 1, 22, 645),
};

describe('serializeEnvelope', () => {
  it('writes one JSON line with the raw event spliced in byte for byte', () => {
    const raw = '{"id":"e-1","path":"a\\/b","n":1.50,"s":"caf\\u00e9"}';
    const line = serializeEnvelope({ ...base, raw }, Date.UTC(2025, 8, 2, 8, 2, 0));
    expect(line).not.toContain('\n');
    expect(line.endsWith(`"raw":${raw}}`)).toBe(true);
    const parsed = JSON.parse(line);
    expect(parsed).toMatchObject({
      id: 'e-1',
      provider: 'stackit',
      scope: { kind: 'project', id: 'p-1' },
      time: base.time,
      seenAt: '2025-09-02T08:02:00.000Z',
      rawSha256: createHash('sha256').update(raw).digest('hex'),
    });
    expect(parsed.raw).toEqual(JSON.parse(raw));
    expect(line.startsWith('{"id":"e-1",')).toBe(true);
  });

  it('joins a pretty-printed raw event onto one line without changing its value', () => {
    const raw = '{\n  "id": "e-1",\n  "text": "line\\nbreak"\r\n}';
    const line = serializeEnvelope({ ...base, raw }, 0);
    expect(line).not.toMatch(/[\r\n]/);
    expect(JSON.parse(line).raw).toEqual(JSON.parse(raw));
    expect(JSON.parse(line).rawSha256).toBe(createHash('sha256').update(raw).digest('hex'));
  });

  it('omits absent optional fields and keeps anomalies', () => {
    const line = serializeEnvelope({ ...base, raw: '{}', anomalies: ['id: derived'] }, 0);
    const parsed = JSON.parse(line);
    expect(parsed).not.toHaveProperty('actor');
    expect(parsed.anomalies).toEqual(['id: derived']);
  });
});
