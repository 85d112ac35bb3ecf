import { hostname } from 'node:os';
import { inspect } from 'node:util';
import convict from 'convict';
import { DURATION_PATTERN, formatDuration, parseDuration } from './duration.ts';
import { type ConfigIssue, formatPath, type PathSegment } from './errors.ts';
import { type Env, interpolateEnv } from './fields.ts';
import { registerSecretValue } from './redact.ts';
import { parseRedisUrl, redactRedisUrl } from './redis-url.ts';
import { didYouMean } from './suggest.ts';
import { hasInlinePassword } from './transport.ts';
import type { DaemonSettings, LogLevel } from './types.ts';
import { isPlainObject, kindOf } from './values.ts';
import type { Position } from './yaml-source.ts';

/**
 * The `daemon:` section, read through convict so every setting has one documented environment override
 * (Kubernetes Deployments set env vars more easily than they patch a ConfigMap). Precedence, lowest
 * first: schema default, config file, environment.
 */

export const LOG_LEVELS = [
  'fatal',
  'error',
  'warn',
  'info',
  'debug',
  'trace',
  'silent',
] as const satisfies readonly LogLevel[];

type JsonObject = Record<string, unknown>;

/** What convict hands a format's validator: the schema leaf, with our `min`/`max` extras. */
interface LeafSchema {
  readonly format: string;
  readonly min?: number;
  readonly max?: number;
}

interface FormatSpec {
  /** What the file must hold before coercion: a string, a number (or `${VAR}`), or a duration string. */
  readonly written: 'string' | 'number' | 'duration' | 'boolean';
  /** Throws an Error whose message is shown to the operator. Must never include the value. */
  validate(value: unknown, schema: LeafSchema): void;
  /** Applied by convict to strings from the file and the environment. */
  coerce?(value: string): unknown;
  /** The JSON Schema fragment for a leaf of this format (description and default are added around it). */
  jsonSchema(schema: LeafSchema): JsonObject;
  /** Renders a default for the JSON Schema and the docs (`60000` → `"60s"`). */
  jsonDefault?(value: unknown): unknown;
}

/** `${VAR}` / `${VAR:-default}` somewhere in the text: such a value is resolved before it is checked. */
export const ENV_REF_PATTERN = '\\$\\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\\}';

function fail(message: string): never {
  throw new Error(message);
}

function checkInteger(value: unknown, { min, max }: LeafSchema, what: string): void {
  if (typeof value !== 'number' || !Number.isInteger(value)) fail(`must be ${what}`);
  if (min !== undefined && value < min) fail(`must be at least ${min}`);
  if (max !== undefined && value > max) fail(`must be at most ${max}`);
}

function integerSchema({ min, max }: LeafSchema): JsonObject {
  return {
    type: ['integer', 'string'],
    ...(min !== undefined ? { minimum: min } : {}),
    ...(max !== undefined ? { maximum: max } : {}),
    // A string is only accepted as an environment reference.
    pattern: `^${ENV_REF_PATTERN}$`,
  };
}

/** Whole numbers only: `parseInt` would read `80x` as 80. */
function coerceInteger(value: string): unknown {
  return /^\s*-?\d+\s*$/.test(value) ? Number(value) : value;
}

const FORMAT_PREFIX = 'auditlog-shipper:';

