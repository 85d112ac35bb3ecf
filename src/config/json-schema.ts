import { sinkModules as defaultSinkModules } from '../sinks/registry.ts';
import type { AnySinkModule } from '../sinks/sink.ts';
import { sourceModules as defaultSourceModules } from '../sources/registry.ts';
import type { AnySourceModule } from '../sources/source.ts';
import {
  DAEMON_GROUP_DOCS,
  type DaemonGroup,
  type DaemonLeaf,
  daemonSchema,
  formatSpec,
  isLeaf,
} from './daemon.ts';
import { formatDuration } from './duration.ts';
import { inputJsonSchema, type JsonSchema, providerCommon, scopeCommon, sinkCommon } from './entries.ts';

/**
 * The JSON Schema of the config file, for editors (`# yaml-language-server: $schema=./schema.json`) and
 * CI linters. It describes structure; the loader remains the authority (cross-references, secrets that
 * must resolve, files that must exist are beyond a schema).
 */

export const JSON_SCHEMA_DIALECT = 'https://json-schema.org/draft/2020-12/schema';

export interface JsonSchemaOptions {
  readonly sourceModules?: ReadonlyMap<string, AnySourceModule>;
  readonly sinkModules?: ReadonlyMap<string, AnySinkModule>;
}

export function buildJsonSchema(options: JsonSchemaOptions = {}): JsonSchema {
  const sources = [...(options.sourceModules ?? defaultSourceModules).values()];
  const sinks = [...(options.sinkModules ?? defaultSinkModules).values()];
  const defs: Record<string, JsonSchema> = {};

  const providerItems = sources.map((module) =>
    entrySchema({
      title: `${module.type} provider`,
      description: module.description,
      common: inputJsonSchema(providerCommon),
      typeConst: module.type,
      module: hoistDefs(inputJsonSchema(module.providerSchema), `provider-${module.type}`, defs),
      where: `provider type ${module.type}`,
    }),
  );
  const scopeItems = sources
    .filter((module) => module.push === undefined)
    .map((module) =>
      entrySchema({
        title: `${module.type} scope`,
        description: `A scope polled by a ${module.type} provider: ${module.description}`,
        common: inputJsonSchema(scopeCommon),
        module: hoistDefs(inputJsonSchema(module.scopeSchema), `scope-${module.type}`, defs),
        where: `scope of provider type ${module.type}`,
      }),
    );
  const sinkItems = sinks.map((module) =>
    entrySchema({
      title: `${module.type} sink`,
      description: module.description,
      common: inputJsonSchema(sinkCommon),
      typeConst: module.type,
      module: hoistDefs(inputJsonSchema(module.schema), `sink-${module.type}`, defs),
      where: `sink type ${module.type}`,
    }),
  );

  return {
    $schema: JSON_SCHEMA_DIALECT,
    title: 'auditlog-shipper configuration',
    description:
      'Which cloud audit logs to poll (providers, scopes) and where to ship every event (sinks). Strings may reference the environment as ${VAR} or ${VAR:-default}; credentials must.',
    type: 'object',
    properties: {
      daemon: daemonJsonSchema(),
      providers: {
        title: 'Providers',
        description: 'Cloud accounts to read audit logs from, each with its credentials. Scopes name them.',
        type: 'array',
        minItems: 1,
        items: oneOrAny('oneOf', providerItems),
      },
      scopes: {
        title: 'Scopes',
        description:
          'The audit logs to poll: each names a provider and the organization, folder or project whose log it reads. May be empty when a push provider (stackit-telemetry) brings the events.',
        type: 'array',
        items: oneOrAny('anyOf', scopeItems),
      },
      sinks: {
        title: 'Sinks',
        description:
          'Where events are shipped. Every event of a scope goes to each of its sinks (default: all).',
        type: 'array',
        minItems: 1,
        items: oneOrAny('oneOf', sinkItems),
      },
    },
    required: ['providers', 'sinks'],
    additionalProperties: false,
    ...(Object.keys(defs).length > 0 ? { $defs: defs } : {}),
  };
}

function oneOrAny(keyword: 'oneOf' | 'anyOf', items: JsonSchema[]): JsonSchema {
  return items.length === 1 ? (items[0] as JsonSchema) : { [keyword]: items };
}

