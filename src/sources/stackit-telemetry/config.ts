import { z } from 'zod';
import { duration, pickSecret, secretKeys, text } from '../../config/fields.ts';
import type { Secret } from '../../config/secret.ts';
import type { ReceiverAuth } from '../../otlp/receiver/auth.ts';
import type { PushReceiverSettings } from '../source.ts';

const DAY = 86_400_000;
const MIB = 1024 * 1024;

// 0 picks a free port (tests).
const port = z.number().int().min(0).max(65_535);

const basicAuth = z
  .strictObject({
    username: text().describe('The user name the destination sends.'),
    ...secretKeys('password'),
  })
  .transform((value, ctx) => ({
    username: value.username,
    password: pickSecret(value, 'password', ctx, true),
  }));

const auth = z
  .strictObject({
    ...secretKeys('bearerToken'),
    basic: basicAuth.optional().describe('Basic auth: username and password: ${VAR} or passwordFile.'),
    none: z
      .literal(true)
      .optional()
      .describe('Accept pushes without credentials (only behind something else that authenticates).'),
  })
  .transform((value, ctx): ReceiverAuth | undefined => {
    const token = pickSecret(value, 'bearerToken', ctx, false);
    const chosen = [token, value.basic, value.none].filter((v) => v !== undefined).length;
    if (chosen !== 1) {
      ctx.issues.push({
        code: 'custom',
        message: 'set exactly one of bearerToken/bearerTokenFile, basic or none: true',
        input: '[redacted]',
      });
      return undefined;
    }
    if (token) return { kind: 'bearer', token };
    if (value.basic)
      return { kind: 'basic', username: value.basic.username, password: value.basic.password as Secret };
    return { kind: 'none' };
  })
  .describe(
    'How the Telemetry Router destination authenticates: the bearer token or basic auth you gave its OpenTelemetry destination. Compared in constant time.',
  );

const tls = z
  .strictObject({
    certFile: text().describe('PEM certificate chain the receiver presents.'),
    keyFile: text().describe('PEM private key.'),
    clientCaFile: text()
      .optional()
      .describe('When set, pushers must present a client certificate signed by this CA (mutual TLS).'),
    reloadInterval: duration({ min: 1_000 })
      .prefault('30s')
      .describe('How often the files are checked for changes; changed files are loaded without a restart.'),
  })
  .describe('Serve HTTPS and gRPC over TLS from these files (re-read when they change).');

export const telemetryProviderSchema = z
  .strictObject({
    listen: z
      .strictObject({
        host: text().prefault('0.0.0.0').describe('Address the receiver binds.'),
        port: port.default(4318).describe('OTLP/HTTP port (POST /v1/logs, protobuf or JSON, gzip).'),
        grpcPort: port.optional().describe('OTLP/gRPC port (LogsService/Export), e.g. 4317. Unset: no gRPC.'),
      })
      .prefault({})
      .describe('Where the OTLP receiver listens. Every replica serves it; put one Service in front.'),
    auth,
    tls: tls.optional(),
    allowPlainHttp: z
      .boolean()
      .default(false)
      .describe(
        'Without tls the receiver takes credentials over plain HTTP; allow that only when TLS ends in front of it (an Ingress).',
      ),
    maxBodySize: z
      .number()
      .int()
      .min(1024)
      .max(256 * MIB)
      .default(16 * MIB)
      .describe('Largest request in bytes, compressed and after decompression; larger ones get a 400.'),
    dedupeWindow: duration({ min: 60_000, max: 90 * DAY })
      .prefault('7d')
      .describe(
        'How long (by event time) a pushed id is remembered to recognise redeliveries, for scopes nobody polls. A polled scope keeps its poller’s window.',
      ),
  })
  .superRefine((value, ctx) => {
    if (value.tls === undefined && !value.allowPlainHttp) {
      ctx.addIssue({
        code: 'custom',
        path: ['tls'],
        message:
          'the receiver needs tls (certFile, keyFile), or allowPlainHttp: true when TLS is terminated in front of it',
      });
    }
  });

export type TelemetryProviderSettings = z.output<typeof telemetryProviderSchema>;

/** A push provider takes no scopes: every record names its own. */
export const telemetryScopeSchema = z.never();

export function receiverSettings(settings: TelemetryProviderSettings): PushReceiverSettings {
  return {
    host: settings.listen.host,
    port: settings.listen.port,
    grpcPort: settings.listen.grpcPort,
    tls: settings.tls
      ? {
          certFile: settings.tls.certFile,
          keyFile: settings.tls.keyFile,
          clientCaFile: settings.tls.clientCaFile,
          reloadIntervalMs: settings.tls.reloadInterval,
        }
      : undefined,
    auth: settings.auth as ReceiverAuth,
    maxBodyBytes: settings.maxBodySize,
    dedupeWindowMs: settings.dedupeWindow,
  };
}