/** Format names are global in convict; ours carry a prefix so they cannot collide with anyone else's. */
export const FORMATS = {
  [`${FORMAT_PREFIX}instance-id`]: {
    written: 'string',
    validate: (value) => {
      if (typeof value !== 'string') fail('must be a string');
      if (!/^[\x21-\x7e]{0,200}$/.test(value))
        fail('must be at most 200 printable characters without spaces');
    },
    jsonSchema: () => ({ type: 'string', pattern: '^[\\x21-\\x7e]{0,200}$' }),
  },
  [`${FORMAT_PREFIX}path`]: {
    written: 'string',
    validate: (value) => {
      if (typeof value !== 'string' || value.trim() === '') fail('must be a non-empty path');
    },
    jsonSchema: () => ({ type: 'string', minLength: 1 }),
  },
  [`${FORMAT_PREFIX}redis-url`]: {
    written: 'string',
    validate: (value) => {
      if (typeof value !== 'string') fail('must be a string');
      if (value !== '') parseRedisUrl(value); // its message never repeats the URL
    },
    jsonSchema: () => ({
      type: 'string',
      pattern: `^$|^rediss?(\\+sentinel|\\+cluster)?://|${ENV_REF_PATTERN}`,
    }),
  },
  [`${FORMAT_PREFIX}redis-prefix`]: {
    written: 'string',
    validate: (value) => {
      if (typeof value !== 'string' || !/\{[^{}\s]+\}/.test(value) || /\s/.test(value)) {
        fail(
          'must contain a {hash tag} such as {auditlog}, and no spaces, so every key a script touches shares one Redis Cluster slot',
        );
      }
    },
    jsonSchema: () => ({ type: 'string', pattern: '^\\S*\\{[^{}\\s]+\\}\\S*$' }),
  },
  [`${FORMAT_PREFIX}log-level`]: {
    written: 'string',
    validate: (value) => {
      if (!(LOG_LEVELS as readonly unknown[]).includes(value))
        fail(`must be one of ${LOG_LEVELS.join(', ')}`);
    },
    jsonSchema: () => ({ type: 'string', enum: [...LOG_LEVELS] }),
  },
  [`${FORMAT_PREFIX}host`]: {
    written: 'string',
    validate: (value) => {
      if (typeof value !== 'string' || !/^\S+$/.test(value)) fail('must be a host name or IP address');
    },
    jsonSchema: () => ({ type: 'string', pattern: '^\\S+$' }),
  },
  [`${FORMAT_PREFIX}port`]: {
    written: 'number',
    validate: (value, schema) =>
      checkInteger(value, { ...schema, min: 0, max: 65_535 }, 'a port number (0-65535)'),
    coerce: coerceInteger,
    jsonSchema: (schema) => integerSchema({ ...schema, min: 0, max: 65_535 }),
  },
  [`${FORMAT_PREFIX}count`]: {
    written: 'number',
    validate: (value, schema) => checkInteger(value, schema, 'a whole number'),
    coerce: coerceInteger,
    jsonSchema: integerSchema,
  },
  [`${FORMAT_PREFIX}flag`]: {
    written: 'boolean',
    validate: (value) => {
      if (typeof value !== 'boolean') fail('must be true or false');
    },
    coerce: (value) =>
      value === 'true' || value === '1' ? true : value === 'false' || value === '0' ? false : value,
    jsonSchema: () => ({ type: 'boolean' }),
  },
  [`${FORMAT_PREFIX}duration`]: {
    written: 'duration',
    validate: (value, { min, max }) => {
      if (typeof value !== 'number') fail('must be a duration such as 500ms, 60s, 15m or 1h30m');
      if (min !== undefined && value < min) fail(`must be at least ${formatDuration(min)}`);
      if (max !== undefined && value > max) fail(`must be at most ${formatDuration(max)}`);
    },
    coerce: (value) => parseDuration(value) ?? value,
    jsonSchema: () => ({
      type: 'string',
      pattern: `^(${DURATION_PATTERN.slice(1, -1)}|.*${ENV_REF_PATTERN}.*)$`,
    }),
    jsonDefault: (value) => (typeof value === 'number' ? formatDuration(value) : value),
  },
} satisfies Record<string, FormatSpec>;

type FormatName = keyof typeof FORMATS;

for (const [name, spec] of Object.entries(FORMATS) as [string, FormatSpec][]) {
  convict.addFormat({
    name,
    validate: (value: unknown, schema: convict.SchemaObj) =>
      spec.validate(value, schema as unknown as LeafSchema),
    ...(spec.coerce ? { coerce: spec.coerce } : {}),
  });
}

