/**
 * Issue 9 §9: credentials never travel over plain HTTP unless an entry says `allowInsecureHttp: true`
 * (warned about at validate and at start), and credentials written into URLs are refused like inline
 * secrets, with the config path and line.
 */
import { describe, expect, it } from 'vitest';
import { redactSecrets } from '../../src/config/redact.ts';
import { BASE_ENV, issueAt, load, loadError, loadOk, PROJECT_A, yaml } from './helpers.ts';

const stackit = (extra: string) => yaml`
  providers:
    - name: prod
      type: stackit
      auth: { token: "\${STACKIT_TOKEN}" }
      ${extra}
  scopes:
    - provider: prod
      project: ${PROJECT_A}
  sinks:
    - name: out
      type: stdout
`;

const lokiSink = (extra: string) => yaml`
  providers:
    - name: prod
      type: stackit
      auth: { token: "\${STACKIT_TOKEN}" }
  scopes:
    - provider: prod
      project: ${PROJECT_A}
  sinks:
    - name: loki
      type: loki
      ${extra}
`;

describe('plain http:// with credentials (issue 9 §9)', () => {
  it('refuses a provider URL over plain HTTP, naming path, line and the way out', () => {
    const issue = issueAt(
      loadError(stackit('auditLogUrl: http://127.0.0.1:8080')),
      'providers[0].auditLogUrl',
    );
    expect(issue).toEqual({
      path: 'providers[0].auditLogUrl',
      line: 5,
      column: 18,
      message:
        'plain http:// would send the credentials of provider "prod" in clear text: use https://, or set allowInsecureHttp: true on this entry if 127.0.0.1:8080 is a loopback address or an in-cluster sidecar',
    });
  });

  it('refuses it also when the URL comes from the environment', () => {
    const error = loadError(stackit('auditLogUrl: "${AUDIT_URL}"'), {
      env: { ...BASE_ENV, AUDIT_URL: 'http://auditlog.internal' },
    });
    expect(issueAt(error, 'providers[0].auditLogUrl').message).toMatch(/^plain http:\/\/ would send/);
  });

  it('refuses a key-flow token endpoint and a cloudscale API over plain HTTP', () => {
    const cloudscale = yaml`
      providers:
        - name: cs
          type: cloudscale
          apiUrl: http://cloudscale.internal
      scopes:
        - provider: cs
          project: shop
          auth: { token: "\${STACKIT_TOKEN}" }
      sinks:
        - name: out
          type: stdout
    `;
    expect(issueAt(loadError(cloudscale), 'providers[0].apiUrl').line).toBe(4);
  });

  it('allows it with allowInsecureHttp: true, with a warning (validate prints it, run logs it)', () => {
    const { warnings } = loadOk(stackit('auditLogUrl: http://127.0.0.1:8080\n      allowInsecureHttp: true'));
    expect(warnings.filter((w) => w.includes('plain HTTP'))).toEqual([
      'providers[0].auditLogUrl (line 5, column 18): provider "prod" sends its credentials over plain HTTP to 127.0.0.1:8080 (allowInsecureHttp: true): anyone on the network path can read them. Only for loopback or an in-cluster sidecar.',
    ]);
  });

  it('leaves https alone and a sink without credentials over HTTP alone', () => {
    const plainHttp = (warnings: readonly string[]) => warnings.filter((w) => w.includes('plain HTTP'));
    expect(plainHttp(loadOk(stackit('auditLogUrl: https://auditlog.example.com')).warnings)).toEqual([]);
    expect(plainHttp(loadOk(lokiSink('url: http://loki:3100')).warnings)).toEqual([]);
  });

  it('refuses a sink that sends credentials over HTTP unless allowed', () => {
    const withAuth = 'url: http://loki:3100\n      auth: { username: shipper, password: "${LOKI_PASSWORD}" }';
    expect(issueAt(loadError(lokiSink(withAuth)), 'sinks[0].url').message).toMatch(
      /^plain http:\/\/ would send the credentials of sink "loki" in clear text/,
    );
    const allowed = loadOk(lokiSink(`${withAuth}\n      allowInsecureHttp: true`));
    expect(allowed.warnings.filter((w) => w.includes('plain HTTP'))).toEqual([
      'sinks[0].url (line 11, column 10): sink "loki" sends its credentials over plain HTTP to loki:3100 (allowInsecureHttp: true): anyone on the network path can read them. Only for loopback or an in-cluster sidecar.',
    ]);
  });
});

describe('credentials inside URLs (issue 9 §9)', () => {
  it('refuses user:password@ in a sink URL without repeating it', () => {
    const error = loadError(lokiSink('url: https://shipper:hunter2-in-url@loki.example.com'));
    expect(issueAt(error, 'sinks[0].url')).toEqual({
      path: 'sinks[0].url',
      line: 11,
      column: 10,
      message:
        'must not carry credentials (user:password@): they would bypass secret handling; use the auth settings with ${VAR} references or *File paths',
    });
    expect(error.format()).not.toContain('hunter2-in-url');
  });

  it('refuses a Redis password written in the file, accepts a reference and REDIS_URL from the environment', () => {
    const withRedis = (url: string) => `daemon:\n  redis: { url: "${url}" }\n${stackit('')}`;
    const inline = loadError(withRedis('redis://:hunter2-inline@redis:6379'));
    expect(issueAt(inline, 'daemon.redis.url')).toEqual({
      path: 'daemon.redis.url',
      line: 2,
      column: 17,
      message:
        'must not hold a password written in the file (inline secrets are refused): reference it, e.g. redis://:${REDIS_PASSWORD}@redis:6379, or set REDIS_URL in the environment',
    });
    expect(inline.format()).not.toContain('hunter2-inline');
    // A lone user name is what many Redis clients send as the password.
    expect(
      issueAt(loadError(withRedis('redis://hunter2-user@redis:6379')), 'daemon.redis.url'),
    ).toBeDefined();

    const referenced = load(withRedis('redis://:${REDIS_PASSWORD}@redis:6379'), {
      env: { ...BASE_ENV, REDIS_PASSWORD: 'from-env-pw-123' },
    });
    expect(referenced.ok).toBe(true);
    // The password is known to the redactor from then on.
    expect(redactSecrets('NOAUTH from-env-pw-123')).toBe('NOAUTH [redacted]');

    const fromEnv = load(stackit(''), {
      env: { ...BASE_ENV, REDIS_URL: 'redis://:env-only-pw-456@redis:6379' },
    });
    expect(fromEnv.ok).toBe(true);
  });
});
