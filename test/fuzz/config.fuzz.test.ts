import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.ts';

const example = readFileSync(new URL('../../config/example.yaml', import.meta.url), 'utf8');
const SECRET = 'fuzz-secret-value-9f2c';
const env = { STACKIT_TOKEN: SECRET, REDIS_URL: `redis://:${SECRET}@127.0.0.1:6379` };
const lines = example.split('\n');

/** One edit an operator (or a broken templating step) could make to a config file. */
const edit = fc.oneof(
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('indent' as const), at: fc.nat(), by: fc.integer({ min: -4, max: 4 }) }),
  fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), text: fc.string({ maxLength: 30 }) }),
  fc.record({
    kind: fc.constant('value' as const),
    at: fc.nat(),
    value: fc.oneof(
      fc.constantFrom(
        'null',
        '[]',
        '{}',
        '-1',
        '0',
        '1e309',
        'true',
        '"${MISSING_VAR}"',
        '~',
        '!!binary aGk=',
        '*alias',
        '&a x',
      ),
      fc.string({ maxLength: 20 }).map((s) => JSON.stringify(s)),
      fc.integer().map(String),
    ),
  }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
);

type Edit = typeof edit extends fc.Arbitrary<infer T> ? T : never;

function apply(edits: readonly Edit[]): string {
  const out = [...lines];
  for (const e of edits) {
    const i = e.at % Math.max(1, out.length);
    const line = out[i] ?? '';
    switch (e.kind) {
      case 'delete':
        out.splice(i, 1);
        break;
      case 'duplicate':
        out.splice(i, 0, line);
        break;
      case 'indent':
        out[i] = e.by >= 0 ? ' '.repeat(e.by) + line : line.replace(new RegExp(`^ {0,${-e.by}}`), '');
        break;
      case 'replace':
        out[i] = e.text;
        break;
      case 'value':
        out[i] = line.includes(':') ? `${line.slice(0, line.indexOf(':') + 1)} ${e.value}` : line;
        break;
      case 'truncate':
        out.splice(i);
        break;
    }
  }
  return out.join('\n');
}

describe('config loading under random edits (fuzz)', () => {
  it('never throws or hangs, names where each problem is, and never prints a secret', () => {
    fc.assert(
      fc.property(fc.array(edit, { minLength: 1, maxLength: 6 }), (edits) => {
        const text = apply(edits);
        const result = loadConfig({ text, origin: 'fuzz.yaml' }, { env });
        if (result.ok) {
          expect(JSON.stringify(result.config)).not.toContain(SECRET);
          for (const warning of result.warnings) expect(warning).not.toContain(SECRET);
          return;
        }
        const report = result.error.format();
        expect(result.error.issues.length).toBeGreaterThan(0);
        for (const issue of result.error.issues) {
          expect(issue.message.length).toBeGreaterThan(0);
          expect(typeof issue.path).toBe('string');
        }
        expect(report).not.toContain(SECRET);
      }),
      { numRuns: 400 },
    );
  });

  it('reports arbitrary text as a problem, not an exception', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400, unit: 'binary' }), (text) => {
        const result = loadConfig({ text, origin: 'noise.yaml' }, { env });
        expect(result.ok).toBe(false);
      }),
      { numRuns: 300 },
    );
  });
});
