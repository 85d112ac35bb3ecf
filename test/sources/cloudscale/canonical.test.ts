import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../../src/sources/cloudscale/canonical.ts';
import { EntryIds } from '../../../src/sources/cloudscale/event-id.ts';

describe('canonical JSON (RFC 8785)', () => {
  it('serializes numbers, strings and literals as RFC 8785 §3.2.2 shows', () => {
    // The example of RFC 8785 §3.2.2, as it appears on the wire.
    const wire =
      '{\n  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],\n' +
      '  "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",\n' +
      '  "literals": [null, true, false]\n}';
    expect(canonicalJson(JSON.parse(wire))).toBe(
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],' +
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });

  it('sorts keys by UTF-16 code units (RFC 8785 §3.2.3)', () => {
    const wire =
      '{"\\u20ac":"Euro Sign","\\r":"Carriage Return","\\ufb33":"Hebrew Letter Dalet With Dagesh",' +
      '"1":"One","\\ud83d\\ude00":"Emoji: Grinning Face","\\u0080":"Control",' +
      '"\\u00f6":"Latin Small Letter O With Diaeresis"}';
    const canonical = canonicalJson(JSON.parse(wire));
    // (Re-parsing would not do: JavaScript objects list integer-like keys such as "1" first.)
    const order = [...canonical.matchAll(/"([^"]+)":"[^"]*"/g)].map((m) => JSON.parse(`"${m[1]}"`) as string);
    expect(order.map((k) => k.codePointAt(0))).toEqual([0x0d, 0x31, 0x80, 0xf6, 0x20ac, 0x1f600, 0xfb33]);
  });

  it('gives one spelling for one entry, whatever key order, whitespace, escapes or number form', () => {
    const spellings = [
      '{"timestamp":"2025-09-03T11:15:19.391447Z","action":"volume_create","message":"Volume \'café\' has been created","size":1.50,"ip_address":null,"actor":{"user":{"email":"a@example.com"}}}',
      '{ "actor" : { "user" : { "email" : "a@example.com" } }, "ip_address" : null, "size": 1.5e0,\n "message":"Volume \'caf\\u00e9\' has been created","action":"volume\\u005fcreate","timestamp":"2025-09-03T11:15:19.391447Z" }',
      '{"size":15e-1,"message":"Volume \'caf\\u00E9\' has been created","actor":{"user":{"email":"a@example.com"}},"timestamp":"2025\\u002d09-03T11:15:19.391447Z","ip_address":null,"action":"volume_create"}',
    ];
    const canonical = spellings.map((s) => canonicalJson(JSON.parse(s)));
    expect(new Set(canonical).size).toBe(1);
    expect(canonical[0]).toBe(
      '{"action":"volume_create","actor":{"user":{"email":"a@example.com"}},"ip_address":null,' +
        '"message":"Volume \'café\' has been created","size":1.5,"timestamp":"2025-09-03T11:15:19.391447Z"}',
    );
  });

  it('keeps what distinguishes values: array order, nesting, types', () => {
    expect(canonicalJson([1, 2])).not.toBe(canonicalJson([2, 1]));
    expect(canonicalJson({ a: '1' })).not.toBe(canonicalJson({ a: 1 }));
    expect(canonicalJson({ a: { b: null } })).toBe('{"a":{"b":null}}');
    expect(canonicalJson(-0)).toBe('0');
    expect(() => canonicalJson(Number.NaN)).toThrow(/not representable/);
  });
});

describe('event ids', () => {
  const entry = {
    timestamp: '2025-09-03T11:15:19.391447Z',
    action: 'server_stop',
    message: "Server 'a' has been stopped",
  };
  const plain = (project: string, value: unknown): string =>
    createHash('sha256')
      .update(`${project}\n${canonicalJson(value)}`)
      .digest('hex');

  const T = Date.parse(entry.timestamp);

  it('is the SHA-256 of project and canonical entry, the same for every wire spelling', () => {
    const reordered = JSON.parse(
      '{"message":"Server \'a\' has been stopped","action":"server\\u005fstop","timestamp":"2025-09-03T11:15:19.391447Z"}',
    ) as unknown;
    expect(new EntryIds('p').next(entry, T)).toBe(plain('p', entry));
    expect(new EntryIds('p').next(reordered, T)).toBe(plain('p', entry));
    expect(new EntryIds('p').next(entry, T)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('differs between projects and between entries', () => {
    expect(new EntryIds('p').next(entry, T)).not.toBe(new EntryIds('q').next(entry, T));
    expect(new EntryIds('p').next(entry, T)).not.toBe(
      new EntryIds('p').next({ ...entry, action: 'server_start' }, T),
    );
  });

  it('numbers byte-identical entries, and the numbering survives a page boundary through the checkpoint', () => {
    const other = { ...entry, message: 'other' };
    const stream = [entry, other, entry, entry, other];
    const oneGo = new EntryIds('p');
    const ids = stream.map((e) => oneGo.next(e, T));
    expect(new Set(ids).size).toBe(5);
    expect(ids[0]).toBe(plain('p', entry));
    expect(ids[1]).toBe(plain('p', other));

    // The same stream split after the third entry, the second half resumed from the persisted memory.
    const first = new EntryIds('p');
    const head = stream.slice(0, 3).map((e) => first.next(e, T));
    const resumed = new EntryIds('p', JSON.parse(JSON.stringify(first.memory())));
    expect([...head, ...stream.slice(3).map((e) => resumed.next(e, T))]).toEqual(ids);
  });

  it('numbers identical entries however many entries lie between them (issue 9 §4b)', () => {
    const ids = new EntryIds('p');
    const firstCopy = ids.next(entry, T);
    for (let i = 0; i < 5_000; i++) ids.next({ ...entry, n: i }, T + 1 + i);
    const secondCopy = ids.next(entry, T);
    expect(secondCopy).not.toBe(firstCopy);
  });

  it('forgets what left the seen window, and keeps it bounded by time', () => {
    const ids = new EntryIds('p');
    for (let i = 0; i < 100; i++) ids.next({ ...entry, n: i }, T + i * 1000);
    ids.forgetBefore(T + 50_000);
    expect(Object.keys(ids.memory())).toHaveLength(50);
    expect(Object.values(ids.memory())[0]).toMatch(/^[0-9a-f]{12}$/);
  });

  it('reads the count-based memory of earlier checkpoints', () => {
    const before = new EntryIds('p');
    const firstCopy = before.next(entry, T);
    const legacy = EntryIds.fromLegacy('p', [firstCopy.slice(0, 12)], T);
    expect(legacy.next(entry, T)).toBe(new EntryIds('p', before.memory()).next(entry, T));
    legacy.forgetBefore(T + 1);
    expect(legacy.memory()).not.toHaveProperty(`legacy@${T}`);
  });
});
