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
});
