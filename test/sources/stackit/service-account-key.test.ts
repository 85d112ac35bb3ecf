import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.ts';
import type { StackitAuth } from '../../../src/sources/stackit/config.ts';
import { yaml } from '../../config/helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'auditlog-sa-key-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const PROJECT = '3f2504e0-4f89-41d3-9a0c-0305e82c3301';

function rsaPair(bits = 2048) {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  return {
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

const PAIR = rsaPair();
/** The base64 body of the private key: must never show up in any output. */
const KEY_MATERIAL = PAIR.privatePem.split('\n')[5] as string;

function keyDocument(overrides: { credentials?: Record<string, unknown>; [k: string]: unknown } = {}) {
  const { credentials, ...rest } = overrides;
  return {
    id: 'a1b2c3d4-0000-4000-8000-000000000001',
    publicKey: PAIR.publicPem,
    keyType: 'USER_MANAGED',
    keyOrigin: 'GENERATED',
    keyAlgorithm: 'RSA_2048',
    active: true,
    createdAt: '2025-06-01T00:00:00Z',
    ...rest,
    credentials: {
      kid: 'kid-1',
      iss: 'shipper@sa.stackit.cloud',
      sub: '6a1f0c9e-2b3d-4e5f-8a9b-0c1d2e3f4a5b',
      aud: 'https://stackit-service-account-prod.apps.01.cf.eu01.stackit.cloud',
      privateKey: PAIR.privatePem,
      ...credentials,
    },
  };
}

function configWith(auth: string): string {
  return yaml`
    providers:
      - name: prod
        type: stackit
        auth:
          ${auth}
    scopes:
      - provider: prod
        project: ${PROJECT}
    sinks:
      - name: out
        type: stdout
  `;
}

function load(auth: string, env: Record<string, string> = {}) {
  return loadConfig({ text: configWith(auth), origin: 'test.yaml' }, { env });
}

function authOf(result: ReturnType<typeof load>): StackitAuth {
  if (!result.ok) throw new Error(result.error.format());
  const settings = result.config.providers[0]?.settings as { auth: StackitAuth } | undefined;
  if (!settings) throw new Error('no provider');
  return settings.auth;
}

function issuesOf(result: ReturnType<typeof load>) {
  if (result.ok) throw new Error('expected the config to be rejected');
  const text = result.error.format();
  // Whatever went wrong, the key never appears in the report.
  expect(text).not.toContain(KEY_MATERIAL);
  return result.error.issues.map((issue) => ({ path: issue.path, message: issue.message }));
}

describe('service-account key in the config', () => {
  it('reads the key JSON from the environment and from a file', () => {
    const fromEnv = authOf(load('serviceAccountKey: ${SA_KEY}', { SA_KEY: JSON.stringify(keyDocument()) }));
    expect(fromEnv.kind).toBe('key');
    if (fromEnv.kind !== 'key') return;
    expect(fromEnv.key.kid).toBe('kid-1');
    expect(fromEnv.key.origin).toBe('env SA_KEY');
    expect(fromEnv.tokenEndpoint).toBe('https://service-account.api.stackit.cloud/token');

    const file = join(dir, 'key.json');
    writeFileSync(
      file,
      JSON.stringify(keyDocument({ credentials: { tokenEndpoint: 'https://sa.example/token' } })),
    );
    const fromFile = authOf(load(`serviceAccountKeyFile: ${file}`));
    if (fromFile.kind !== 'key') throw new Error('expected the key flow');
    expect(fromFile.key.origin).toBe(`file ${file}`);
    // The key's own endpoint wins over the provider setting.
    expect(fromFile.tokenEndpoint).toBe('https://sa.example/token');
    const withSetting = authOf(
      load(`serviceAccountKey: \${SA_KEY}\n          tokenEndpoint: https://other.example/token`, {
        SA_KEY: JSON.stringify(keyDocument()),
      }),
    );
    expect(withSetting.kind === 'key' && withSetting.tokenEndpoint).toBe('https://other.example/token');
  });

  it('accepts a PEM whose newlines were left as literal \\n', () => {
    const escaped = PAIR.privatePem.trim().replaceAll('\n', '\\n');
    expect(escaped).not.toContain('\n');
    const auth = authOf(
      load('serviceAccountKey: ${SA_KEY}', {
        SA_KEY: JSON.stringify(keyDocument({ credentials: { privateKey: escaped } })),
      }),
    );
    expect(auth.kind).toBe('key');
  });

  it('names the missing field, in env and file form', () => {
    const doc = keyDocument();
    const { kid: _kid, ...credentials } = doc.credentials;
    const broken = JSON.stringify({ ...doc, credentials });
    expect(issuesOf(load('serviceAccountKey: ${SA_KEY}', { SA_KEY: broken }))).toEqual([
      { path: 'providers[0].auth.serviceAccountKey.credentials.kid', message: 'is required (env SA_KEY)' },
    ]);
    const file = join(dir, 'no-kid.json');
    writeFileSync(file, broken);
    expect(issuesOf(load(`serviceAccountKeyFile: ${file}`))).toEqual([
      { path: 'providers[0].auth.serviceAccountKey.credentials.kid', message: `is required (file ${file})` },
    ]);
    const wrongTypes = JSON.stringify(keyDocument({ credentials: { sub: 42, aud: '' } }));
    expect(issuesOf(load('serviceAccountKey: ${SA_KEY}', { SA_KEY: wrongTypes }))).toEqual([
      {
        path: 'providers[0].auth.serviceAccountKey.credentials.sub',
        message: 'must be a string (env SA_KEY)',
      },
      {
        path: 'providers[0].auth.serviceAccountKey.credentials.aud',
        message: 'must not be empty (env SA_KEY)',
      },
    ]);
    expect(issuesOf(load('serviceAccountKey: ${SA_KEY}', { SA_KEY: '{"id": "x"}' }))).toEqual([
      { path: 'providers[0].auth.serviceAccountKey.credentials', message: 'is required (env SA_KEY)' },
    ]);
  });

  it('refuses a document that is not JSON without quoting it', () => {
    const notJson = `{"credentials": {"privateKey": "${PAIR.privatePem.replaceAll('\n', ' ')}"`;
    expect(issuesOf(load('serviceAccountKey: ${SA_KEY}', { SA_KEY: notJson }))).toEqual([
      { path: 'providers[0].auth.serviceAccountKey', message: 'is not valid JSON (env SA_KEY)' },
    ]);
  });

  it('takes the private key of a user-provided key pair separately, and checks it belongs to the key', () => {
    const userProvided = keyDocument({ keyOrigin: 'USER_PROVIDED', credentials: { privateKey: undefined } });
    const env = { SA_KEY: JSON.stringify(userProvided), PRIVATE: PAIR.privatePem };
    expect(issuesOf(load('serviceAccountKey: ${SA_KEY}', env))).toEqual([
      {
        path: 'providers[0].auth.serviceAccountKey.credentials.privateKey',
        message: expect.stringContaining('supply it with auth.privateKey or auth.privateKeyFile'),
      },
    ]);
    expect(authOf(load('serviceAccountKey: ${SA_KEY}\n          privateKey: ${PRIVATE}', env)).kind).toBe(
      'key',
    );

    const other = rsaPair();
    const file = join(dir, 'other.pem');
    writeFileSync(file, other.privatePem);
    expect(issuesOf(load(`serviceAccountKey: \${SA_KEY}\n          privateKeyFile: ${file}`, env))).toEqual([
      {
        path: 'providers[0].auth.privateKey',
        message: expect.stringContaining(
          "does not belong to this service-account key: its public half differs from the key's publicKey (kid kid-1)",
        ),
      },
    ]);
  });

  it('refuses what cannot sign RS512: no PEM, an EC key, a short RSA key', () => {
    const issue = (privateKey: string) =>
      issuesOf(
        load('serviceAccountKey: ${SA_KEY}', {
          SA_KEY: JSON.stringify(keyDocument({ publicKey: undefined, credentials: { privateKey } })),
        }),
      );
    expect(issue('not a key')[0]?.message).toMatch(/^is not a PEM-encoded private key \(env SA_KEY\)/);
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
      type: 'pkcs8',
      format: 'pem',
    });
    expect(issue(ec.toString())[0]?.message).toMatch(/^must be an RSA private key, got ec/);
    expect(issue(rsaPair(1024).privatePem)[0]?.message).toMatch(/^is a 1024-bit RSA key/);
  });

  it('refuses a token and a key together, and key-flow settings without a key', () => {
    const env = { SA_KEY: JSON.stringify(keyDocument()), TOKEN: 'static-token-1234567890' };
    expect(issuesOf(load('serviceAccountKey: ${SA_KEY}\n          token: ${TOKEN}', env))).toEqual([
      { path: 'providers[0].auth', message: expect.stringContaining('not both') },
    ]);
    expect(issuesOf(load('token: ${TOKEN}\n          tokenEndpoint: https://x.example/token', env))).toEqual([
      {
        path: 'providers[0].auth',
        message: expect.stringContaining('serviceAccountKey or serviceAccountKeyFile is required'),
      },
    ]);
  });

  it('never shows the private key in dumps of the loaded config', () => {
    const result = load('serviceAccountKey: ${SA_KEY}', { SA_KEY: JSON.stringify(keyDocument()) });
    if (!result.ok) throw new Error(result.error.format());
    const dumps = [
      JSON.stringify(result.config),
      inspect(result.config, { depth: 20 }),
      String(authOf(result)),
    ];
    for (const dump of dumps) {
      expect(dump).not.toContain(KEY_MATERIAL);
      expect(dump).not.toContain('PRIVATE KEY');
    }
    expect(inspect(result.config, { depth: 20 })).toContain(
      'ServiceAccountKey(kid kid-1, shipper@sa.stackit.cloud)',
    );
  });
});