export function formatSpec(name: string): FormatSpec | undefined {
  return (FORMATS as Record<string, FormatSpec>)[name];
}

/** One setting. `min`/`max` are ours: convict keeps unknown keys and hands the leaf to the validator. */
export interface DaemonLeaf {
  readonly doc: string;
  readonly format: FormatName;
  readonly default: string | number | boolean;
  readonly env: string;
  readonly sensitive?: boolean;
  readonly min?: number;
  readonly max?: number;
}

export interface DaemonGroup {
  readonly [key: string]: DaemonLeaf | DaemonGroup;
}

export function isLeaf(node: DaemonLeaf | DaemonGroup): node is DaemonLeaf {
  return typeof node === 'object' && 'default' in node && typeof node.format === 'string';
}

const S = 1_000;
const MIN = 60 * S;
const H = 60 * MIN;
const D = 24 * H;

const f = (name: string): FormatName => `${FORMAT_PREFIX}${name}` as FormatName;

/** The convict schema of `daemon:`. Durations are held in milliseconds; the file writes them as `60s`. */
export const daemonSchema = {
  instanceId: {
    doc: 'Unique per process: names its delivery consumers and tags its logs. Empty: "<hostname>-<pid>" (a pod name on Kubernetes).',
    format: f('instance-id'),
    default: '',
    env: 'INSTANCE_ID',
  },
  dataDir: {
    doc: 'Directory for the embedded redis-server (its AOF lives in dataDir/redis).',
    format: f('path'),
    default: './data',
    env: 'DATA_DIR',
  },
  redis: {
    url: {
      doc: 'Redis 7+ with AOF on and maxmemory-policy noeviction: redis://host:6379, a Sentinel group redis+sentinel://s1:26379,s2,s3/MASTER-NAME (?sentinelPassword= when the sentinels want one), or a Cluster redis+cluster://n1:6379,n2,n3; rediss… for TLS. Empty: start an embedded redis-server in dataDir (one replica only). May hold a password (write it as ${VAR}): never printed.',
      format: f('redis-url'),
      default: '',
      env: 'REDIS_URL',
      sensitive: true,
    },
    prefix: {
      doc: 'Prefix of every Redis key. Must contain a {hash tag} so the keys one script touches share a Redis Cluster slot; give each deployment sharing a Redis its own.',
      format: f('redis-prefix'),
      default: '{auditlog}',
      env: 'REDIS_PREFIX',
    },
  },
  log: {
    level: {
      doc: 'Log level; logs are JSON lines on standard error.',
      format: f('log-level'),
      default: 'info',
      env: 'LOG_LEVEL',
    },
  },
  metrics: {
    host: {
      doc: 'Address the Prometheus metrics and health server listens on.',
      format: f('host'),
      default: '0.0.0.0',
      env: 'METRICS_HOST',
    },
    port: {
      doc: 'Port of the metrics and health server (/metrics, /healthz, /readyz); 0 turns it off.',
      format: f('port'),
      default: 9464,
      env: 'METRICS_PORT',
    },
    perScopeLabels: {
      doc: 'Label per-scope metrics (checkpoint lag) with the scope; turn off for fleets of tens of thousands of scopes.',
      format: f('flag'),
      default: true,
      env: 'METRICS_PER_SCOPE_LABELS',
    },
  },
  poll: {
    concurrency: {
      doc: 'Poll jobs this process runs at once.',
      format: f('count'),
      default: 8,
      env: 'POLL_CONCURRENCY',
      min: 1,
      max: 1_000,
    },
    leaseTtl: {
      doc: "A poll's lease on its scope, renewed at a third of it while the poll runs; a crashed poller's scope is free again after this.",
      format: f('duration'),
      default: 30 * S,
      env: 'POLL_LEASE_TTL',
      min: S,
      max: H,
    },
    interval: {
      doc: 'Poll interval of scopes whose provider and scope entries set none.',
      format: f('duration'),
      default: 60 * S,
      env: 'POLL_INTERVAL',
      min: S,
      max: D,
    },
    notFoundRecheck: {
      doc: "A scope the provider answers 404 for (deleted, or out of the credential's reach) is polled only this often until it answers again; nothing it had is lost meanwhile.",
      format: f('duration'),
      default: 15 * MIN,
      env: 'POLL_NOT_FOUND_RECHECK',
      min: S,
      max: D,
    },
  },
  backfill: {
    concurrency: {
      doc: 'Backfill jobs (history older than the live lane reads) this process runs at once, besides its live polls; 0 runs none here. Backfills also yield to live polls in the request budget.',
      format: f('count'),
      default: 2,
      env: 'BACKFILL_CONCURRENCY',
      min: 0,
      max: 100,
    },
    slice: {
      doc: 'A backfill job reads at most this long, then hands its slot to the next waiting backfill (round robin over scopes); its progress is kept.',
      format: f('duration'),
      default: 5 * MIN,
      env: 'BACKFILL_SLICE',
      min: S,
      max: H,
    },
  },
  outbox: {
    maxLength: {
      doc: "Events a sink's outbox may hold before the polls that feed it pause (the provider's retention holds the backlog meanwhile).",
      format: f('count'),
      default: 100_000,
      env: 'OUTBOX_MAX_LENGTH',
      min: 100,
      max: 100_000_000,
    },
  },
  delivery: {
    batchSize: {
      doc: 'Events sent to a sink in one request at most.',
      format: f('count'),
      default: 500,
      env: 'DELIVERY_BATCH_SIZE',
      min: 1,
      max: 100_000,
    },
    retryInitial: {
      doc: 'First backoff after a failed delivery; it doubles up to retryMax (a Retry-After from the sink wins).',
      format: f('duration'),
      default: S,
      env: 'DELIVERY_RETRY_INITIAL',
      min: 10,
      max: H,
    },
    retryMax: {
      doc: 'Longest backoff between delivery attempts. Deliveries are retried until they succeed; events are never dropped.',
      format: f('duration'),
      default: 5 * MIN,
      env: 'DELIVERY_RETRY_MAX',
      min: 100,
      max: D,
    },
    consumerTimeout: {
      doc: 'A delivery consumer silent this long is presumed dead and its pending events are taken over by another.',
      format: f('duration'),
      default: 30 * S,
      env: 'DELIVERY_CONSUMER_TIMEOUT',
      min: S,
      max: H,
    },
  },
  shutdownTimeout: {
    doc: 'On SIGTERM, how long in-flight polls and deliveries may take to finish; keep it below the pod terminationGracePeriodSeconds (30s by default).',
    format: f('duration'),
    default: 25 * S,
    env: 'SHUTDOWN_TIMEOUT',
    min: S,
    max: 10 * MIN,
  },
} as const satisfies DaemonGroup;

