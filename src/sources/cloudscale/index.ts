import { defineSource } from '../source.ts';
import { cloudscaleProviderSchema, cloudscaleScopeSchema, tokenClaim } from './config.ts';
import { CloudscaleSource } from './source.ts';

export const cloudscale = defineSource({
  type: 'cloudscale',
  description: 'cloudscale.ch project logs (one API token per project)',
  providerSchema: cloudscaleProviderSchema,
  scopeSchema: cloudscaleScopeSchema,
  scopeRef: (scope) => ({ kind: 'project', id: scope.project }),
  exclusiveClaims: (scope) => [
    {
      key: tokenClaim(scope),
      what: 'API token',
      hint: 'a cloudscale token reads exactly one project, so each project scope needs its own',
    },
  ],
  create: (provider, deps) => new CloudscaleSource(provider, deps),
});
