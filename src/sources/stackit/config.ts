import { z } from 'zod';
import { duration, httpUrl, interpolateEnv, pickSecret, secretKeys, text } from '../../config/fields.ts';
import type { Secret } from '../../config/secret.ts';
import { requestTimeoutField, retryField, tlsField } from '../provider-fields.ts';
import {
  DEFAULT_TOKEN_ENDPOINT,
  parseServiceAccountKey,
  type ServiceAccountKey,
} from './auth/service-account-key.ts';
import { DEFAULT_FEDERATED_TOKEN_FILE, DEFAULT_WIF_TOKEN_ENDPOINT } from './auth/workload-identity.ts';
import {
  DISPLAY_NAME,
  DISPLAY_NAME_MAX,
  TELEMETRY_REGIONS,
  type TelemetryRegion,
} from './telemetry/schemas.ts';

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

/** The documented STACKIT Audit Log limit (research/providers.md §1.6); what it counts against is unconfirmed. */
const DEFAULT_RATE = { requestsPerMinute: 60, burst: 10 };

const rateLimit = () =>
  z
    .strictObject({
      requestsPerMinute: z
        .number()
        .int()
        .min(1)
        .max(1_000_000)
        .default(DEFAULT_RATE.requestsPerMinute)
        .describe('Requests per minute this credential may send, summed over every replica.'),
      burst: z
        .number()
        .int()
        .min(1)
        .max(100_000)
        .default(DEFAULT_RATE.burst)
        .describe(
          'Requests that may go out at once after a quiet spell. Backfills leave half of it to live polling.',
        ),
    })
    .prefault({});

/**
 * Workload Identity Federation. Each setting defaults to the environment variable STACKIT's SDKs and its
 * pod identity webhook use, then to STACKIT's default, so `workloadIdentity: true` works in a pod the
 * webhook prepared.
 */
const workloadIdentitySchema = z
  .union([
    z.literal(true),
    z.strictObject({
      serviceAccountEmail: text()
        .optional()
        .describe('The STACKIT service account (client_id); default $STACKIT_SERVICE_ACCOUNT_EMAIL.'),
      tokenFile: text()
        .optional()
        .describe(
          `The projected federated token, re-read as it rotates; default $STACKIT_FEDERATED_TOKEN_FILE, then ${DEFAULT_FEDERATED_TOKEN_FILE}.`,
        ),
      tokenEndpoint: httpUrl()
        .optional()
        .describe(
          `Where the token is exchanged; default $STACKIT_IDP_ENDPOINT, then ${DEFAULT_WIF_TOKEN_ENDPOINT}.`,
        ),
    }),
  ])
  .describe(
    "STACKIT Workload Identity Federation (recommended): exchange the pod's projected service-account token for access tokens. true, or settings.",
  );

const authSchema = z
  .strictObject({
    workloadIdentity: workloadIdentitySchema.optional(),
    ...secretKeys('serviceAccountKey'),
    ...secretKeys('privateKey'),
    tokenEndpoint: httpUrl()
      .optional()
      .describe(
        `Token endpoint of the key flow, used when the key names none (default ${DEFAULT_TOKEN_ENDPOINT}).`,
      ),
    ...secretKeys('token'),
  })
  .transform((value, ctx) => resolveAuth(value, ctx))
  .describe(
    'Workload Identity Federation (workloadIdentity: true), the service-account key flow (serviceAccountKey: ${ENV} holding the key JSON, or serviceAccountKeyFile: /path), ' +
      'or a static bearer token (token: ${ENV} or tokenFile: /path; deprecated by STACKIT).',
  );

/** Plain HTTP would hand the receiver's credentials to anyone on the path; loopback is for tests. */
function isHttpsOrLoopback(value: string): boolean {
  const url = new URL(value);
  return url.protocol === 'https:' || ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
}