interface EntryParts {
  readonly title: string;
  readonly description: string;
  readonly common: JsonSchema;
  readonly typeConst?: string;
  readonly module: JsonSchema;
  readonly where: string;
}

/** One list entry: the common keys (with `type` pinned to the module's) merged into the module's object schema. */
function entrySchema({ title, description, common, typeConst, module, where }: EntryParts): JsonSchema {
  if (module.type !== 'object' || typeof module.properties !== 'object' || module.properties === null) {
    throw new Error(
      `the config schema of ${where} must be a plain object schema to merge into the JSON Schema`,
    );
  }
  const commonProperties = { ...(common.properties as Record<string, JsonSchema>) };
  if (typeConst !== undefined) {
    commonProperties.type = { ...commonProperties.type, type: 'string', const: typeConst };
  }
  const moduleProperties = module.properties as Record<string, JsonSchema>;
  for (const key of Object.keys(moduleProperties)) {
    if (key in commonProperties)
      throw new Error(`the config schema of ${where} redefines the common key "${key}"`);
  }
  const required = [
    ...((common.required as string[] | undefined) ?? []),
    ...((module.required as string[] | undefined) ?? []),
  ];
  const {
    type: _type,
    properties: _properties,
    required: _required,
    additionalProperties: _extra,
    ...rest
  } = module;
  return {
    title,
    description,
    ...rest,
    type: 'object',
    properties: { ...commonProperties, ...moduleProperties },
    required,
    additionalProperties: false,
  };
}

/** Moves a module schema's `$defs` to the root under prefixed names, rewriting its `$ref`s. */
function hoistDefs(schema: JsonSchema, prefix: string, defs: Record<string, JsonSchema>): JsonSchema {
  const local = schema.$defs as Record<string, JsonSchema> | undefined;
  if (local === undefined) return schema;
  const rename = (name: string) => `${prefix}-${name}`;
  const rewrite = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(rewrite);
    if (typeof node !== 'object' || node === null) return node;
    const out: JsonSchema = {};
    for (const [key, value] of Object.entries(node)) {
      out[key] =
        key === '$ref' && typeof value === 'string' && value.startsWith('#/$defs/')
          ? `#/$defs/${rename(value.slice('#/$defs/'.length))}`
          : rewrite(value);
    }
    return out;
  };
  const { $defs: _defs, ...rest } = schema;
  for (const [name, def] of Object.entries(local)) defs[rename(name)] = rewrite(def) as JsonSchema;
  return rewrite(rest) as JsonSchema;
}

/** The `daemon:` section, converted from the convict schema: formats to types and patterns, docs to descriptions. */
export function daemonJsonSchema(): JsonSchema {
  return groupSchema(daemonSchema, '');
}

function groupSchema(group: DaemonGroup, path: string): JsonSchema {
  const properties: Record<string, JsonSchema> = {};
  for (const [key, node] of Object.entries(group)) {
    const childPath = path === '' ? key : `${path}.${key}`;
    properties[key] = isLeaf(node) ? leafSchema(node) : groupSchema(node, childPath);
  }
  const doc = DAEMON_GROUP_DOCS[path];
  return {
    ...(doc !== undefined ? { description: doc } : {}),
    type: 'object',
    properties,
    additionalProperties: false,
  };
}

function leafSchema(leaf: DaemonLeaf): JsonSchema {
  const spec = formatSpec(leaf.format);
  if (spec === undefined) throw new Error(`daemon setting with unknown format ${leaf.format}`);
  const range =
    spec.written === 'duration' && leaf.min !== undefined && leaf.max !== undefined
      ? ` From ${formatDuration(leaf.min)} to ${formatDuration(leaf.max)}.`
      : '';
  return {
    description: `${leaf.doc}${range} Environment: ${leaf.env}.`,
    ...spec.jsonSchema(leaf),
    default: spec.jsonDefault ? spec.jsonDefault(leaf.default) : leaf.default,
  };
}

/** Where the committed schema lives (`npm run schema` writes it). */
export const SCHEMA_FILE = new URL('../../config/schema.json', import.meta.url);

/** The file's exact content: two-space JSON and a final newline. */
export function renderJsonSchema(options: JsonSchemaOptions = {}): string {
  return `${JSON.stringify(buildJsonSchema(options), null, 2)}\n`;
}
