import { readFileSync } from 'node:fs';
import type { ZodType, z } from 'zod';
import { sinkModules as defaultSinkModules } from '../sinks/registry.ts';
import type { AnySinkModule, SinkInstance } from '../sinks/sink.ts';
import { sourceModules as defaultSourceModules } from '../sources/registry.ts';
import { type AnySourceModule, type ProviderInstance, scopeKey } from '../sources/source.ts';
import { resolveDaemon } from './daemon.ts';
import {
  inputJsonSchema,
  keysAt,
  PROVIDER_KEYS,
  providerCommon,
  SCOPE_KEYS,
  SINK_KEYS,
  scopeCommon,
  sinkCommon,
} from './entries.ts';
import {
  ConfigError,
  type ConfigIssue,
  formatIssue,
  formatPath,
  type PathSegment,
  sortIssues,
} from './errors.ts';
import { type Env, withEnv } from './fields.ts';
import { closest, didYouMean } from './suggest.ts';
import { holdsSecret, urlSettings } from './transport.ts';
import type { ScopeSpec, ShipperConfig } from './types.ts';
import { isPlainObject, kindOf } from './values.ts';
import { parseYaml, type YamlSource } from './yaml-source.ts';

/** A file to read, or text already in hand (tests, `--config -`), named by `origin` in messages. */
export type ConfigInput = { readonly path: string } | { readonly text: string; readonly origin: string };

export interface LoadOptions {
  /** What `${VAR}` references and daemon overrides resolve against. Default: `process.env`. */
  readonly env?: Env;
  /** Provider and sink types known; default: the registries. */
  readonly sourceModules?: ReadonlyMap<string, AnySourceModule>;
  readonly sinkModules?: ReadonlyMap<string, AnySinkModule>;
}

export interface LoadedConfig {
  readonly config: ShipperConfig;
  /** Operator-facing notes on a valid but risky config (`path (line N): ...`); never contain values. */
  readonly warnings: readonly string[];
}

export type LoadResult =
  | ({ readonly ok: true } & LoadedConfig)
  | { readonly ok: false; readonly error: ConfigError };

const TOP_LEVEL_KEYS = ['daemon', 'providers', 'scopes', 'sinks'] as const;

/**
 * Reads, validates and resolves a config file. Never throws for a bad config: every problem found is in
 * `error.issues` (syntax errors stop there; otherwise all sections are checked). Secrets referenced as
 * `${ENV}` or `*File` are read here, so a config that loads has its credentials in hand.
 */
