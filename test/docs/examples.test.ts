import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { loadConfig } from '../../src/config/load.ts';

const root = new URL('../..', import.meta.url).pathname;
const documents = [
  'README.md',
  'ARCHITECTURE.md',
  'helm/auditlog-shipper/README.md',
  ...readdirSync(join(root, 'docs')).map((f) => `docs/${f}`),
];

function yamlBlocks(path: string): Array<{ line: number; text: string }> {
  const text = readFileSync(join(root, path), 'utf8');
  const blocks: Array<{ line: number; text: string }> = [];
  for (const match of text.matchAll(/^```ya?ml\n([\s\S]*?)^```$/gm)) {
    blocks.push({ line: text.slice(0, match.index).split('\n').length, text: match[1] as string });
  }
  return blocks;
}

describe('YAML examples in the docs', () => {
  it.each(documents)('%s: every YAML block parses, and complete configs validate', (path) => {
    for (const block of yamlBlocks(path)) {
      const doc = parseDocument(block.text);
      expect(doc.errors.map((e) => `${path}:${block.line}: ${e.message}`)).toEqual([]);
      const value = doc.toJS() as Record<string, unknown> | null;
      if (value && 'providers' in value && 'scopes' in value && 'sinks' in value) {
        // Whatever ${VAR} the example references is set, as an operator would.
        const env = Object.fromEntries(
          [...block.text.matchAll(/\$\{([A-Z0-9_]+)\}/g)].map((m) => [m[1], 'x']),
        );
        const result = loadConfig({ text: block.text, origin: `${path}:${block.line}` }, { env });
        // Files an example names (a key, a token file) are the operator's; everything else must hold.
        const problems = result.ok
          ? []
          : result.error.issues.filter((i) => !i.message.startsWith('cannot read file'));
        expect(problems.map((i) => `${path}:${block.line}: ${i.path}: ${i.message}`)).toEqual([]);
      }
    }
  });
});

describe('docs/operations.md', () => {
  it('describes every metric the shipper exports', async () => {
    const { Metrics } = await import('../../src/observability/metrics.ts');
    const text = readFileSync(join(root, 'docs/operations.md'), 'utf8');
    const names = (await new Metrics().registry.getMetricsAsJSON()).map((m) => m.name);
    expect(names.filter((name) => !text.includes(name))).toEqual([]);
  });
});
