import { z } from 'zod';
import { readBoundedFile, SECRET_FILE_MAX_BYTES } from './bounded-file.ts';
import { DURATION_PATTERN, formatDuration, parseDuration } from './duration.ts';
import { Secret } from './secret.ts';

/**
 * The field types config schemas are built from. Every string an operator writes may reference the
 * environment (`${VAR}`, `${VAR:-default}`, `$$` for a literal `$`); credentials must be references,
 * so a token never sits in a ConfigMap or a git repository in clear text.
 */

const ENV_REF = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;
const WHOLE_ENV_REF = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/;

export type Env = Readonly<Record<string, string | undefined>>;

/** The environment config values are resolved against; tests swap it with `withEnv`. */
let currentEnv: Env = process.env;

export function withEnv<T>(env: Env, run: () => T): T {
  const previous = currentEnv;
  currentEnv = env;
  try {
    return run();
  } finally {
    currentEnv = previous;
  }
}

/** Replaces `${VAR}` references; returns the names that were missing instead of guessing a value. */
export function interpolateEnv(text: string, env: Env = currentEnv): { value: string; missing: string[] } {
  const missing: string[] = [];
  const value = text.replace(ENV_REF, (whole, name: string | undefined, fallback: string | undefined) => {
    if (whole === '$$') return '$';
    const found = env[name as string];
    if (found !== undefined && found !== '') return found;
    if (fallback !== undefined) return fallback;
    missing.push(name as string);
    return '';
  });
  return { value, missing };
}

function missingMessage(missing: string[]): string {
  const names = missing.map((n) => `\${${n}}`).join(', ');
  return `environment variable${missing.length > 1 ? 's' : ''} ${names} ${missing.length > 1 ? 'are' : 'is'} not set`;
}

/** A string with `${VAR}` references resolved. */
export function text() {
  return z.string().transform((raw, ctx) => {
    const { value, missing } = interpolateEnv(raw);
    if (missing.length > 0) {
      ctx.issues.push({ code: 'custom', message: missingMessage(missing), input: raw });
      return z.NEVER;
    }
    return value;
  });
}

/** A non-empty identifier used as a name (providers, sinks); not interpolated, it names state in Redis. */
export function name() {
  return z
    .string()
    .regex(
      /^[a-z0-9][a-z0-9_-]{0,62}$/,
      'must be 1-63 characters of a-z, 0-9, "_" or "-", starting with a letter or digit',
    );
}

/** An absolute http(s) URL; `${VAR}` references are resolved first. */
export function httpUrl() {
  return text().pipe(
    z.string().refine((value) => {
      try {
        const url = new URL(value);
        return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
      } catch {
        return false;
      }
    }, 'must be an http(s) URL'),
  );
}

export interface DurationBounds {
  readonly min?: number;
  readonly max?: number;
}

/** `500ms`, `60s`, `15m`, `1h30m`, `90d` → milliseconds. */
export function duration(bounds: DurationBounds = {}) {
  return z
    .string()
    .regex(new RegExp(DURATION_PATTERN), 'must be a duration such as 500ms, 60s, 15m, 1h30m or 90d')
    .transform((raw, ctx) => {
      const ms = parseDuration(raw) as number;
      if (bounds.min !== undefined && ms < bounds.min) {
        ctx.issues.push({
          code: 'custom',
          message: `must be at least ${formatDuration(bounds.min)}`,
          input: raw,
        });
        return z.NEVER;
      }
      if (bounds.max !== undefined && ms > bounds.max) {
        ctx.issues.push({
          code: 'custom',
          message: `must be at most ${formatDuration(bounds.max)}`,
          input: raw,
        });
        return z.NEVER;
      }
      return ms;
    });
}

/** A credential given as `${ENV_VAR}`. Inline values are refused: config files get committed and dumped. */
export function secretRef() {
  return z.string().transform((raw, ctx) => {
    const match = WHOLE_ENV_REF.exec(raw.trim());
    if (!match) {
      ctx.issues.push({
        code: 'custom',
        message:
          'must be an environment reference such as ${MY_TOKEN} (inline secrets are refused), or use the *File form',
        input: '[redacted]',
      });
      return z.NEVER;
    }
    const envName = match[1] as string;
    const value = currentEnv[envName];
    if (value === undefined || value === '') {
      ctx.issues.push({ code: 'custom', message: missingMessage([envName]), input: raw });
      return z.NEVER;
    }
    return new Secret(value, `env ${envName}`);
  });
}

/**
 * A credential read from a file (Kubernetes Secret volumes); one trailing newline is dropped. Only a
 * regular file of at most 64 KiB is read, never blocking (see readBoundedFile).
 */
export function secretFile() {
  return text().transform((path, ctx) => {
    let content: string;
    try {
      content = readBoundedFile(path, SECRET_FILE_MAX_BYTES)
        .toString('utf8')
        .replace(/\r?\n$/, '');
    } catch (error) {
      ctx.issues.push({ code: 'custom', message: (error as Error).message, input: path });
      return z.NEVER;
    }
    if (content === '') {
      ctx.issues.push({ code: 'custom', message: `file ${path} is empty`, input: path });
      return z.NEVER;
    }
    return new Secret(content, `file ${path}`);
  });
}

type SecretKeys<K extends string> = { [P in K]: z.ZodOptional<ReturnType<typeof secretRef>> } & {
  [P in `${K}File`]: z.ZodOptional<ReturnType<typeof secretFile>>;
};

/** The `{token: ${X}}` / `{tokenFile: /path}` pair for one credential, to spread into an object shape. */
export function secretKeys<K extends string>(key: K): SecretKeys<K> {
  return { [key]: secretRef().optional(), [`${key}File`]: secretFile().optional() } as SecretKeys<K>;
}

/**
 * Resolves a `secretKeys` pair to one Secret, reporting an issue when both or (if required) neither is set.
 * Call it from the owning object's `.transform`.
 */
export function pickSecret(
  value: Record<string, unknown>,
  key: string,
  ctx: z.RefinementCtx,
  required: boolean,
): Secret | undefined {
  const inline = value[key];
  const fromFile = value[`${key}File`];
  if (inline !== undefined && fromFile !== undefined) {
    ctx.issues.push({
      code: 'custom',
      message: `set either ${key} or ${key}File, not both`,
      input: '[redacted]',
      path: [key],
    });
    return undefined;
  }
  const secret = (inline ?? fromFile) as Secret | undefined;
  if (secret === undefined && required) {
    ctx.issues.push({
      code: 'custom',
      message: `${key} or ${key}File is required`,
      input: undefined,
      path: [],
    });
  }
  return secret;
}
