import type { Logger } from 'pino';
import type { TlsOptions } from '../../../http/client.ts';
import { VERSION } from '../../../version.ts';
import type { RequestSample } from '../../source.ts';
import type { StackitAuth } from '../config.ts';
import { KeyFlowTokenSource } from './key-flow.ts';
import { type AccessTokenSource, StaticTokenSource } from './token-source.ts';
import { WorkloadIdentityTokenSource } from './workload-identity.ts';

export interface TokenSourceDeps {
  readonly providerName: string;
  readonly instanceId: string;
  readonly timeoutMs: number;
  readonly tls?: TlsOptions | undefined;
  readonly log: Logger;
  readonly onRequest: (sample: RequestSample) => void;
  readonly now?: () => number;
}

/** The token source for a provider's resolved `auth`: one place, for the source and the CLI alike. */
export function createTokenSource(auth: StackitAuth, deps: TokenSourceDeps): AccessTokenSource {
  const common = {
    providerName: deps.providerName,
    timeoutMs: deps.timeoutMs,
    userAgent: `auditlog-shipper/${VERSION} (instance ${deps.instanceId})`,
    tls: deps.tls,
    log: deps.log,
    onRequest: deps.onRequest,
    ...(deps.now ? { now: deps.now } : {}),
  };
  switch (auth.kind) {
    case 'workload-identity':
      return new WorkloadIdentityTokenSource({
        ...common,
        serviceAccountEmail: auth.serviceAccountEmail,
        tokenFile: auth.tokenFile,
        tokenEndpoint: auth.tokenEndpoint,
      });
    case 'key':
      return new KeyFlowTokenSource({ ...common, key: auth.key, tokenEndpoint: auth.tokenEndpoint });
    case 'token':
      return new StaticTokenSource(auth.token);
  }
}
