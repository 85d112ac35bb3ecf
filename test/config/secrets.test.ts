import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect, promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { redactUrl } from '../../src/config/redact.ts';
import type { Secret } from '../../src/config/secret.ts';
import { BASE_ENV, FOLDER_A, HARNESS, loadError, loadOk, PROJECT_A, TOKEN, yaml } from './helpers.ts';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'auditlog-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const withAuth = (auth: string) => yaml`
  providers:
    - name: prod
      type: stackit
      auth:
        ${auth}
  scopes:
    - provider: prod
      project: ${PROJECT_A}
  sinks:
    - name: out
      type: stdout
`;

describe('credentials', () => {
  it('refuses an inline token without repeating it', () => {
    const inline = 'inline-TOKEN-value-1234567890';
    const error = loadError(withAuth(`token: ${inline}`));
    expect(error.issues).toEqual([
      {
        path: 'providers[0].auth.token',
        line: 5,
        column: 14,
        message: `must be an environment reference such as \${MY_TOKEN} (inline secrets are refused), or use the *File form`,
      },
    ]);
    expect(error.format()).not.toContain(inline);
  });

  it('reads tokenFile (one trailing newline dropped) and reports a missing file', () => {
    const file = join(dir, 'token');
    writeFileSync(file, 'file-token-abc\n');
    const { config } = loadOk(withAuth(`tokenFile: ${file}`));
    const token = (config.providers[0]!.settings as { auth: { token: Secret } }).auth.token;
    expect(token.reveal()).toBe('file-token-abc');
    expect(token.origin).toBe(`file ${file}`);

    const missing = join(dir, 'nope');
    expect(loadError(withAuth(`tokenFile: ${missing}`)).issues).toEqual([
      {
        path: 'providers[0].auth.tokenFile',
        line: 5,
        column: 18,
        message: `cannot read file ${missing} (ENOENT)`,
      },
    ]);
  });

  it('refuses token and tokenFile together, and neither', () => {
    const file = join(dir, 'token2');
    writeFileSync(file, 'x');
    const both = `token: "\${STACKIT_TOKEN}"\n        tokenFile: ${file}`;
    expect(loadError(withAuth(both)).issues).toEqual([
      {
        path: 'providers[0].auth.token',
        line: 5,
        column: 14,
        message: 'set either token or tokenFile, not both',
      },
    ]);
    expect(loadError(withAuth('{}')).issues).toEqual([
      {
        path: 'providers[0].auth',
        line: 5,
        column: 7,
        message:
          'token or tokenFile is required, or serviceAccountKey or serviceAccountKeyFile for the service-account key flow (recommended)',
      },
    ]);
  });

  it('names the variable of a token reference that is not set', () => {
    expect(loadError(withAuth(`token: \${OTHER_TOKEN}`)).issues).toEqual([
      {
        path: 'providers[0].auth.token',
        line: 5,
        column: 14,
        message: `environment variable \${OTHER_TOKEN} is not set`,
      },
    ]);
  });
});

describe('secrets never appear in output', () => {
  const REDIS_PASSWORD = 'redisPW-5e1c-NEVER-print';
  const INLINE = 'inline-9d8e-NEVER-print';
  const env = { ...BASE_ENV, REDIS_URL: `redis://:${REDIS_PASSWORD}@redis:6379` };
  const secrets = [TOKEN, REDIS_PASSWORD, INLINE];
  // A config with problems everywhere near the secrets, plus a warning.
  const bad = yaml`
    daemon:
      metrics: { port: 99999 }
    providers:
      - name: prod
        type: stackit
        auth: { token: "\${STACKIT_TOKEN}", tokenn: x }
        tls: { insecureSkipVerify: true }
      - name: other
        type: stackit
        auth: { token: ${INLINE} }
    scopes:
      - provider: prod
        project: ${PROJECT_A}
        sinks: [nope]
      - provider: prod
        folder: ${FOLDER_A}
        token: "\${STACKIT_TOKEN}"
    sinks:
      - name: out
        type: stdout
        path: "\${STACKIT_TOKEN}"
  `;
  const file = join(dir, 'bad.yaml');
  writeFileSync(file, bad);

  const expectClean = (text: string) => {
    for (const secret of secrets) expect(text).not.toContain(secret);
  };

  it('in errors: format(), message, issues', () => {
    const error = loadError(bad, { env });
    expect(error.issues.length).toBeGreaterThanOrEqual(6);
    expectClean(error.format());
    expectClean(error.message);
    expectClean(JSON.stringify(error.issues));
    expectClean(inspect(error, { depth: 10 }));
  });

  it('in warnings and config dumps of a valid config', () => {
    const good = bad
      .replace('metrics: { port: 99999 }', 'metrics: { port: 9464 }')
      .replace(', tokenn: x', '')
      .replace(`auth: { token: ${INLINE} }`, `auth: { token: "\${STACKIT_TOKEN}" }`)
      .replace('sinks: [nope]', 'sinks: [out]')
      .replace(`    token: "\${STACKIT_TOKEN}"\n`, '')
      .replace(`    path: "\${STACKIT_TOKEN}"\n`, '');
    const { config, warnings } = loadOk(good, { env });
    expect(warnings).toEqual([
      expect.stringMatching(
        /^providers\[0\]\.tls\.insecureSkipVerify \(line 7, column 32\): TLS certificates are not verified/,
      ),
    ]);
    expectClean(warnings.join('\n'));
    expectClean(JSON.stringify(config));
    expectClean(inspect(config, { depth: 20 }));
    expectClean(String((config.providers[0]!.settings as { auth: { token: Secret } }).auth.token));
  });

  it('in the validate command output, text and JSON', async () => {
    for (const args of [[], ['--json']]) {
      const result = await run(process.execPath, [...HARNESS, 'validate', '-c', file, ...args], {
        cwd: process.cwd(),
        env: { ...process.env, ...env },
      }).then(
        () => {
          throw new Error('validate should fail');
        },
        (error: { code: number; stdout: string; stderr: string }) => error,
      );
      expect(result.code).toBe(1);
      expect(result.stdout + result.stderr).toMatch(args.length ? /"issues": \[/ : /bad\.yaml: \d+ problems/);
      expectClean(result.stdout + result.stderr);
    }
  });
});

describe('redactUrl', () => {
  it.each([
    ['redis://:hunter2@redis:6379/0', 'redis://:***@redis:6379/0'],
    ['rediss://app:hunter2@redis.example:6380', 'rediss://app:***@redis.example:6380'],
    ['redis://hunter2@redis:6379', 'redis://***@redis:6379'],
    ['redis://redis:6379', 'redis://redis:6379'],
    ['https://x.example/path?token=abc&page=2', 'https://x.example/path?token=***&page=2'],
    ['', ''],
    ['not a url hunter2', '[redacted: not a URL]'],
  ])('%s → %s', (url, expected) => {
    expect(redactUrl(url)).toBe(expected);
  });
});
