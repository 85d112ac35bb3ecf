import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/errors.ts';
import { loadConfig, loadConfigOrThrow } from '../../src/config/load.ts';
import { Secret } from '../../src/config/secret.ts';
import {
  BASE_ENV,
  EXAMPLE_ENV,
  FOLDER_A,
  issueAt,
  loadError,
  loadOk,
  MINIMAL,
  PROJECT_A,
  PROJECT_B,
  TOKEN,
  yaml,
} from './helpers.ts';

describe('valid configs', () => {
  it('resolves a minimal config with every default applied', () => {
    const { config } = loadOk(MINIMAL);
    expect(config).toEqual({
      origin: 'test.yaml',
      daemon: {
        instanceId: `${hostname()}-${process.pid}`,
        dataDir: './data',
        redis: { url: '', prefix: '{auditlog}' },
        log: { level: 'info' },
        metrics: { host: '0.0.0.0', port: 9464, perScopeLabels: true },
        poll: { concurrency: 8, leaseTtlMs: 30_000, intervalMs: 60_000, notFoundRecheckMs: 900_000 },
        backfill: { concurrency: 2, sliceMs: 300_000 },
        outbox: { maxLength: 100_000 },
        delivery: { batchSize: 500, retryInitialMs: 1_000, retryMaxMs: 300_000, consumerTimeoutMs: 30_000 },
        shutdownTimeoutMs: 25_000,
      },
      providers: [{ name: 'prod', type: 'stackit', settings: expect.any(Object) }],
      scopes: [
        {
          key: `stackit:project:${PROJECT_A}`,
          provider: 'prod',
          providerType: 'stackit',
          ref: { kind: 'project', id: PROJECT_A },
          intervalMs: 60_000,
          sinks: ['out'],
          settings: expect.objectContaining({ kind: 'project', id: PROJECT_A }),
        },
      ],
      sinks: [{ name: 'out', type: 'stdout', settings: {} }],
    });
    const settings = config.providers[0]?.settings as { auth: { token: Secret }; auditLogUrl: string };
    expect(settings.auth.token).toBeInstanceOf(Secret);
    expect(settings.auth.token.reveal()).toBe(TOKEN);
    expect(settings.auditLogUrl).toBe('https://auditlog.api.stackit.cloud');
  });

  it('resolves a full config: daemon values, intervals scope → provider → daemon, sinks default to all', () => {
    const { config, warnings } = loadOk(yaml`
      daemon:
        instanceId: replica-a
        dataDir: /var/lib/shipper
        redis: { url: "redis://redis:6379/2", prefix: "{prod}:" }
        log: { level: debug }
        metrics: { host: 127.0.0.1, port: 0, perScopeLabels: false }
        poll: { concurrency: 4, leaseTtl: 2m, interval: 5m }
        outbox: { maxLength: 5000 }
        delivery: { batchSize: 100, retryInitial: 250ms, retryMax: 1h30m, consumerTimeout: 45s }
        shutdownTimeout: 10s
      providers:
        - name: fast
          type: stackit
          interval: 20s
          auth: { token: "\${STACKIT_TOKEN}" }
        - name: slow
          type: stackit
          auditLogUrl: http://localhost:8080
          allowInsecureHttp: true
          auth: { token: "\${STACKIT_TOKEN}" }
      scopes:
        - provider: fast
          project: ${PROJECT_A}
          interval: 10s
          sinks: [archive]
        - provider: fast
          folder: ${FOLDER_A}
        - provider: slow
          project: ${PROJECT_B}
      sinks:
        - name: archive
          type: file
          path: /data/events.ndjson
          fsync: false
        - name: out
          type: stdout
    `);
    expect(config.daemon).toEqual({
      instanceId: 'replica-a',
      dataDir: '/var/lib/shipper',
      redis: { url: 'redis://redis:6379/2', prefix: '{prod}:' },
      log: { level: 'debug' },
      metrics: { host: '127.0.0.1', port: 0, perScopeLabels: false },
      poll: { concurrency: 4, leaseTtlMs: 120_000, intervalMs: 300_000, notFoundRecheckMs: 900_000 },
      backfill: { concurrency: 2, sliceMs: 300_000 },
      outbox: { maxLength: 5_000 },
      delivery: { batchSize: 100, retryInitialMs: 250, retryMaxMs: 5_400_000, consumerTimeoutMs: 45_000 },
      shutdownTimeoutMs: 10_000,
    });
    expect(config.providers.map((p) => p.name)).toEqual(['fast', 'slow']);
    expect((config.providers[1]!.settings as { auditLogUrl: string }).auditLogUrl).toBe(
      'http://localhost:8080',
    );
    expect(config.scopes.map((s) => [s.key, s.provider, s.intervalMs, s.sinks])).toEqual([
      [`stackit:project:${PROJECT_A}`, 'fast', 10_000, ['archive']],
      [`stackit:folder:${FOLDER_A}`, 'fast', 20_000, ['archive', 'out']],
      [`stackit:project:${PROJECT_B}`, 'slow', 300_000, ['archive', 'out']],
    ]);
    expect(config.sinks).toEqual([
      { name: 'archive', type: 'file', settings: { path: '/data/events.ndjson', fsync: false } },
      { name: 'out', type: 'stdout', settings: {} },
    ]);
    // The plain-HTTP provider is allowed, and warned about.
    expect(warnings).toEqual([
      'providers[1].auditLogUrl (line 18, column 18): provider "slow" sends its credentials over plain HTTP to localhost:8080 (allowInsecureHttp: true): anyone on the network path can read them. Only for loopback or an in-cluster sidecar.',
    ]);
  });

  it('reads a file by path, and reports an unreadable one', () => {
    const ok = loadConfig({ path: 'config/example.yaml' }, { env: EXAMPLE_ENV });
    expect(ok.ok).toBe(true);
    const missing = loadConfig({ path: 'config/does-not-exist.yaml' }, { env: BASE_ENV });
    expect(missing.ok).toBe(false);
    if (!missing.ok) {
      expect(missing.error.origin).toBe('config/does-not-exist.yaml');
      expect(missing.error.format()).toBe(
        'config/does-not-exist.yaml: 1 problem\n  cannot read the config file (ENOENT)',
      );
    }
  });

  it('loadConfigOrThrow returns the config or throws the ConfigError', () => {
    expect(
      loadConfigOrThrow({ text: MINIMAL, origin: 'x.yaml' }, { env: BASE_ENV }).config.scopes,
    ).toHaveLength(1);
    let thrown: unknown;
    try {
      loadConfigOrThrow({ text: 'providers: 5\n', origin: 'x.yaml' }, { env: BASE_ENV });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    expect((thrown as ConfigError).message).toBe((thrown as ConfigError).format());
  });
});

describe('problems are reported by path and line', () => {
  it('lists every problem at once, in file order, with a readable report', () => {
    const error = loadError(yaml`
      providers:
        - name: prod
          type: stackit
          auditLogUrl: ftp://example.com
          auth: { token: "\${STACKIT_TOKEN}" }
      scopes:
        - provider: prod
          project: not-a-uuid
      sinks:
        - name: out
          type: stdout
        - name: archive
          type: file
          path: 42
    `);
    expect(error.issues).toEqual([
      { path: 'providers[0].auditLogUrl', line: 4, column: 18, message: 'must be an http(s) URL' },
      { path: 'scopes[0].project', line: 8, column: 14, message: 'must be a UUID' },
      { path: 'sinks[1].path', line: 14, column: 11, message: 'must be a string (got a number)' },
    ]);
    expect(error.format()).toBe(
      [
        'test.yaml: 3 problems',
        '  providers[0].auditLogUrl (line 4, column 18): must be an http(s) URL',
        '  scopes[0].project (line 8, column 14): must be a UUID',
        '  sinks[1].path (line 14, column 11): must be a string (got a number)',
      ].join('\n'),
    );
  });

  it('points a missing key at the mapping it belongs in', () => {
    const error = loadError(yaml`
      providers:
        - name: prod
          type: stackit
      scopes:
        - provider: prod
          project: ${PROJECT_A}
      sinks:
        - name: archive
          type: file
    `);
    expect(issueAt(error, 'providers[0].auth')).toMatchObject({ line: 2, column: 5, message: 'is required' });
    expect(issueAt(error, 'sinks[0].path')).toMatchObject({ line: 8, column: 5, message: 'is required' });
  });

  it('refuses unknown keys at every level, with a hint when one is close', () => {
    const error = loadError(yaml`
      daemon:
        pol: { interval: 30s }
      providers:
        - name: prod
          type: stackit
          intervall: 30s
          auditLogURL: https://x.example
          auth: { token: "\${STACKIT_TOKEN}", tokn: x }
          tls: { insecureSkipVerfy: true }
      scopes:
        - provider: prod
          projekt: ${PROJECT_A}
          project: ${PROJECT_A}
      sinks:
        - name: out
          type: stdout
          color: true
      sink: []
    `);
    expect(error.issues.map((i) => [i.path, i.line, i.column, i.message])).toEqual([
      ['daemon.pol', 2, 3, 'unknown key "pol" (did you mean "poll"?)'],
      ['providers[0].intervall', 6, 5, 'unknown key "intervall" (did you mean "interval"?)'],
      ['providers[0].auditLogURL', 7, 5, 'unknown key "auditLogURL" (did you mean "auditLogUrl"?)'],
      ['providers[0].auth.tokn', 8, 40, 'unknown key "tokn" (did you mean "token"?)'],
      [
        'providers[0].tls.insecureSkipVerfy',
        9,
        12,
        'unknown key "insecureSkipVerfy" (did you mean "insecureSkipVerify"?)',
      ],
      ['scopes[0].projekt', 12, 5, 'unknown key "projekt" (did you mean "project"?)'],
      ['sinks[0].color', 17, 5, 'unknown key "color"'],
      ['sink', 18, 1, 'unknown key "sink" (did you mean "sinks"?)'],
    ]);
  });

  it('checks cross-references and names the defined ones', () => {
    const error = loadError(yaml`
      providers:
        - name: prod
          type: stackit
          auth: { token: "\${STACKIT_TOKEN}" }
        - name: staging
          type: stackit
          auth: { token: "\${STACKIT_TOKEN}" }
      scopes:
        - provider: prd
          project: ${PROJECT_A}
        - provider: prod
          project: ${PROJECT_B}
          sinks: [out, archiv, out]
      sinks:
        - name: out
          type: stdout
        - name: archive
          type: stdout
    `);
    expect(issueAt(error, 'scopes[0].provider')).toEqual({
      path: 'scopes[0].provider',
      line: 9,
      column: 15,
      message: '"prd" is not a defined provider (did you mean "prod"?); defined: prod, staging',
    });
    expect(issueAt(error, 'scopes[1].sinks[1]')).toMatchObject({
      line: 13,
      message: '"archiv" is not a defined sink (did you mean "archive"?); defined: out, archive',
    });
    expect(issueAt(error, 'scopes[1].sinks[2]').message).toBe('sink "out" is listed twice');
    expect(error.issues).toHaveLength(3);
  });

  it('refuses duplicate provider and sink names', () => {
    const error = loadError(yaml`
      providers:
        - name: prod
          type: stackit
          auth: { token: "\${STACKIT_TOKEN}" }
        - name: prod
          type: stackit
          auth: { token: "\${STACKIT_TOKEN}" }
      scopes:
        - provider: prod
          project: ${PROJECT_A}
      sinks:
        - name: out
          type: stdout
        - name: out
          type: file
          path: /tmp/x
    `);
    expect(error.issues).toEqual([
      {
        path: 'providers[1].name',
        line: 5,
        column: 11,
        message: 'duplicate provider name "prod" (also providers[0])',
      },
      { path: 'sinks[1].name', line: 14, column: 11, message: 'duplicate sink name "out" (also sinks[0])' },
    ]);
  });

  it('names both entries of a scope listed twice', () => {
    const error = loadError(yaml`
      providers:
        - name: prod
          type: stackit
          auth: { token: "\${STACKIT_TOKEN}" }
      scopes:
        - provider: prod
          project: ${PROJECT_A}
        - provider: prod
          folder: ${FOLDER_A}
        - provider: prod
          project: ${PROJECT_A}
          interval: 5m
      sinks:
        - name: out
          type: stdout
    `);
    expect(error.issues).toEqual([
      {
        path: 'scopes[2]',
        line: 10,
        column: 5,
        message: `polls the same scope as scopes[0] (stackit:project:${PROJECT_A}); list each scope once`,
      },
    ]);
  });

  it('requires at least one provider, scope and sink', () => {
    const error = loadError(yaml`
      providers: []
      scopes:
      sinks: {}
    `);
    expect(error.issues.map((i) => [i.path, i.line, i.message])).toEqual([
      ['providers', 1, 'at least one provider is required'],
      ['scopes', 2, 'at least one scope is required'],
      ['sinks', 3, 'must be a list of sinks (got a mapping)'],
    ]);
    expect(loadError('daemon: {}\n').issues.map((i) => i.message)).toEqual([
      'at least one provider is required',
      'at least one sink is required',
      'at least one scope is required',
    ]);
  });

  it('refuses unknown provider and sink types, listing the known ones', () => {
    const error = loadError(yaml`
      providers:
        - name: prod
          type: stackitt
          auth: { token: "\${STACKIT_TOKEN}" }
      scopes:
        - provider: prod
          project: ${PROJECT_A}
      sinks:
        - name: out
          type: elastic
    `);
    expect(error.issues).toEqual([
      {
        path: 'providers[0].type',
        line: 3,
        column: 11,
        message:
          'unknown provider type "stackitt" (did you mean "stackit"?); known types: stackit, stackit-telemetry, cloudscale',
      },
      {
        path: 'sinks[0].type',
        line: 10,
        column: 11,
        message:
          'unknown sink type "elastic"; known types: file, stdout, loki, elasticsearch, opensearch, s3, otlp',
      },
    ]);
  });

  it('reports module-level problems of an entry at the entry', () => {
    const error = loadError(yaml`
      providers:
        - name: prod
          type: stackit
          auth: { token: "\${STACKIT_TOKEN}" }
      scopes:
        - provider: prod
          project: ${PROJECT_A}
          folder: ${FOLDER_A}
        - provider: prod
      sinks:
        - name: Out Put
          type: stdout
    `);
    expect(error.issues.map((i) => [i.path, i.line])).toEqual([
      ['scopes[0]', 6],
      ['scopes[1]', 9],
      ['sinks[0].name', 11],
    ]);
    expect(issueAt(error, 'scopes[1]').message).toBe(
      'needs one of organization, folder or project (its UUID)',
    );
  });

  it(`names a missing \${VAR} and where it is used`, () => {
    const error = loadError(yaml`
      providers:
        - name: prod
          type: stackit
          auth: { token: "\${STACKIT_TOKEN}" }
      scopes:
        - provider: prod
          project: ${PROJECT_A}
      sinks:
        - name: archive
          type: file
          path: \${ARCHIVE_DIR}/events.ndjson
    `);
    expect(error.issues).toEqual([
      {
        path: 'sinks[0].path',
        line: 11,
        column: 11,
        message: `environment variable \${ARCHIVE_DIR} is not set`,
      },
    ]);
    const withDefault = loadOk(
      MINIMAL.replace('type: stdout', `type: file\n    path: \${ARCHIVE_DIR:-/tmp}/x.ndjson`),
    );
    expect(withDefault.config.sinks[0]?.settings).toEqual({ path: '/tmp/x.ndjson', fsync: true });
  });

  it('reports YAML syntax errors and duplicate keys with their line, and nothing else', () => {
    const error = loadError(yaml`
      providers:
        - name: prod
          name: again
      scopes: [unclosed
      sinks: []
    `);
    expect(error.issues).toEqual([
      {
        path: '',
        line: 3,
        column: 5,
        message: 'duplicate key "name": a key may appear only once in a mapping',
      },
      expect.objectContaining({ path: '', line: 5, message: expect.stringMatching(/^invalid YAML: /) }),
    ]);
    expect(error.format()).toMatch(/^test\.yaml: 2 problems\n {2}line 3, column 5: duplicate key "name"/);
  });

  it(`explains the classic: an unquoted \${VAR} inside { }`, () => {
    const error = loadError(MINIMAL.replace('token: "$', 'token: $').replace('TOKEN}" }', 'TOKEN} }'));
    expect(error.issues[0]).toEqual({
      path: '',
      line: 4,
      column: 21,
      message: expect.stringMatching(
        /^invalid YAML: .*\(inside \{ \} or \[ \], quote \$\{VAR\} references: "\$\{VAR\}"\)$/,
      ),
    });
    // The cascade after it is cut short.
    expect(error.issues).toHaveLength(4);
    expect(error.issues[3]?.message).toMatch(/^invalid YAML: \d+ more lines with errors from here/);
  });

  it('warns about a sink no scope sends to', () => {
    const { warnings } = loadOk(
      `${MINIMAL.replace('project: ', 'sinks: [out]\n    project: ')}  - name: unused\n    type: stdout\n`,
      { env: { ...BASE_ENV, REDIS_URL: 'redis://redis:6379' } },
    );
    expect(warnings).toEqual([
      'sinks[1] (line 12, column 5): sink "unused" receives no events: every scope lists its sinks and none names it',
    ]);
  });

  it('refuses an empty file and a file that is not a mapping', () => {
    expect(loadError('').issues).toEqual([
      { path: '', message: 'the file is empty; it needs providers, scopes and sinks' },
    ]);
    expect(loadError('# only a comment\n').issues).toHaveLength(1);
    expect(loadError('- a\n- b\n').issues).toEqual([
      {
        path: '',
        line: 1,
        column: 1,
        message: 'must be a mapping with providers, scopes and sinks (got a list)',
      },
    ]);
  });

  it('accepts anchors and merge keys', () => {
    const { config } = loadOk(yaml`
      providers:
        - &prod
          name: prod
          type: stackit
          auth: { token: "\${STACKIT_TOKEN}" }
        - <<: *prod
          name: staging
          interval: 5m
      scopes:
        - provider: staging
          project: ${PROJECT_A}
      sinks:
        - name: out
          type: stdout
    `);
    expect(config.providers.map((p) => [p.name, p.type])).toEqual([
      ['prod', 'stackit'],
      ['staging', 'stackit'],
    ]);
    expect(config.scopes[0]?.intervalMs).toBe(300_000);
  });
});