/** Descriptions of the groups (convict has no place for them: a `doc` key would read as a setting). */
export const DAEMON_GROUP_DOCS: Readonly<Record<string, string>> = {
  '': 'Process-wide settings. Each can be overridden by the environment variable named in its description.',
  redis: 'Where the shipper keeps checkpoints, leases, dedupe sets and the per-sink outboxes.',
  log: 'Logging.',
  metrics: 'Prometheus metrics and health endpoints.',
  poll: 'Polling of provider audit logs.',
  backfill: 'Reading history in its own lane (backfill command, or a lookback longer than one day).',
  outbox: 'The per-sink queues between polling and delivery.',
  delivery: 'Delivery of events to sinks.',
};

/** The shape convict holds after coercion (durations in ms). */
interface DaemonValues {
  instanceId: string;
  dataDir: string;
  redis: { url: string; prefix: string };
  log: { level: LogLevel };
  metrics: { host: string; port: number; perScopeLabels: boolean };
  poll: { concurrency: number; leaseTtl: number; interval: number; notFoundRecheck: number };
  backfill: { concurrency: number; slice: number };
  outbox: { maxLength: number };
  delivery: { batchSize: number; retryInitial: number; retryMax: number; consumerTimeout: number };
  shutdownTimeout: number;
}

export interface DaemonContext {
  readonly env: Env;
  /** Finds a path of the whole file (starting with `daemon`) in the YAML. */
  readonly locate: (path: readonly PathSegment[], at?: 'value' | 'key') => Position | undefined;
}

