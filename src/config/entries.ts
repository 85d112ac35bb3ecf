import { type ZodType, z } from 'zod';
import { duration, name } from './fields.ts';

/**
 * The keys every `providers[]`, `scopes[]` and `sinks[]` entry has whatever its type. The loader takes
 * them out before handing the rest of an entry to its module's schema; the JSON Schema merges them into
 * each module's.
 */

const DAY = 86_400_000;

/** The opt-in to plain http:// URLs for an entry that sends credentials. */
const allowInsecureHttp = () =>
  z
    .boolean()
    .optional()
    .describe(
      'Allow plain http:// URLs although credentials travel with the requests (refused otherwise). Only for a loopback address or an in-cluster sidecar; logged as a warning.',
    );

const interval = () =>
  duration({ min: 1_000, max: DAY }).describe('How often to poll, e.g. 30s or 5m (1s to 1d).');

export const providerCommon = z.object({
  name: name().describe('Name scopes refer to this provider by. Unique among providers.'),
  type: z.string().describe('Provider type.'),
  interval: interval()
    .optional()
    .describe("Default poll interval of this provider's scopes (falls back to daemon.poll.interval)."),
  allowInsecureHttp: allowInsecureHttp(),
});

export const scopeCommon = z.object({
  provider: z.string().describe('Name of the provider (providers[].name) that polls this scope.'),
  sinks: z
    .array(z.string())
    .min(1, 'must name at least one sink (leave the key out to send to every sink)')
    .optional()
    .describe("Names of the sinks (sinks[].name) this scope's events go to. Default: every sink."),
  interval: interval()
    .optional()
    .describe(
      "Poll interval of this scope (falls back to the provider's interval, then daemon.poll.interval).",
    ),
});

export const sinkCommon = z.object({
  name: name().describe('Name of this sink; scopes refer to it in their sinks list. Unique among sinks.'),
  type: z.string().describe('Sink type.'),
  allowInsecureHttp: allowInsecureHttp(),
});

export const PROVIDER_KEYS = Object.keys(providerCommon.shape);
export const SCOPE_KEYS = Object.keys(scopeCommon.shape);
export const SINK_KEYS = Object.keys(sinkCommon.shape);

export type JsonSchema = Record<string, unknown>;

const cache = new WeakMap<ZodType, JsonSchema>();

/** The JSON Schema of what a zod schema accepts (its input side), draft 2020-12, without `$schema`. */
export function inputJsonSchema(schema: ZodType): JsonSchema {
  let json = cache.get(schema);
  if (json === undefined) {
    json = z.toJSONSchema(schema, {
      target: 'draft-2020-12',
      io: 'input',
      unrepresentable: 'any',
    }) as JsonSchema;
    delete json.$schema;
    cache.set(schema, json);
  }
  return json;
}

/** The keys an object at `path` inside `schema` may have (for "did you mean" hints). */
export function keysAt(schema: JsonSchema, path: readonly (string | number)[]): string[] {
  const keys = new Set<string>();
  const visit = (node: unknown, rest: readonly (string | number)[]): void => {
    if (typeof node !== 'object' || node === null) return;
    const json = node as JsonSchema;
    for (const combinator of ['anyOf', 'oneOf', 'allOf'] as const) {
      const options = json[combinator];
      if (Array.isArray(options)) for (const option of options) visit(option, rest);
    }
    if (rest.length === 0) {
      const properties = json.properties;
      if (typeof properties === 'object' && properties !== null)
        for (const key of Object.keys(properties)) keys.add(key);
      return;
    }
    const [head, ...tail] = rest;
    if (typeof head === 'number') visit(json.items, tail);
    else visit((json.properties as JsonSchema | undefined)?.[head as string], tail);
  };
  visit(schema, path);
  return [...keys];
}
