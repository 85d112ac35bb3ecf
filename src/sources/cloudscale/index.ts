import { checkEndpoint } from '../../http/check.ts';
import { checkFirstPages } from '../check.ts';
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
  // Every scope has its own token, so each gets its one-page read.
  async check(provider, scopes, deps, signal) {
    const steps = await checkEndpoint(provider.settings.apiUrl, provider.settings.tls, 'API');
    if (steps.some((s) => s.status === 'fail')) return steps;
    const source = new CloudscaleSource(provider, deps);
    try {
      steps.push(...(await checkFirstPages(source, scopes, signal, deps.log)));
    } finally {
      await source.close();
    }
    return steps;
  },
});
