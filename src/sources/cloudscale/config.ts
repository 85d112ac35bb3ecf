import { createHash } from 'node:crypto';
import { z } from 'zod';
import { duration, httpUrl, pickSecret, secretKeys } from '../../config/fields.ts';
import type { Secret } from '../../config/secret.ts';
import { requestTimeoutField, retryField, tlsField } from '../provider-fields.ts';

const DAY = 86_400_000;

/** cloudscale keeps project logs for 90 days (from 2026-07-15, research/providers.md §4.5). */
export const RETENTION_MS = 90 * DAY;
/** The API's page size ("… Up to 199 more records"); there is no page-size parameter. */
export const PAGE_SIZE = 200;

const timing = {
  lookback: duration({ max: RETENTION_MS }).describe(
    'How far back a project seen for the first time starts (at most 90d, the retention).',
  ),
  overlap: duration({ max: RETENTION_MS }).describe(
    'Only used when the stored cursor is lost or refused: the poll restarts this far before the newest event it delivered and drops what it already has. Entries that commit later than this after their timestamp are missed in that case only.',
  ),
};

const tokenAuth = z
  .strictObject({ ...secretKeys('token') })
  .transform((value, ctx) => ({ token: pickSecret(value, 'token', ctx, true) as Secret }))
  .describe(
    'The API token of this project (read-only suffices): token: ${ENV_VAR} or tokenFile: /path. The token decides which project is read.',
  );

export const cloudscaleProviderSchema = z.strictObject({
  apiUrl: httpUrl()
    .prefault('https://api.cloudscale.ch')
    .describe(
      'Base URL of the cloudscale.ch API (a proxy, the simulator). Tokens are only ever sent to this origin; next/poll_more URLs pointing elsewhere are refused.',
    ),
  lookback: timing.lookback.prefault('1h'),
  overlap: timing.overlap.prefault('15m'),
  requestTimeout: requestTimeoutField(),
  retry: retryField(
    'Retries of 503 (maintenance), 429, other 5xx and network errors inside one poll (Retry-After is honoured). When they run out the poll fails, nothing is committed past the failure, and the next poll resumes there.',
  ),
  maxPagesPerPoll: z
    .number()
    .int()
    .min(1)
    .default(1_000)
    .describe(
      'Pages (200 entries each) one poll reads at most; a larger backlog continues in the next poll from the stored cursor.',
    ),
  tls: tlsField(),
});

export type CloudscaleProviderSettings = z.output<typeof cloudscaleProviderSchema>;

/**
 * The label of a project: the API takes no project parameter (the token implies it), so the label is
 * the operator's name for it. It names the scope's state in Redis and is part of every event id, so
 * renaming it starts the project over.
 */
export const PROJECT_LABEL = /^[a-z0-9][a-z0-9._-]{0,62}$/;

export const cloudscaleScopeSchema = z
  .strictObject({
    project: z
      .string()
      .regex(
        PROJECT_LABEL,
        'must be 1-63 characters of a-z, 0-9, ".", "_" or "-", starting with a letter or digit (e.g. the project name or UUID)',
      )
      .describe(
        'Your label for the cloudscale project this token belongs to, e.g. its name or UUID. Part of every event id and of the state key: keep it stable.',
      ),
    auth: tokenAuth,
    lookback: timing.lookback.optional(),
    overlap: timing.overlap.optional(),
  })
  .transform((value) => ({
    project: value.project,
    token: value.auth.token,
    lookback: value.lookback,
    overlap: value.overlap,
  }));

export type CloudscaleScopeSettings = z.output<typeof cloudscaleScopeSchema>;

/**
 * What makes two scopes the same project in disguise: the token. A digest, so the claim can be
 * compared (and leak nowhere) without holding the token itself.
 */
export function tokenClaim(scope: CloudscaleScopeSettings): string {
  return `cloudscale-token:${createHash('sha256').update(scope.token.reveal()).digest('hex')}`;
}