/** Where the Telemetry Router pushes: the receiver's public URL and the credential it must present. */
const destinationSchema = z
  .strictObject({
    url: httpUrl()
      .refine(isHttpsOrLoopback, 'must be https:// (the router sends the credential to it)')
      .describe(
        "The shipper's OTLP receiver as the router reaches it, e.g. https://audit-receiver.example.com.",
      ),
    ...secretKeys('bearerToken'),
    username: text().optional().describe('Basic auth user (with password or passwordFile).'),
    ...secretKeys('password'),
  })
  .transform((value, ctx) => {
    const bearerToken = pickSecret(value, 'bearerToken', ctx, false);
    const password = pickSecret(value, 'password', ctx, false);
    const basic = value.username !== undefined || password !== undefined;
    if (
      (bearerToken !== undefined) === basic ||
      (basic && (value.username === undefined || password === undefined))
    ) {
      ctx.issues.push({
        code: 'custom',
        message:
          'needs one credential for the receiver: bearerToken (or bearerTokenFile), or username with password (or passwordFile)',
        input: '[redacted]',
        path: [],
      });
      return z.NEVER;
    }
    return {
      url: value.url,
      ...(bearerToken !== undefined
        ? { auth: { kind: 'bearer' as const, token: bearerToken } }
        : {
            auth: {
              kind: 'basic' as const,
              username: value.username as string,
              password: password as Secret,
            },
          }),
    };
  });

export type TelemetryDestination = z.output<typeof destinationSchema>;

const telemetrySchema = z
  .strictObject({
    linkApiUrl: httpUrl()
      .prefault('https://telemetry-link.api.stackit.cloud')
      .describe('Base URL of the Telemetry Link API.'),
    routerApiUrl: httpUrl()
      .prefault('https://telemetry-router.api.stackit.cloud')
      .describe('Base URL of the Telemetry Router API.'),
    routerProject: z
      .guid('must be a UUID')
      .transform((id) => id.toLowerCase())
      .describe('The project that owns the Telemetry Router (one router per region).'),
    regions: z
      .array(z.enum(TELEMETRY_REGIONS))
      .min(1)
      .default(['eu01'])
      .transform((list): TelemetryRegion[] => [...new Set(list)])
      .describe('Regions to link in: a router, a destination and one link per scope in each.'),
    routerName: z
      .string()
      .max(DISPLAY_NAME_MAX)
      .regex(DISPLAY_NAME, 'letters, digits, spaces and "-", starting with a letter or digit')
      .default('auditlog-shipper')
      .describe(
        'displayName of the router, its destination, access tokens and links the shipper creates (at most 32 characters).',
      ),
    destination: destinationSchema,
    reconcile: z
      .union([z.literal(false), duration({ min: 60_000, max: 7 * 86_400_000 })])
      .default(false)
      .describe(
        'Off by default. A duration (e.g. 1h) makes the leading daemon replica run `stackit links apply` on that interval, so new projects get their links.',
      ),
  })
  .describe(
    'STACKIT Telemetry Router push: what `auditlog-shipper stackit links plan|apply` creates for every scope of this provider (configured and discovered).',
  );

export type TelemetrySettings = z.output<typeof telemetrySchema>;

