import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { type DaemonGroup, daemonSchema, isLeaf } from '../../src/config/daemon.ts';
import { buildJsonSchema, renderJsonSchema, SCHEMA_FILE } from '../../src/config/json-schema.ts';
import { loadConfig } from '../../src/config/load.ts';
import { sourceModules } from '../../src/sources/registry.ts';
import type { AnySourceModule } from '../../src/sources/source.ts';
import { EXAMPLE_ENV } from './helpers.ts';
import { checkJsonSchema } from './json-schema-check.ts';

const EXAMPLE = 'config/example.yaml';
type Json = Record<string, unknown>;

describe('config/schema.json', () => {
  it('is up to date (run `npm run schema` after changing a config schema)', () => {
    const committed = readFileSync(SCHEMA_FILE, 'utf8');
    expect(committed, 'config/schema.json is stale: run `npm run schema`').toBe(renderJsonSchema());
  });

  it('is a draft 2020-12 schema that editors can complete from', () => {
    const schema = buildJsonSchema() as Json;
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(schema.required).toEqual(['providers', 'sinks']);
    expect(schema.additionalProperties).toBe(false);
    const properties = schema.properties as Record<string, Json>;
    const daemon = properties.daemon as Json;
    const poll = (daemon.properties as Record<string, Json>).poll as Json;
    expect((poll.properties as Record<string, Json>).interval).toMatchObject({
      type: 'string',
      default: '1m',
      description: expect.stringContaining('Environment: POLL_INTERVAL.'),
    });
    const metrics = (daemon.properties as Record<string, Json>).metrics as Json;
    expect((metrics.properties as Record<string, Json>).port).toMatchObject({
      default: 9464,
      minimum: 0,
      maximum: 65535,
    });

    const providers = ((properties.providers as Json).items as Json).oneOf as Json[];
    expect(providers.map((p) => p.title)).toEqual([
      'stackit provider',
      'stackit-telemetry provider',
      'cloudscale provider',
    ]);
    const provider = providers[0] as Json;
    expect(provider).toMatchObject({
      title: 'stackit provider',
      required: expect.arrayContaining(['name', 'type', 'auth']),
      additionalProperties: false,
    });
    expect((provider.properties as Record<string, Json>).type).toMatchObject({ const: 'stackit' });

    const sinks = (properties.sinks as Json).items as Json;
    const sinkTypes = (sinks.oneOf as Json[]).map((s) => (s.properties as Record<string, Json>).type?.const);
    expect(sinkTypes).toEqual(['file', 'stdout', 'loki', 'elasticsearch', 'opensearch', 's3', 'otlp']);

    const scope = (((properties.scopes as Json).items as Json).anyOf as Json[])[0] as Json;
    expect(Object.keys(scope.properties as Json)).toEqual(
      expect.arrayContaining(['provider', 'sinks', 'interval', 'project', 'folder', 'organization']),
    );
  });

  it('gives every daemon setting a description and a default', () => {
    const check = (group: DaemonGroup, schema: Json, path: string) => {
      const properties = schema.properties as Record<string, Json>;
      expect(Object.keys(properties)).toEqual(Object.keys(group));
      for (const [key, node] of Object.entries(group)) {
        const child = properties[key] as Json;
        if (isLeaf(node)) {
          expect(child.description, `${path}${key}`).toEqual(expect.stringContaining(node.env));
          expect(child.default, `${path}${key}`).toBeDefined();
        } else {
          check(node, child, `${path}${key}.`);
        }
      }
    };
    check(daemonSchema, (buildJsonSchema().properties as Record<string, Json>).daemon as Json, 'daemon.');
  });
});

describe('config/example.yaml', () => {
  const data = parse(readFileSync(EXAMPLE, 'utf8')) as Json;

  it('loads: 3 providers, 5 scopes, 6 sinks, every daemon setting spelled out', () => {
    const result = loadConfig({ path: EXAMPLE }, { env: EXAMPLE_ENV });
    if (!result.ok) throw new Error(result.error.format());
    expect(result.config.providers.map((p) => p.type)).toEqual([
      'stackit',
      'cloudscale',
      'stackit-telemetry',
    ]);
    expect(result.config.scopes).toHaveLength(5);
    expect(result.config.sinks.map((s) => s.type)).toEqual([
      'file',
      'stdout',
      'loki',
      'elasticsearch',
      's3',
      'otlp',
    ]);
    expect(result.warnings).toEqual([expect.stringMatching(/^daemon\.redis\.url is empty/)]);

    const spelled = (group: DaemonGroup, values: Json, path: string) => {
      for (const [key, node] of Object.entries(group)) {
        expect(values, `${path}${key} missing from the example`).toHaveProperty(key);
        if (!isLeaf(node)) spelled(node, values[key] as Json, `${path}${key}.`);
      }
    };
    spelled(daemonSchema, data.daemon as Json, 'daemon.');
  });

  it('is accepted by the JSON Schema', () => {
    expect(checkJsonSchema(buildJsonSchema(), data)).toEqual([]);
  });

  it('with mistakes, is rejected by the JSON Schema too (the check is not vacuous)', () => {
    const broken = structuredClone(data) as {
      daemon: Json;
      providers: Json[];
      scopes: Json[];
      sinks: Json[];
    };
    broken.daemon.extra = 1;
    (broken.providers[0] as Json).overlap = '15 minutes';
    delete (broken.providers[0] as Json).auth;
    (broken.scopes[0] as Json).sinks = [];
    (broken.sinks[1] as Json).type = 'elasticsearch';
    // With several provider types an entry that fits none only "matches 0 oneOf branches"; one type
    // shows the checker finds each mistake.
    expect(checkJsonSchema(buildJsonSchema(), broken)).toEqual([
      '$.daemon: unexpected extra',
      '$.providers[0]: matches 0 oneOf branches',
      '$.scopes[0]: matches no anyOf branch',
      '$.sinks[1]: matches 0 oneOf branches',
    ]);
    const stackitOnly = new Map([['stackit', sourceModules.get('stackit') as AnySourceModule]]);
    broken.providers = broken.providers.slice(0, 1);
    broken.scopes = broken.scopes.filter((scope) => scope.provider === 'stackit-prod');
    expect(checkJsonSchema(buildJsonSchema({ sourceModules: stackitOnly }), broken)).toEqual([
      '$.daemon: unexpected extra',
      '$.providers[0]: missing auth',
      expect.stringMatching(/^\$\.providers\[0\]\.overlap: does not match/),
      '$.scopes[0].sinks: too few items',
      '$.sinks[1]: matches 0 oneOf branches',
    ]);
  });
});