export function loadConfig(input: ConfigInput, options: LoadOptions = {}): LoadResult {
  const origin = 'path' in input ? input.path : input.origin;
  let text: string;
  if ('path' in input) {
    try {
      text = readFileSync(input.path, 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
      return failure(origin, [{ path: '', message: `cannot read the config file (${code})` }]);
    }
  } else {
    text = input.text;
  }
  const parsed = parseYaml(text);
  if (!parsed.ok) return failure(origin, parsed.issues);
  const env = options.env ?? process.env;
  const loader = new Loader(parsed.source, env, {
    sources: options.sourceModules ?? defaultSourceModules,
    sinks: options.sinkModules ?? defaultSinkModules,
  });
  return withEnv(env, () => loader.run(origin));
}

/** `loadConfig` for callers that stop on a bad config: throws the ConfigError. */
export function loadConfigOrThrow(input: ConfigInput, options: LoadOptions = {}): LoadedConfig {
  const result = loadConfig(input, options);
  if (!result.ok) throw result.error;
  return { config: result.config, warnings: result.warnings };
}

function failure(origin: string, issues: readonly ConfigIssue[]): LoadResult {
  return { ok: false, error: new ConfigError(origin, sortIssues(issues)) };
}

type Entry = Record<string, unknown>;

/** A provider entry as far as it could be read; scopes are checked against it even when it has problems. */
interface ProviderDraft {
  /** Undefined when the entry's type is unknown: its scopes cannot be checked then. */
  readonly module?: AnySourceModule;
  readonly intervalMs?: number;
  readonly instance?: ProviderInstance;
}

interface SinkDraft {
  readonly index: number;
  readonly instance?: SinkInstance;
}

interface Modules {
  readonly sources: ReadonlyMap<string, AnySourceModule>;
  readonly sinks: ReadonlyMap<string, AnySinkModule>;
}

function plural(count: number, one: string, many = `${one}s`): string {
  return `${count} ${count === 1 ? one : many}`;
}

const EXPECTED: Readonly<Record<string, string>> = {
  object: 'a mapping',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
};

/**
 * Messages for zod's generic issues in the words of a config file. A schema's own messages win over
 * these. None of them includes the value, which may be a credential.
 */
const errorMap: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'is required';
      return `must be ${EXPECTED[issue.expected] ?? issue.expected} (got ${kindOf(issue.input)})`;
    case 'invalid_value':
      return issue.values.length === 1
        ? `must be ${JSON.stringify(issue.values[0])}`
        : `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'too_small': {
      const min = Number(issue.minimum);
      if (issue.origin === 'array') return `must have at least ${plural(min, 'item')}`;
      if (issue.origin === 'string')
        return min === 1 ? 'must not be empty' : `must be at least ${plural(min, 'character')}`;
      return issue.inclusive === false ? `must be greater than ${min}` : `must be at least ${min}`;
    }
    case 'too_big': {
      const max = Number(issue.maximum);
      if (issue.origin === 'array') return `must have at most ${plural(max, 'item')}`;
      if (issue.origin === 'string') return `must be at most ${plural(max, 'character')}`;
      return issue.inclusive === false ? `must be less than ${max}` : `must be at most ${max}`;
    }
    case 'invalid_format':
      return issue.format === 'regex' ? 'has an invalid format' : `must be a valid ${issue.format}`;
    case 'invalid_union':
      return 'matches none of the allowed forms';
    default:
      return undefined;
  }
};

class Loader {
  readonly #source: YamlSource;
  readonly #env: Env;
  readonly #modules: Modules;
  readonly #issues: ConfigIssue[] = [];
  readonly #warnings: ConfigIssue[] = [];

  constructor(source: YamlSource, env: Env, modules: Modules) {
    this.#source = source;
    this.#env = env;
    this.#modules = modules;
  }

  run(origin: string): LoadResult {
    const data = this.#source.data;
    if (data === undefined || data === null) {
      return failure(origin, [
        { path: '', message: 'the file is empty; it needs providers, scopes and sinks' },
      ]);
    }
    if (!isPlainObject(data)) {
      return failure(origin, [
        {
          path: '',
          ...this.#locate([]),
          message: `must be a mapping with providers, scopes and sinks (got ${kindOf(data)})`,
        },
      ]);
    }
    for (const key of Object.keys(data)) {
      if (!(TOP_LEVEL_KEYS as readonly string[]).includes(key)) this.#unknownKey([key], TOP_LEVEL_KEYS);
    }

    const daemon = resolveDaemon(data.daemon, {
      env: this.#env,
      locate: (path, at) => this.#source.locate(path, at),
    });
    this.#issues.push(...daemon.issues);

    const providers = this.#providers(this.#list(data, 'providers', 'provider'));
    const sinks = this.#sinks(this.#list(data, 'sinks', 'sink'));
    // A push provider (STACKIT Telemetry Router) brings its events without configured scopes.
    const pushes = [...providers.values()].some((draft) => draft.module?.push !== undefined);
    const scopes = this.#scopes(
      this.#list(data, 'scopes', 'scope', pushes),
      providers,
      sinks,
      daemon.settings?.poll.intervalMs,
    );

    if (this.#issues.length > 0 || daemon.settings === undefined) return failure(origin, this.#issues);
    const config: ShipperConfig = {
      origin,
      daemon: daemon.settings,
      providers: [...providers.values()].map((draft) => draft.instance as ProviderInstance),
      scopes,
      sinks: [...sinks.values()].map((draft) => draft.instance as SinkInstance),
    };
    const warnings = [...daemon.warnings, ...sortIssues(this.#warnings).map(formatIssue)];
    return { ok: true, config, warnings };
  }

  #locate(path: readonly PathSegment[], at: 'value' | 'key' = 'value'): { line?: number; column?: number } {
    const position = this.#source.locate(path, at);
    return position ? { line: position.line, column: position.column } : {};
  }

  #issue(path: readonly PathSegment[], message: string, at: 'value' | 'key' = 'value'): void {
    this.#issues.push({ path: formatPath(path), ...this.#locate(path, at), message });
  }

  #unknownKey(path: readonly PathSegment[], candidates: Iterable<string>): void {
    const key = String(path.at(-1));
    this.#issue(path, `unknown key "${key}"${didYouMean(key, candidates)}`, 'key');
  }

  /** The entries of a top-level list; reports a missing, empty or malformed list. */
  #list(
    data: Entry,
    key: 'providers' | 'scopes' | 'sinks',
    noun: string,
    mayBeEmpty = false,
  ): { index: number; entry: Entry }[] {
    const value = data[key];
    if (value === undefined || value === null || (Array.isArray(value) && value.length === 0)) {
      if (!mayBeEmpty) this.#issue([key], `at least one ${noun} is required`);
      return [];
    }
    if (!Array.isArray(value)) {
      this.#issue([key], `must be a list of ${noun}s (got ${kindOf(value)})`);
      return [];
    }
    const entries: { index: number; entry: Entry }[] = [];
    value.forEach((entry: unknown, index) => {
      if (isPlainObject(entry)) entries.push({ index, entry });
      else this.#issue([key, index], `must be a mapping (got ${kindOf(entry)})`);
    });
    return entries;
  }

  /** Runs a zod schema over part of an entry, reporting its issues under `prefix`. */
  #parse<T>(
    schema: ZodType<T>,
    value: unknown,
    prefix: readonly PathSegment[],
    extraKeys: readonly string[] = [],
  ): { ok: true; value: T } | { ok: false } {
    const result = schema.safeParse(value, { error: errorMap });
    if (result.success) return { ok: true, value: result.data };
    for (const issue of result.error.issues) {
      const relative = issue.path.map((segment) => (typeof segment === 'number' ? segment : String(segment)));
      if (issue.code === 'unrecognized_keys') {
        const candidates = [
          ...keysAt(inputJsonSchema(schema), relative),
          ...(relative.length === 0 ? extraKeys : []),
        ];
        for (const key of issue.keys) this.#unknownKey([...prefix, ...relative, key], candidates);
      } else {
        this.#issue([...prefix, ...relative], issue.message);
      }
    }
    return { ok: false };
  }

  /** Checks `type` against the known module types; returns the module. */
  #module<M>(
    entry: Entry,
    path: readonly PathSegment[],
    modules: ReadonlyMap<string, M>,
    noun: string,
  ): M | undefined {
    const type = entry.type;
    if (typeof type !== 'string') return undefined; // the common-keys schema reports it
    const module = modules.get(type);
    if (module === undefined) {
      const known = [...modules.keys()];
      this.#issue(
        [...path, 'type'],
        `unknown ${noun} type "${type}"${didYouMean(type, known)}; known types: ${known.join(', ')}`,
      );
    }
    return module;
  }

  #checkTls(entry: Entry, path: readonly PathSegment[], what: string): void {
    const tls = entry.tls;
    if (isPlainObject(tls) && tls.insecureSkipVerify === true) {
      const at = [...path, 'tls', 'insecureSkipVerify'];
      this.#warnings.push({
        path: formatPath(at),
        ...this.#locate(at),
        message:
          `TLS certificates are not verified for ${what}: anyone on the network path can impersonate the server, ` +
          'read the credentials and alter audit events in transit. Trust a private CA with tls.caFile instead.',
      });
    }
  }

  /**
   * G6 for one provider or sink: credentials in a URL are refused (they escape Secret handling), and so
   * is a plain http:// URL when credentials travel with its requests, unless the entry says
   * `allowInsecureHttp: true` (a loopback address, an in-cluster sidecar), which is then warned about.
   * Every provider sends credentials; a sink does when it has any.
   */
  #checkTransport(
    settings: unknown,
    allowed: boolean,
    credentialed: boolean,
    path: readonly PathSegment[],
    what: string,
  ): void {
    for (const { path: below, url } of urlSettings(settings)) {
      const at = [...path, ...below];
      if (url.username !== '' || url.password !== '') {
        this.#issue(
          at,
          'must not carry credentials (user:password@): they would bypass secret handling; use the auth settings with ${VAR} references or *File paths',
        );
        continue;
      }
      if (url.protocol !== 'http:' || !credentialed) continue;
      if (!allowed) {
        this.#issue(
          at,
          `plain http:// would send the credentials of ${what} in clear text: use https://, or set allowInsecureHttp: true on this entry if ${url.host} is a loopback address or an in-cluster sidecar`,
        );
      } else {
        this.#warnings.push({
          path: formatPath(at),
          ...this.#locate(at),
          message: `${what} sends its credentials over plain HTTP to ${url.host} (allowInsecureHttp: true): anyone on the network path can read them. Only for loopback or an in-cluster sidecar.`,
        });
      }
    }
  }

  #uniqueName(seen: Map<string, number>, name: unknown, path: readonly PathSegment[], noun: string): void {
    if (typeof name !== 'string') return;
    const index = path[1] as number;
    const first = seen.get(name);
    if (first === undefined) seen.set(name, index);
    else
      this.#issue(
        [...path, 'name'],
        `duplicate ${noun} name "${name}" (also ${path[0] as string}[${first}])`,
      );
  }

  #providers(entries: { index: number; entry: Entry }[]): Map<string, ProviderDraft> {
    const drafts = new Map<string, ProviderDraft>();
    const names = new Map<string, number>();
    for (const { index, entry } of entries) {
      const path = ['providers', index] as const;
      const common = this.#parse(providerCommon, entry, path);
      this.#uniqueName(names, entry.name, path, 'provider');
      const module = this.#module(entry, path, this.#modules.sources, 'provider');
      const settings = module
        ? this.#parse(module.providerSchema, omit(entry, PROVIDER_KEYS), path, PROVIDER_KEYS)
        : { ok: false as const };
      if (module) this.#checkTls(entry, path, `provider "${String(entry.name)}"`);
      if (settings.ok) {
        const allowed = common.ok && common.value.allowInsecureHttp === true;
        this.#checkTransport(settings.value, allowed, true, path, `provider "${String(entry.name)}"`);
      }
      if (typeof entry.name !== 'string' || drafts.has(entry.name)) continue;
      const intervalMs = common.ok ? common.value.interval : undefined;
      drafts.set(entry.name, {
        ...(module ? { module } : {}),
        ...(intervalMs !== undefined ? { intervalMs } : {}),
        ...(module && common.ok && settings.ok
          ? { instance: { name: common.value.name, type: module.type, settings: settings.value } }
          : {}),
      });
    }
    return drafts;
  }

  #sinks(entries: { index: number; entry: Entry }[]): Map<string, SinkDraft> {
    const drafts = new Map<string, SinkDraft>();
    const names = new Map<string, number>();
    for (const { index, entry } of entries) {
      const path = ['sinks', index] as const;
      const common = this.#parse(sinkCommon, entry, path);
      this.#uniqueName(names, entry.name, path, 'sink');
      const module = this.#module(entry, path, this.#modules.sinks, 'sink');
      const settings = module
        ? this.#parse(module.schema, omit(entry, SINK_KEYS), path, SINK_KEYS)
        : { ok: false as const };
      if (module) this.#checkTls(entry, path, `sink "${String(entry.name)}"`);
      if (settings.ok) {
        const allowed = common.ok && common.value.allowInsecureHttp === true;
        this.#checkTransport(
          settings.value,
          allowed,
          holdsSecret(settings.value),
          path,
          `sink "${String(entry.name)}"`,
        );
      }
      if (typeof entry.name !== 'string' || drafts.has(entry.name)) continue;
      drafts.set(entry.name, {
        index,
        ...(module && common.ok && settings.ok
          ? { instance: { name: common.value.name, type: module.type, settings: settings.value } }
          : {}),
      });
    }
    return drafts;
  }

  #scopes(
    entries: { index: number; entry: Entry }[],
    providers: ReadonlyMap<string, ProviderDraft>,
    sinks: ReadonlyMap<string, SinkDraft>,
    defaultIntervalMs: number | undefined,
  ): ScopeSpec[] {
    const specs: ScopeSpec[] = [];
    const keys = new Map<string, number>();
    const claims = new Map<string, number>();
    const sinkNames = [...sinks.keys()];
    const usedSinks = new Set<string>();
    let everySink = false;
    for (const { index, entry } of entries) {
      const path = ['scopes', index] as const;
      const common = this.#parse(scopeCommon, entry, path);

      let provider: ProviderDraft | undefined;
      if (typeof entry.provider === 'string') {
        provider = providers.get(entry.provider);
        if (provider === undefined) {
          const defined = [...providers.keys()];
          this.#issue(
            [...path, 'provider'],
            defined.length === 0
              ? `"${entry.provider}" is not a defined provider; no providers are defined`
              : `"${entry.provider}" is not a defined provider${didYouMean(entry.provider, defined)}; defined: ${defined.join(', ')}`,
          );
        }
      }

      const listed = Array.isArray(entry.sinks) ? (entry.sinks as unknown[]) : undefined;
      if (listed === undefined) everySink = true;
      const seenHere = new Set<string>();
      listed?.forEach((sink, k) => {
        if (typeof sink !== 'string') return; // the common-keys schema reports it
        if (seenHere.has(sink)) this.#issue([...path, 'sinks', k], `sink "${sink}" is listed twice`);
        seenHere.add(sink);
        usedSinks.add(sink);
        if (!sinks.has(sink)) {
          const hint = closest(sink, sinkNames);
          this.#issue(
            [...path, 'sinks', k],
            `"${sink}" is not a defined sink${hint === undefined ? '' : ` (did you mean "${hint}"?)`}; ` +
              (sinkNames.length === 0 ? 'no sinks are defined' : `defined: ${sinkNames.join(', ')}`),
          );
        }
      });

      if (provider?.module === undefined) continue;
      const module = provider.module;
      if (module.push) {
        this.#issue(
          [...path, 'provider'],
          `"${entry.provider}" is a ${module.type} provider: it receives pushed events, whose records name their own scope, and takes no scopes`,
        );
        continue;
      }
      const settings = this.#parse(module.scopeSchema, omit(entry, SCOPE_KEYS), path, SCOPE_KEYS);
      if (!settings.ok) continue;
      const ref = module.scopeRef(settings.value);
      const key = scopeKey(module.type, ref);
      const first = keys.get(key);
      if (first !== undefined) {
        this.#issue(path, `polls the same scope as scopes[${first}] (${key}); list each scope once`);
        continue;
      }
      keys.set(key, index);
      for (const claim of module.exclusiveClaims?.(settings.value) ?? []) {
        const holder = claims.get(claim.key);
        if (holder === undefined) claims.set(claim.key, index);
        else
          this.#issue(
            path,
            `uses the same ${claim.what} as scopes[${holder}]${claim.hint ? `; ${claim.hint}` : ''}`,
          );
      }
      if (!common.ok || defaultIntervalMs === undefined) continue;
      specs.push({
        key,
        provider: entry.provider as string,
        providerType: module.type,
        ref,
        intervalMs: common.value.interval ?? provider.intervalMs ?? defaultIntervalMs,
        sinks: common.value.sinks !== undefined ? [...new Set(common.value.sinks)] : sinkNames,
        settings: settings.value,
      });
    }
    if (!everySink && entries.length > 0) {
      for (const [name, { index }] of sinks) {
        if (usedSinks.has(name)) continue;
        this.#warnings.push({
          path: formatPath(['sinks', index]),
          ...this.#locate(['sinks', index]),
          message: `sink "${name}" receives no events: every scope lists its sinks and none names it`,
        });
      }
    }
    return specs;
  }
}

function omit(entry: Entry, keys: readonly string[]): Entry {
  const rest: Entry = {};
  for (const [key, value] of Object.entries(entry)) if (!keys.includes(key)) rest[key] = value;
  return rest;
}