export const stackitProviderSchema = z.strictObject({
  auditLogUrl: httpUrl()
    .prefault('https://auditlog.api.stackit.cloud')
    .describe('Base URL of the Audit Log API (regions, proxies, the simulator).'),
  resourceManagerUrl: httpUrl()
    .prefault('https://resource-manager.api.stackit.cloud')
    .describe('Base URL of the Resource Manager API, which scope discovery walks.'),
  auth: authSchema,
  rateLimit: rateLimit().describe(
    'Request budget of this credential at the Audit Log API, shared by all replicas through Redis. A 429 pauses it for Retry-After (or a backoff).',
  ),
  resourceManagerRateLimit: rateLimit().describe(
    'Request budget of this credential at the Resource Manager API (discovery), shared by all replicas.',
  ),
  overlap: timing.overlap.prefault('15m'),
  settleLag: timing.settleLag.prefault('60s'),
  lookback: timing.lookback.prefault('1h'),
  requestTimeout: requestTimeoutField(),
  retry: retryField(
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
  tls: tlsField(),
  telemetry: telemetrySchema.optional(),
});

export type StackitProviderSettings = z.output<typeof stackitProviderSchema>;

/**
 * How a provider authenticates, resolved: workload identity federation, the key flow, or a static token
 * (deprecated by STACKIT).
 */
export type StackitAuth =
  | {
      readonly kind: 'workload-identity';
      readonly serviceAccountEmail: string;
      readonly tokenFile: string;
      readonly tokenEndpoint: string;
    }
  | { readonly kind: 'key'; readonly key: ServiceAccountKey; readonly tokenEndpoint: string }
  | { readonly kind: 'token'; readonly token: Secret };

/** A setting, or the environment variable's value, or the default. */
function fromEnv(value: string | undefined, variable: string, fallback?: string): string | undefined {
  if (value !== undefined && value !== '') return value;
  const found = interpolateEnv(`\${${variable}}`);
  return found.missing.length === 0 && found.value !== '' ? found.value : fallback;
}

function resolveWorkloadIdentity(
  value: z.output<typeof workloadIdentitySchema>,
  others: readonly string[],
  ctx: z.RefinementCtx,
): StackitAuth {
  if (others.length > 0) {
    ctx.issues.push({
      code: 'custom',
      message: `workloadIdentity replaces ${others.join(' and ')}; set one way to authenticate`,
      input: '[redacted]',
      path: [],
    });
    return z.NEVER;
  }
  const settings = value === true ? {} : value;
  const serviceAccountEmail = fromEnv(settings.serviceAccountEmail, 'STACKIT_SERVICE_ACCOUNT_EMAIL');
  if (serviceAccountEmail === undefined || !serviceAccountEmail.includes('@')) {
    ctx.issues.push({
      code: 'custom',
      message:
        serviceAccountEmail === undefined
          ? 'needs the service account e-mail: serviceAccountEmail, or the environment variable STACKIT_SERVICE_ACCOUNT_EMAIL (set by the pod identity webhook)'
          : 'serviceAccountEmail must be the service account e-mail (…@sa.stackit.cloud)',
      input: serviceAccountEmail,
      path: ['workloadIdentity', 'serviceAccountEmail'],
    });
    return z.NEVER;
  }
  return {
    kind: 'workload-identity',
    serviceAccountEmail,
    tokenFile: fromEnv(
      settings.tokenFile,
      'STACKIT_FEDERATED_TOKEN_FILE',
      DEFAULT_FEDERATED_TOKEN_FILE,
    ) as string,
    tokenEndpoint: fromEnv(
      settings.tokenEndpoint,
      'STACKIT_IDP_ENDPOINT',
      DEFAULT_WIF_TOKEN_ENDPOINT,
    ) as string,
  };
}

function resolveAuth(value: Record<string, unknown>, ctx: z.RefinementCtx): StackitAuth {
  const has = (key: string): boolean => value[key] !== undefined || value[`${key}File`] !== undefined;
  if (value.workloadIdentity !== undefined) {
    const others = ['serviceAccountKey', 'privateKey', 'token'].filter(has);
    if (value.tokenEndpoint !== undefined) others.push('tokenEndpoint');
    return resolveWorkloadIdentity(
      value.workloadIdentity as z.output<typeof workloadIdentitySchema>,
      others,
      ctx,
    );
  }
  const keyFlow = has('serviceAccountKey');
  if (keyFlow && has('token')) {
    ctx.issues.push({
      code: 'custom',
      message:
        'set either a service-account key (serviceAccountKey/serviceAccountKeyFile) or a static token (token/tokenFile), not both',
      input: '[redacted]',
      path: [],
    });
    return z.NEVER;
  }
  if (!keyFlow) {
    if (has('privateKey') || value.tokenEndpoint !== undefined) {
      ctx.issues.push({
        code: 'custom',
        message:
          'serviceAccountKey or serviceAccountKeyFile is required: privateKey and tokenEndpoint belong to the key flow',
        input: undefined,
        path: [],
      });
      return z.NEVER;
    }
    if (!has('token')) {
      ctx.issues.push({
        code: 'custom',
        message:
          'token or tokenFile is required, or serviceAccountKey or serviceAccountKeyFile for the service-account key flow (recommended)',
        input: undefined,
        path: [],
      });
      return z.NEVER;
    }
    const token = pickSecret(value, 'token', ctx, true);
    return token === undefined ? z.NEVER : { kind: 'token', token };
  }

  const document = pickSecret(value, 'serviceAccountKey', ctx, true);
  const privateKey = pickSecret(value, 'privateKey', ctx, false);
  if (document === undefined) return z.NEVER;
  const parsed = parseServiceAccountKey(
    { text: document.reveal(), origin: document.origin },
    privateKey === undefined ? undefined : { text: privateKey.reveal(), origin: privateKey.origin },
  );
  if (!parsed.ok) {
    for (const issue of parsed.issues) {
      ctx.issues.push({
        code: 'custom',
        message: issue.message,
        input: '[redacted]',
        path: issue.path[0] === 'privateKey' ? [...issue.path] : ['serviceAccountKey', ...issue.path],
      });
    }
    return z.NEVER;
  }
  return {
    kind: 'key',
    key: parsed.key,
    tokenEndpoint:
      parsed.key.tokenEndpoint ?? (value.tokenEndpoint as string | undefined) ?? DEFAULT_TOKEN_ENDPOINT,
  };
}

/**
 * A subtree filter of discovery: a folder or project by id (it and everything under it), or labels a
 * container or one of its ancestors carries (`"*"` matches any value). Both given: both must match.
 */
const filterSchema = z
  .strictObject({
    id: z
      .guid('must be a UUID')
      .transform((id) => id.toLowerCase())
      .optional()
      .describe('A folder or project UUID: it and everything under it.'),
    labels: z
      .object({})
      .catchall(z.string())
      .optional()
      .describe('Labels (key: value, "*" for any value) the container or one of its ancestors carries.'),
  })
  .refine((filter) => filter.id !== undefined || filter.labels !== undefined, 'needs id or labels');

export type DiscoveryFilter = z.output<typeof filterSchema>;

const discoverObject = z.strictObject({
  interval: duration({ min: 1_000, max: DAY })
    .prefault('1h')
    .describe('How often the Resource Manager is walked again for new and deleted folders and projects.'),
  gracePeriod: duration({ max: 30 * DAY })
    .prefault('2h')
    .describe(
      'A folder or project missing from the walks this long stops being polled (its state is kept, see forgetAfter).',
    ),
  forgetAfter: duration({ min: DAY, max: 365 * DAY })
    .prefault('90d')
    .describe(
      'The checkpoint and dedupe set of a scope gone this long are deleted. Until then it resumes where it stopped if it comes back.',
    ),
  include: z
    .array(filterSchema)
    .default([])
    .describe('Only folders and projects matching one of these (default: all).'),
  exclude: z.array(filterSchema).default([]).describe('Never folders and projects matching one of these.'),
  maxScopes: z
    .number()
    .int()
    .min(1)
    .max(1_000_000)
    .default(10_000)
    .describe('A walk that finds more containers fails instead of polling a runaway number of scopes.'),
});

export interface DiscoverySettings {
  readonly intervalMs: number;
  readonly gracePeriodMs: number;
  readonly forgetAfterMs: number;
  readonly include: readonly DiscoveryFilter[];
  readonly exclude: readonly DiscoveryFilter[];
  readonly maxScopes: number;
}

const discoverSchema = z
  .union([z.boolean(), discoverObject])
  .transform((value): DiscoverySettings | undefined => {
    if (value === false) return undefined;
    const settings = value === true ? discoverObject.parse({}) : value;
    return {
      intervalMs: settings.interval,
      gracePeriodMs: settings.gracePeriod,
      forgetAfterMs: settings.forgetAfter,
      include: settings.include,
      exclude: settings.exclude,
      maxScopes: settings.maxScopes,
    };
  })
  .describe(
    'Poll every folder and project under this organization or folder too (the audit log does not aggregate nested scopes): true, or settings.',
  );

export const stackitScopeSchema = z
  .strictObject({
    organization: z.guid('must be a UUID').optional(),
    folder: z.guid('must be a UUID').optional(),
    project: z.guid('must be a UUID').optional(),
    overlap: timing.overlap.optional(),
    settleLag: timing.settleLag.optional(),
    lookback: timing.lookback.optional(),
    discover: discoverSchema.optional(),
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
    if (value.discover !== undefined && kind === 'project') {
      ctx.issues.push({
        code: 'custom',
        message: 'discovery walks an organization or a folder; a project has nothing under it',
        input: value.discover,
        path: ['discover'],
      });
      return z.NEVER;
    }
    return {
      kind,
      // One spelling per UUID: the id names the scope's state in Redis.
      id: (value[kind] as string).toLowerCase(),
      overlap: value.overlap,
      settleLag: value.settleLag,
      lookback: value.lookback,
      ...(value.discover !== undefined ? { discover: value.discover } : {}),
    };
  });

export type StackitScopeSettings = z.output<typeof stackitScopeSchema>;
