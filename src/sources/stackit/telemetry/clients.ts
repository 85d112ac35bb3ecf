import type { Logger } from 'pino';
import { StackitApi } from '../api.ts';
import { createTokenSource } from '../auth/create.ts';
import type { StackitProviderSettings, TelemetrySettings } from '../config.ts';
import { ResourceManagerClient } from '../resource-manager.ts';
import { TelemetryLinkClient } from './link-client.ts';
import { TelemetryRouterClient } from './router-client.ts';

export interface TelemetryClients {
  readonly settings: TelemetrySettings;
  readonly links: TelemetryLinkClient;
  readonly routers: TelemetryRouterClient;
  readonly resourceManager: ResourceManagerClient;
  close(): Promise<void>;
}

/**
 * The three APIs link management talks to, with the provider's credential, timeouts, TLS and retries
 * (no shared request budget: a plan or apply is a few hundred calls, not a polling load). For the CLI
 * and the daemon's reconciler alike. Undefined when the provider has no `telemetry` section.
 */
export function openTelemetryClients(
  providerName: string,
  settings: StackitProviderSettings,
  instanceId: string,
  log: Logger,
): TelemetryClients | undefined {
  const telemetry = settings.telemetry;
  if (telemetry === undefined) return undefined;
  const auth = createTokenSource(settings.auth, {
    providerName,
    instanceId,
    timeoutMs: settings.requestTimeout,
    tls: settings.tls,
    log,
    onRequest: () => {},
  });
  const api = (label: string, baseUrl: string) =>
    new StackitApi({
      providerName,
      api: label,
      baseUrl,
      instanceId,
      timeoutMs: settings.requestTimeout,
      tls: settings.tls,
      auth,
      retry: settings.retry,
      onRequest: () => {},
    });
  const links = new TelemetryLinkClient(api('telemetry-link', telemetry.linkApiUrl));
  const routers = new TelemetryRouterClient(api('telemetry-router', telemetry.routerApiUrl));
  const resourceManager = new ResourceManagerClient(api('resource-manager', settings.resourceManagerUrl));
  return {
    settings: telemetry,
    links,
    routers,
    resourceManager,
    close: async () => {
      await Promise.all([links.close(), routers.close(), resourceManager.close()]);
      await auth.close();
    },
  };
}
