/**
 * The Telemetry Link and Telemetry Router APIs' shapes, from STACKIT's published OpenAPI specs
 * (stackitcloud/stackit-api-specifications `services/telemetry-link/v1`, `services/telemetry-router/v1`).
 * Responses are validated with these before anything is read from them; unknown fields are tolerated
 * (APIs grow). Request bodies are typed, and the naming rules the API enforces are checked in the config.
 */
import { z } from 'zod';

export const TELEMETRY_REGIONS = ['eu01', 'eu02'] as const;
export type TelemetryRegion = (typeof TELEMETRY_REGIONS)[number];

export const LINK_LEVELS = ['organization', 'folder', 'project'] as const;
export type LinkLevel = (typeof LINK_LEVELS)[number];

/** displayName: 1–32 characters, letters, digits, spaces and "-", starting with a letter or digit. */
export const DISPLAY_NAME = /^[a-zA-Z0-9][a-zA-Z0-9 -]*$/;
export const DISPLAY_NAME_MAX = 32;
/** description: up to 1024 characters of the same alphabet (or empty). */
export const DESCRIPTION = /^([a-zA-Z0-9][a-zA-Z0-9 -]*)?$/;

export const LINK_STATUSES = ['active', 'inactive', 'failed', 'reconciling', 'deleting'] as const;
export type LinkStatus = (typeof LINK_STATUSES)[number];

export const telemetryLinkSchema = z.object({
  id: z.string().min(1),
  displayName: z.string(),
  description: z.string().optional(),
  regionId: z.string(),
  telemetryRouterId: z.string(),
  enabled: z.boolean(),
  status: z.enum(LINK_STATUSES),
  createTime: z.string(),
  accessToken: z.string().optional(),
});
export type TelemetryLink = z.infer<typeof telemetryLinkSchema>;

/** What PUT (all required but description) and PATCH (any subset) send. */
export interface TelemetryLinkRequest {
  readonly displayName: string;
  readonly description?: string;
  readonly telemetryRouterId: string;
  readonly enabled: boolean;
  readonly accessToken: string;
}

const filterSchema = z.object({
  attributes: z.array(
    z.object({
      key: z.string(),
      level: z.enum(['resource', 'scope', 'logRecord']),
      matcher: z.enum(['=', '!=']),
      values: z.array(z.string()),
    }),
  ),
});

export const telemetryRouterSchema = z.object({
  id: z.string().min(1),
  displayName: z.string(),
  description: z.string().optional(),
  status: z.enum(['reconciling', 'active', 'deleting']),
  creationTime: z.string(),
  uri: z.string(),
  filter: filterSchema.optional(),
});
export type TelemetryRouter = z.infer<typeof telemetryRouterSchema>;

export const destinationSchema = z.object({
  id: z.string().min(1),
  displayName: z.string(),
  description: z.string().optional(),
  status: z.enum(['reconciling', 'active', 'deleting']),
  creationTime: z.string(),
  credentialType: z.enum(['bearerToken', 'basicAuth', 'accessKey']),
  config: z.object({
    configType: z.enum(['OpenTelemetry', 'S3']),
    openTelemetry: z.object({ uri: z.string() }).loose().optional(),
    s3: z.object({ endpoint: z.string(), bucket: z.string() }).loose().optional(),
    filter: filterSchema.optional(),
  }),
});
export type Destination = z.infer<typeof destinationSchema>;

/** An OpenTelemetry destination's config as sent: the receiver's URI and one credential. */
export interface OpenTelemetryDestinationConfig {
  readonly configType: 'OpenTelemetry';
  readonly openTelemetry: {
    readonly uri: string;
    readonly bearerToken?: string;
    readonly basicAuth?: { readonly username: string; readonly password: string };
  };
}

export const accessTokenSchema = z.object({
  id: z.string().min(1),
  displayName: z.string(),
  description: z.string().optional(),
  status: z.enum(['active', 'expired', 'deleting']),
  creatorId: z.string(),
  expirationTime: z.string().nullish(),
});
export type RouterAccessToken = z.infer<typeof accessTokenSchema>;

/** Only the create answer carries the token itself; it cannot be read back later. */
export const createdAccessTokenSchema = accessTokenSchema.extend({ accessToken: z.string().min(1) });

export const routerListSchema = z.object({
  telemetryRouters: z.array(telemetryRouterSchema),
  nextPageToken: z.string().optional(),
});
export const destinationListSchema = z.object({
  destinations: z.array(destinationSchema),
  nextPageToken: z.string().optional(),
});
export const accessTokenListSchema = z.object({
  accessTokens: z.array(accessTokenSchema),
  nextPageToken: z.string().optional(),
});