/** Where an issue is: its path, and the line and column of that path in the file. */
type Locator = (path: readonly PathSegment[], where?: 'value' | 'key') => Omit<ConfigIssue, 'message'>;

export interface DaemonResult {
  /** Undefined when there were issues. */
  readonly settings?: DaemonSettings;
  readonly issues: ConfigIssue[];
  readonly warnings: string[];
}

function leafAt(path: readonly string[]): DaemonLeaf | undefined {
  let node: DaemonLeaf | DaemonGroup = daemonSchema;
  for (const key of path) {
    if (isLeaf(node) || !Object.hasOwn(node, key)) return undefined;
    node = node[key] as DaemonLeaf | DaemonGroup;
  }
  return isLeaf(node) ? node : undefined;
}

/** Resolves the `daemon:` section: file values (with `${VAR}` resolved) under environment overrides. */
export function resolveDaemon(raw: unknown, ctx: DaemonContext): DaemonResult {
  const issues: ConfigIssue[] = [];
  const at: Locator = (path, where = 'value') => ({
    path: formatPath(path),
    ...ctx.locate(path, where),
  });

  let fileValues: Record<string, unknown> = {};
  if (raw !== undefined && raw !== null) {
    if (isPlainObject(raw)) fileValues = prepare(daemonSchema, raw, ['daemon'], ctx.env, issues, at);
    else issues.push({ ...at(['daemon']), message: `must be a mapping (got ${kindOf(raw)})` });
  }

  const config = convict<DaemonValues>(daemonSchema as unknown as convict.Schema<DaemonValues>, {
    env: ctx.env as NodeJS.ProcessEnv,
    args: [],
  });
  try {
    config.load(fileValues);
    config.validate({ allowed: 'strict' });
  } catch (error) {
    issues.push(...convictIssues((error as Error).message, ctx, at));
  }

  const values = config.getProperties();
  if (
    typeof values.delivery.retryInitial === 'number' &&
    typeof values.delivery.retryMax === 'number' &&
    values.delivery.retryInitial > values.delivery.retryMax &&
    !issues.some((issue) => issue.path.startsWith('daemon.delivery.retry'))
  ) {
    issues.push({
      ...at(['daemon', 'delivery', 'retryMax']),
      ...envSource(['delivery', 'retryMax'], ctx.env),
      message: `must not be shorter than delivery.retryInitial (${formatDuration(values.delivery.retryInitial)})`,
    });
  }
  if (issues.length > 0) return { issues, warnings: [] };

  const settings = toSettings(values);
  const warnings: string[] = [];
  if (settings.redis.url === '') {
    warnings.push(
      `daemon.redis.url is empty: an embedded redis-server will run in ${settings.dataDir}. That suits one replica only; ` +
        'to run several, or to keep state beyond this pod, set REDIS_URL to a shared Redis (AOF on, maxmemory-policy noeviction).',
    );
  }
  return { settings, issues, warnings };
}

/**
 * Checks the file's daemon section against the schema's structure and resolves `${VAR}` in its strings.
 * Values convict would mangle (a mapping where a setting belongs, a bare number for a duration) are
 * reported here and left out; unknown keys pass through so convict's strict mode names them.
 */
