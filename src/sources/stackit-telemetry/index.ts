import { defineSource, type Source } from '../source.ts';
import {
  receiverSettings,
  type TelemetryProviderSettings,
  telemetryProviderSchema,
  telemetryScopeSchema,
} from './config.ts';
import { mapTelemetryRecord } from './record.ts';

/** A push provider is never polled: it has no scopes, so nothing ever calls pull. */
const NOTHING_TO_POLL: Source = {
  pull: () => {
    throw new Error('a stackit-telemetry provider receives pushed events and has no scopes to poll');
  },
  close: async () => undefined,
};

export const stackitTelemetry = defineSource<TelemetryProviderSettings, never>({
  type: 'stackit-telemetry',
  description:
    'STACKIT audit logs pushed by a Telemetry Router as OTLP logs (HTTP protobuf/JSON and gRPC); takes no scopes',
  providerSchema: telemetryProviderSchema,
  scopeSchema: telemetryScopeSchema,
  scopeRef: () => {
    throw new Error('a stackit-telemetry provider has no scopes');
  },
  create: () => NOTHING_TO_POLL as Source<never>,
  push: {
    receiver: receiverSettings,
    map: (record, ctx) => mapTelemetryRecord(record, ctx.receivedAtMs),
  },
});
