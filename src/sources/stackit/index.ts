import { checkEndpoint } from '../../http/check.ts';
import { checkFirstPages, onePerKind } from '../check.ts';
import { defineSource } from '../source.ts';
import { stackitProviderSchema, stackitScopeSchema } from './config.ts';
import { StackitSource } from './source.ts';

export const stackit = defineSource({
  type: 'stackit',
  description: 'STACKIT Audit Log API (organization, folder and project logs)',
  providerSchema: stackitProviderSchema,
  scopeSchema: stackitScopeSchema,
  scopeRef: (scope) => ({ kind: scope.kind, id: scope.id }),
  create: (provider, deps) => new StackitSource(provider, deps),
  // The API and the key flow's token endpoint, then one audit-log read per kind of scope.
  async check(provider, scopes, deps, signal) {
    const { auth, auditLogUrl, tls } = provider.settings;
    const steps = await checkEndpoint(auditLogUrl, tls, 'audit log API');
    if (auth.kind === 'key') steps.push(...(await checkEndpoint(auth.tokenEndpoint, tls, 'token endpoint')));
    if (steps.some((s) => s.status === 'fail')) return steps;
    const source = new StackitSource(provider, deps);
    try {
      steps.push(...(await checkFirstPages(source, onePerKind(scopes), signal, deps.log)));
    } finally {
      await source.close();
    }
    return steps;
  },
});