function prepare(
  group: DaemonGroup,
  raw: Record<string, unknown>,
  path: readonly string[],
  env: Env,
  issues: ConfigIssue[],
  at: Locator,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    const here = [...path, key];
    const node = Object.hasOwn(group, key) ? group[key] : undefined;
    if (node === undefined) {
      out[key] = value;
      continue;
    }
    if (value === null || value === undefined) continue; // `key:` with nothing: the default applies
    if (!isLeaf(node)) {
      if (isPlainObject(value)) out[key] = prepare(node, value, here, env, issues, at);
      else issues.push({ ...at(here), message: `must be a mapping (got ${kindOf(value)})` });
      continue;
    }
    const spec = formatSpec(node.format) as FormatSpec;
    if (isPlainObject(value) || Array.isArray(value)) {
      issues.push({ ...at(here), message: `must be a single value, not ${kindOf(value)}` });
      continue;
    }
    if (
      typeof value === 'string' &&
      node.format === f('redis-url') &&
      (hasInlinePassword(value) || /[?&]sentinelPassword=(?!\$\{)[^&]/.test(value))
    ) {
      issues.push({
        ...at(here),
        message:
          'must not hold a password written in the file (inline secrets are refused): reference it, e.g. redis://:${REDIS_PASSWORD}@redis:6379, or set REDIS_URL in the environment',
      });
      continue;
    }
    if (typeof value === 'string') {
      const { value: resolved, missing } = interpolateEnv(value, env);
      if (missing.length > 0) {
        const names = missing.map((name) => `\${${name}}`).join(', ');
        issues.push({
          ...at(here),
          message: `environment variable${missing.length > 1 ? 's' : ''} ${names} ${missing.length > 1 ? 'are' : 'is'} not set`,
        });
        continue;
      }
      if (spec.written === 'number' && !value.includes('${')) {
        issues.push({ ...at(here), message: 'must be a number (written without quotes)' });
        continue;
      }
      out[key] = resolved;
      continue;
    }
    if (spec.written === 'duration') {
      issues.push({
        ...at(here),
        message:
          typeof value === 'number'
            ? 'must be a duration with a unit, such as 60s or 15m (a bare number is ambiguous)'
            : 'must be a duration such as 60s or 15m',
      });
      continue;
    }
    out[key] = value;
  }
  return out;
}

/** `daemon.metrics.port (from env METRICS_PORT)` attribution, when the environment set that value. */
function envSource(path: readonly string[], env: Env): { env?: string } {
  const leaf = leafAt(path);
  return leaf !== undefined && env[leaf.env] !== undefined ? { env: leaf.env } : {};
}

const UNDECLARED = /^configuration param '(.+)' not declared in the schema$/;
const MISSING = /^configuration param '(.+)' missing from config, did you override its parent\?$/;
const INVALID = /^([A-Za-z0-9_.]+): (.*)$/;

/**
 * Convict reports all problems in one message, a line each. They are parsed back into issues with the
 * file's paths and lines; the `: value was ...` convict appends is dropped, so no value is ever echoed.
 */
