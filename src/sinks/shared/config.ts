import { z } from 'zod';
import { duration, pickSecret, secretKeys, text } from '../../config/fields.ts';
import { registerSecretValue } from '../../config/redact.ts';
import type { Secret } from '../../config/secret.ts';
import type { BatchPolicy } from '../sink.ts';

/** Config pieces several sinks share: batch limits, concurrency, timeouts, TLS and HTTP auth. */

const UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};

/** `5MiB`, `512KiB`, `10MB` or a plain number of bytes. */
export function byteSize(bounds: { min?: number; max?: number } = {}) {
  return z.union([z.number().int(), z.string()]).transform((raw, ctx) => {
    let bytes: number | undefined;
    if (typeof raw === 'number') bytes = raw;
    else {
      const m = /^\s*(\d+(?:\.\d+)?)\s*([KMG]i?B|B)?\s*$/i.exec(raw);
      if (m) bytes = Math.round(Number(m[1]) * (UNITS[(m[2] ?? 'b').toLowerCase()] ?? Number.NaN));
    }
    if (bytes === undefined || !Number.isFinite(bytes)) {
      ctx.issues.push({ code: 'custom', message: 'must be a size such as 512KiB, 5MiB or 10MB', input: raw });
      return z.NEVER;
    }
    if (bounds.min !== undefined && bytes < bounds.min) {
      ctx.issues.push({ code: 'custom', message: `must be at least ${bounds.min} bytes`, input: raw });
      return z.NEVER;
    }
    if (bounds.max !== undefined && bytes > bounds.max) {
      ctx.issues.push({ code: 'custom', message: `must be at most ${bounds.max} bytes`, input: raw });
      return z.NEVER;
    }
    return bytes;
  });
}

export interface BatchDefaults {
  readonly maxEvents: number;
  /** As written in config, e.g. `5MiB`. */
  readonly maxBytes: string;
  readonly linger: string;
  readonly concurrency: number;
}

/**
 * `batch: {maxEvents, maxBytes, linger}` and `concurrency`, with each sink's own defaults, to spread
 * into a sink schema's shape.
 */
export function batchingKeys(defaults: BatchDefaults) {
  return {
    batch: z
      .strictObject({
        maxEvents: z
          .number()
          .int()
          .min(1)
          .max(1_000_000)
          .default(defaults.maxEvents)
          .describe('Most events in one request.'),
        maxBytes: byteSize({ min: 1024 })
          .prefault(defaults.maxBytes)
          .describe('Most bytes of event JSON in one request, before compression (e.g. 5MiB).'),
        linger: duration({ max: 3_600_000 })
          .prefault(defaults.linger)
          .describe(
            'How long a batch that is not full waits for more events, counted from when its oldest event was committed.',
          ),
      })
      .prefault({})
      .describe('When a batch is sent: whichever of the limits is reached first.'),
    concurrency: z
      .number()
      .int()
      .min(1)
      .max(64)
      .default(defaults.concurrency)
      .describe('Requests in flight at once.'),
  };
}

export function batchPolicy(
  settings: {
    readonly batch: { readonly maxEvents: number; readonly maxBytes: number; readonly linger: number };
    readonly concurrency: number;
  },
  extra: Partial<BatchPolicy> = {},
): Partial<BatchPolicy> {
  return {
    maxEvents: settings.batch.maxEvents,
    maxBytes: settings.batch.maxBytes,
    lingerMs: settings.batch.linger,
    concurrency: settings.concurrency,
    ...extra,
  };
}

export const tlsSchema = z
  .strictObject({
    caFile: text().optional().describe('Extra CA bundle (PEM) to trust, e.g. a private CA.'),
    certFile: text().optional().describe('Client certificate (PEM) for mutual TLS.'),
    keyFile: text().optional().describe('Private key (PEM) of the client certificate.'),
    serverName: text()
      .optional()
      .describe('Name to verify the server certificate against (SNI), if not the URL host.'),
    insecureSkipVerify: z
      .boolean()
      .default(false)
      .describe('Turns off certificate verification. Never in production; the validator warns.'),
  })
  .prefault({})
  .refine((tls) => (tls.certFile === undefined) === (tls.keyFile === undefined), {
    message: 'certFile and keyFile go together',
  });

export type TlsSettings = z.output<typeof tlsSchema>;

export const timeoutKey = (fallback: string) =>
  duration({ min: 100, max: 600_000 })
    .prefault(fallback)
    .describe('Deadline of one request: connect, send, and the whole response.');

/** How a sink authenticates over HTTP; each credential is an `${ENV}` reference or a `*File` path. */
export type HttpAuth =
  | { readonly kind: 'none' }
  | { readonly kind: 'basic'; readonly username: string; readonly password: Secret }
  | { readonly kind: 'bearer'; readonly token: Secret }
  | { readonly kind: 'apiKey'; readonly apiKey: Secret };

/** `auth:` for HTTP sinks: `username` + `password`, or `bearerToken`, or (if allowed) `apiKey`. */
export function httpAuthSchema(options: { apiKey: boolean }) {
  return z
    .strictObject({
      username: text().optional().describe('Basic auth user.'),
      ...secretKeys('password'),
      ...secretKeys('bearerToken'),
      ...(options.apiKey ? secretKeys('apiKey') : {}),
    })
    .transform((value, ctx): HttpAuth => {
      const raw = value as Record<string, unknown>;
      const password = pickSecret(raw, 'password', ctx, false);
      const bearer = pickSecret(raw, 'bearerToken', ctx, false);
      const apiKey = options.apiKey ? pickSecret(raw, 'apiKey', ctx, false) : undefined;
      const kinds = [
        value.username !== undefined || password ? 'basic' : undefined,
        bearer ? 'bearerToken' : undefined,
        apiKey ? 'apiKey' : undefined,
      ].filter((k) => k !== undefined);
      if (kinds.length > 1) {
        ctx.issues.push({
          code: 'custom',
          message: `choose one way to authenticate, not ${kinds.join(' and ')}`,
          input: '[redacted]',
        });
        return z.NEVER;
      }
      if (value.username !== undefined || password) {
        if (value.username === undefined || !password) {
          ctx.issues.push({
            code: 'custom',
            message: 'basic auth needs both username and password (or passwordFile)',
            input: '[redacted]',
          });
          return z.NEVER;
        }
        return { kind: 'basic', username: value.username, password };
      }
      if (bearer) return { kind: 'bearer', token: bearer };
      if (apiKey) return { kind: 'apiKey', apiKey };
      return { kind: 'none' };
    })
    .prefault({})
    .describe(
      options.apiKey
        ? 'username + password (or passwordFile), or bearerToken(File), or apiKey(File): the base64 "encoded" value of an Elasticsearch API key. None: no Authorization header.'
        : 'username + password (or passwordFile), or bearerToken(File). None: no Authorization header.',
    );
}

/** The Authorization header for `auth`, if any. Only the HTTP layer calls this. */
export function authorizationHeader(auth: HttpAuth): string | undefined {
  switch (auth.kind) {
    case 'none':
      return undefined;
    case 'basic': {
      const encoded = Buffer.from(`${auth.username}:${auth.password.reveal()}`).toString('base64');
      // A server echoing the header shows the encoded form, which carries the password.
      registerSecretValue(encoded);
      return `Basic ${encoded}`;
    }
    case 'bearer':
      return `Bearer ${auth.token.reveal()}`;
    case 'apiKey':
      return `ApiKey ${auth.apiKey.reveal()}`;
  }
}
