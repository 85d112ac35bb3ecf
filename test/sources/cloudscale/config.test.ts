import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.ts';
import type {
  CloudscaleProviderSettings,
  CloudscaleScopeSettings,
} from '../../../src/sources/cloudscale/config.ts';
import { issueAt, yaml } from '../../config/helpers.ts';

const TOKEN_A = 'cs-token-A-7f3a9c1e-never-print';
const TOKEN_B = 'cs-token-B-0b12cafe-never-print';
const ENV = { CS_TOKEN_A: TOKEN_A, CS_TOKEN_B: TOKEN_B };

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cs-config-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const load = (text: string) => loadConfig({ text, origin: 'test.yaml' }, { env: ENV });

function config(scopes: string, provider = ''): string {
  return yaml`
    providers:
      - name: cs
        type: cloudscale
${provider}
    scopes:
${scopes}
    sinks:
      - name: out
        type: stdout
  `;
}

describe('cloudscale config', () => {
  it('takes one token per project scope and fills the provider defaults', () => {
    const result = load(
      config(`      - { provider: cs, project: web-shop, auth: { token: "\${CS_TOKEN_A}" } }
      - { provider: cs, project: 2f3c0000-0000-4000-8000-000000000001, auth: { token: "\${CS_TOKEN_B}" }, lookback: 7d }`),
    );
    if (!result.ok) throw new Error(result.error.format());
    const provider = result.config.providers[0]?.settings as CloudscaleProviderSettings;
    expect(provider).toMatchObject({
      apiUrl: 'https://api.cloudscale.ch',
      lookback: 3_600_000,
      overlap: 900_000,
      requestTimeout: 30_000,
      maxPagesPerPoll: 1_000,
      retry: { attempts: 5, initialBackoff: 1_000, maxBackoff: 30_000 },
    });
    const [a, b] = result.config.scopes;
    expect(a?.key).toBe('cloudscale:project:web-shop');
    expect(a?.ref).toEqual({ kind: 'project', id: 'web-shop' });
    expect((a?.settings as CloudscaleScopeSettings | undefined)?.token.reveal()).toBe(TOKEN_A);
    expect((b?.settings as CloudscaleScopeSettings | undefined)?.lookback).toBe(7 * 86_400_000);
  });

  it('reads a token from a file (a mounted Secret)', async () => {
    const path = join(dir, 'token');
    await writeFile(path, `${TOKEN_A}\n`);
    const result = load(config(`      - { provider: cs, project: p, auth: { tokenFile: ${path} } }`));
    if (!result.ok) throw new Error(result.error.format());
    expect((result.config.scopes[0]?.settings as CloudscaleScopeSettings | undefined)?.token.reveal()).toBe(
      TOKEN_A,
    );
  });

  it('refuses two scopes with one token, naming both and not the token', () => {
    const result = load(
      config(`      - { provider: cs, project: a, auth: { token: "\${CS_TOKEN_A}" } }
      - { provider: cs, project: b, auth: { token: "\${CS_TOKEN_B}" } }
      - { provider: cs, project: c, auth: { token: "\${CS_TOKEN_A}" } }`),
    );
    if (result.ok) throw new Error('expected an error');
    expect(issueAt(result.error, 'scopes[2]').message).toBe(
      'uses the same API token as scopes[0]; a cloudscale token reads exactly one project, so each project scope needs its own',
    );
    expect(result.error.issues).toHaveLength(1);
    expect(result.error.format()).not.toContain(TOKEN_A);
  });

  it.each([
    ['no auth', '      - { provider: cs, project: p }', 'scopes[0].auth', 'is required'],
    [
      'an inline token',
      '      - { provider: cs, project: p, auth: { token: inline-secret } }',
      'scopes[0].auth.token',
      /must be an environment reference/,
    ],
    [
      'a label that cannot name state',
      '      - { provider: cs, project: "My Project", auth: { token: "${CS_TOKEN_A}" } }',
      'scopes[0].project',
      /must be 1-63 characters/,
    ],
    [
      'a lookback beyond the retention',
      '      - { provider: cs, project: p, auth: { token: "${CS_TOKEN_A}" }, lookback: 91d }',
      'scopes[0].lookback',
      'must be at most 90d',
    ],
  ])('reports %s at its path', (_what, scopes, path, message) => {
    const result = load(config(scopes));
    if (result.ok) throw new Error('expected an error');
    expect(issueAt(result.error, path).message).toMatch(message);
    expect(result.error.format()).not.toContain('inline-secret');
  });

  it('refuses a non-http apiUrl', () => {
    const result = load(
      config(
        '      - { provider: cs, project: p, auth: { token: "${CS_TOKEN_A}" } }',
        '        apiUrl: ftp://x',
      ),
    );
    if (result.ok) throw new Error('expected an error');
    expect(issueAt(result.error, 'providers[0].apiUrl').message).toBe('must be an http(s) URL');
  });
});