function convictIssues(message: string, ctx: DaemonContext, at: Locator): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const seen = new Set<string>();
  for (const line of message.split('\n')) {
    if (line.trim() === '') continue;
    let match = UNDECLARED.exec(line);
    if (match) {
      // `foo.bar.baz` undeclared because `foo` is unknown: report `foo` once, with a hint.
      const parts = (match[1] as string).split('.');
      let group: DaemonGroup = daemonSchema;
      const known: string[] = [];
      for (const part of parts) {
        const node: DaemonLeaf | DaemonGroup | undefined = Object.hasOwn(group, part)
          ? group[part]
          : undefined;
        if (node === undefined || isLeaf(node)) break;
        known.push(part);
        group = node;
      }
      const unknown = parts[known.length] ?? (parts.at(-1) as string);
      const path = ['daemon', ...known, unknown];
      const key = path.join('.');
      if (seen.has(key)) continue;
      seen.add(key);
      issues.push({
        ...at(path, 'key'),
        message: `unknown key "${unknown}"${didYouMean(unknown, Object.keys(group))}`,
      });
      continue;
    }
    match = MISSING.exec(line);
    if (match) {
      const parts = (match[1] as string).split('.');
      issues.push({
        ...at(['daemon', ...parts.slice(0, -1)]),
        path: formatPath(['daemon', ...parts]),
        message: 'is missing',
      });
      continue;
    }
    match = INVALID.exec(line);
    if (match) {
      const parts = (match[1] as string).split('.');
      let text = match[2] as string;
      const valueAt = text.indexOf(': value was ');
      if (valueAt >= 0) text = text.slice(0, valueAt);
      const source = envSource(parts, ctx.env);
      const path = ['daemon', ...parts];
      issues.push(
        source.env !== undefined
          ? { path: formatPath(path), env: source.env, message: text }
          : { ...at(path), message: text },
      );
      continue;
    }
    // Not a line we know how to read: say something without risking a value.
    issues.push({ path: 'daemon', message: 'invalid settings (unrecognised validation error)' });
  }
  return issues;
}

function toSettings(values: DaemonValues): DaemonSettings {
  const url = values.redis.url;
  registerUrlPassword(url);
  const redis = { url, prefix: values.redis.prefix };
  // The URL may carry a password: config dumps (JSON.stringify, pino, util.inspect) show it masked.
  const masked = () => ({ url: redactRedisUrl(url), prefix: redis.prefix });
  Object.defineProperty(redis, 'toJSON', { value: masked, enumerable: false });
  Object.defineProperty(redis, inspect.custom, { value: masked, enumerable: false });
  return {
    instanceId: values.instanceId === '' ? `${hostname()}-${process.pid}` : values.instanceId,
    dataDir: values.dataDir,
    redis,
    log: { level: values.log.level },
    metrics: {
      host: values.metrics.host,
      port: values.metrics.port,
      perScopeLabels: values.metrics.perScopeLabels,
    },
    poll: {
      concurrency: values.poll.concurrency,
      leaseTtlMs: values.poll.leaseTtl,
      intervalMs: values.poll.interval,
      notFoundRecheckMs: values.poll.notFoundRecheck,
    },
    backfill: { concurrency: values.backfill.concurrency, sliceMs: values.backfill.slice },
    outbox: { maxLength: values.outbox.maxLength },
    delivery: {
      batchSize: values.delivery.batchSize,
      retryInitialMs: values.delivery.retryInitial,
      retryMaxMs: values.delivery.retryMax,
      consumerTimeoutMs: values.delivery.consumerTimeout,
    },
    shutdownTimeoutMs: values.shutdownTimeout,
  };
}

/**
 * The Redis passwords (or lone user name) in a URL of any form, and a Sentinel URL's sentinelPassword,
 * known to the redactor like any other secret.
 */
function registerUrlPassword(url: string): void {
  let endpoint: ReturnType<typeof parseRedisUrl>;
  try {
    endpoint = parseRedisUrl(url);
  } catch {
    return; // not a Redis URL: the format check reports it
  }
  if (endpoint.kind === 'standalone') {
    try {
      const parsed = new URL(url);
      const secret = parsed.password !== '' ? parsed.password : parsed.username;
      if (secret !== '') registerSecretValue(decodeURIComponent(secret));
    } catch {
      // parseRedisUrl accepted it, so it parses
    }
    return;
  }
  if (endpoint.password !== undefined) registerSecretValue(endpoint.password);
  if (endpoint.kind === 'sentinel' && endpoint.sentinelPassword !== undefined) {
    registerSecretValue(endpoint.sentinelPassword);
  }
}
