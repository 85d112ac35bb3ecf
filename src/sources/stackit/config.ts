import { z } from 'zod';
import { duration, httpUrl, pickSecret, secretKeys, text } from '../../config/fields.ts';
import type { Secret } from '../../config/secret.ts';

const DAY = 86_400_000;

/** STACKIT keeps audit logs for 90 days; a lookback or overlap beyond that asks for data that is gone. */
export const RETENTION_MS = 90 * DAY;
/** The API refuses periods longer than 24 hours. */
export const MAX_WINDOW_MS = DAY;
/** The API's largest page. */
export const PAGE_LIMIT = 100;

export const SCOPE_KINDS = ['organization', 'folder', 'project'] as const;
export type StackitScopeKind = (typeof SCOPE_KINDS)[number];

const timing = {
  overlap: duration({ max: MAX_WINDOW_MS }).describe(
    'How far each poll re-reads before the high-water mark, to catch events that became visible late.',
  ),
  settleLag: duration({ max: MAX_WINDOW_MS }).describe(
    'How far behind now each poll stops; events younger than this are left for the next poll.',
  ),
  lookback: duration({ max: RETENTION_MS }).describe(
    'How far back a scope seen for the first time starts (at most 90d, the retention).',
  ),
};

const bearerAuth = z
  .strictObject({ ...secretKeys('token') })
  .transform((value, ctx) => ({ token: pickSecret(value, 'token', ctx, true) as Secret }))
  .describe('A static bearer token: token: ${ENV_VAR} or tokenFile: /path.');

export const stackitProviderSchema = z.strictObject({
  auditLogUrl: httpUrl()
    .prefault('https://auditlog.api.stackit.cloud')
    .describe('Base URL of the Audit Log API (regions, proxies, the simulator).'),
  auth: bearerAuth,
  overlap: timing.overlap.prefault('15m'),
  settleLag: timing.settleLag.prefault('60s'),
  lookback: timing.lookback.prefault('1h'),
  requestTimeout: duration({ min: 1_000, max: 300_000 })
    .prefault('30s')
    .describe('Per request, headers and body.'),
  retry: z
    .strictObject({
      attempts: z.number().int().min(1).max(20).default(5).describe('Tries per request within one poll.'),
      initialBackoff: duration({ min: 10 }).prefault('1s'),
      maxBackoff: duration({ min: 10 }).prefault('30s'),
    })
    .prefault({})
    .describe(
      'Retries of 429, 5xx and network errors inside one poll (Retry-After is honoured). When they run out the poll fails, nothing is committed past the failure, and the next poll resumes there.',
    ),
  maxPagesPerWindow: z
    .number()
    .int()
    .min(1)
    .default(10_000)
    .describe(
      'Guard against a provider that never ends pagination (100 events a page). A window that needs more fails its poll with reason pagination_loop.',
    ),
  tls: z
    .strictObject({
      caFile: text().optional().describe('Extra CA bundle (PEM) to trust, e.g. for a corporate proxy.'),
      insecureSkipVerify: z
        .boolean()
        .default(false)
        .describe('Turns off certificate verification. Never in production; logged loudly.'),
    })
    .prefault({}),
});

export type StackitProviderSettings = z.output<typeof stackitProviderSchema>;

export const stackitScopeSchema = z
  .strictObject({
    organization: z.guid('must be a UUID').optional(),
    folder: z.guid('must be a UUID').optional(),
    project: z.guid('must be a UUID').optional(),
    overlap: timing.overlap.optional(),
    settleLag: timing.settleLag.optional(),
    lookback: timing.lookback.optional(),
  })
  .transform((value, ctx) => {
    const given = SCOPE_KINDS.filter((kind) => value[kind] !== undefined);
    if (given.length !== 1) {
      ctx.issues.push({
        code: 'custom',
        message:
          given.length === 0
            ? 'needs one of organization, folder or project (its UUID)'
            : `names ${given.join(' and ')}; a scope is exactly one of organization, folder or project`,
        input: value,
      });
      return z.NEVER;
    }
    const kind = given[0] as StackitScopeKind;
    return {
      kind,
      // One spelling per UUID: the id names the scope's state in Redis.
      id: (value[kind] as string).toLowerCase(),
      overlap: value.overlap,
      settleLag: value.settleLag,
      lookback: value.lookback,
    };
  });

export type StackitScopeSettings = z.output<typeof stackitScopeSchema>;
