import { describe, expect, it } from 'vitest';
import { issueAt, loadError, loadOk, TOKEN, yaml } from '../../config/helpers.ts';

describe('stackit-telemetry provider config', () => {
  it('stands without scopes: the pushed records name their own', () => {
    const config = loadOk(yaml`
      providers:
        - name: router
          type: stackit-telemetry
          listen: {port: 4318, grpcPort: 4317}
          auth:
            bearerToken: \${STACKIT_TOKEN}
          allowPlainHttp: true
      sinks:
        - {name: out, type: stdout}
    `);
    expect(config.config.scopes).toEqual([]);
    const settings = config.config.providers[0]?.settings as Record<string, unknown>;
    expect(settings).toMatchObject({
      listen: { host: '0.0.0.0', port: 4318, grpcPort: 4317 },
      maxBodySize: 16 * 1024 * 1024,
    });
    expect(JSON.stringify(settings)).not.toContain(TOKEN);
  });

  it('refuses plain HTTP not asked for', () => {
    const error = loadError(yaml`
      providers:
        - name: router
          type: stackit-telemetry
          auth:
            bearerToken: \${STACKIT_TOKEN}
      sinks:
        - {name: out, type: stdout}
    `);
    expect(issueAt(error, 'providers[0].tls').message).toMatch(/allowPlainHttp: true/);
  });

  it('refuses a scope naming a push provider and an inline token', () => {
    const error = loadError(yaml`
      providers:
        - name: router
          type: stackit-telemetry
          auth: {bearerToken: inline-secret}
      scopes:
        - provider: router
          project: 3f2504e0-4f89-41d3-9a0c-0305e82c3301
      sinks:
        - {name: out, type: stdout}
    `);
    expect(issueAt(error, 'scopes[0].provider').message).toMatch(/receives pushed events.*takes no scopes/);
    expect(issueAt(error, 'providers[0].auth.bearerToken').message).toMatch(/environment reference/);
    expect(error.format()).not.toContain('inline-secret');
  });

  it('wants exactly one way to authenticate', () => {
    const error = loadError(yaml`
      providers:
        - name: router
          type: stackit-telemetry
          auth: {}
          allowPlainHttp: true
      sinks:
        - {name: out, type: stdout}
    `);
    expect(issueAt(error, 'providers[0].auth').message).toMatch(/exactly one of bearerToken/);
  });
});
