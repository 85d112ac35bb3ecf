import { generateKeyPairSync } from 'node:crypto';
import { expect } from 'vitest';
import type { ConfigError, ConfigIssue } from '../../src/config/errors.ts';
import { type LoadedConfig, type LoadOptions, loadConfig } from '../../src/config/load.ts';

/** Strips the common indentation and the first newline, so line numbers in tests match what is written. */
export function yaml(strings: TemplateStringsArray, ...values: unknown[]): string {
  const raw = strings
    .reduce((out, part, i) => out + part + (i < values.length ? String(values[i]) : ''), '')
    .replace(/^\n/, '');
  const lines = raw.split('\n');
  const indent = Math.min(
    ...lines.filter((l) => l.trim() !== '').map((l) => (/^ */.exec(l) as RegExpExecArray)[0].length),
  );
  return lines.map((l) => l.slice(indent)).join('\n');
}

export const TOKEN = 'tok-7f3a9c1e-SECRET-never-print';
export const PROJECT_A = '3f2504e0-4f89-41d3-9a0c-0305e82c3301';
export const PROJECT_B = '7c9e6679-7425-40de-944b-e07fc1f90ae7';
export const FOLDER_A = '9b2d1c3a-5e6f-4a7b-8c9d-0e1f2a3b4c5d';

export const BASE_ENV = {
  STACKIT_TOKEN: TOKEN,
  // The credentials config/example.yaml's sinks reference.
  LOKI_PASSWORD: 'loki-password',
  ES_API_KEY: 'es-api-key',
  S3_ACCESS_KEY_ID: 's3-key-id',
  S3_SECRET_ACCESS_KEY: 's3-secret',
  // The cloudscale projects of config/example.yaml.
  CLOUDSCALE_TOKEN_WEB_SHOP: 'cs-token-web-shop',
  CLOUDSCALE_TOKEN_BACKOFFICE: 'cs-token-backoffice',
  // The Telemetry Router's credential for the stackit-telemetry receiver of config/example.yaml.
  STACKIT_ROUTER_TOKEN: 'router-token',
} as const;

/** config/example.yaml authenticates with a service-account key from the environment, as recommended. */
export const EXAMPLE_ENV: Readonly<Record<string, string>> = (() => {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const key = {
    credentials: {
      kid: 'k-1',
      iss: 'shipper@sa.stackit.cloud',
      sub: '4f1d2c3b-1111-4aaa-8bbb-0123456789ab',
      aud: 'https://stackit-service-account-prod.apps.01.cf.eu01.stackit.cloud',
      privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    },
  };
  return { ...BASE_ENV, STACKIT_SERVICE_ACCOUNT_KEY: JSON.stringify(key) };
})();

export function load(text: string, options: LoadOptions = {}) {
  return loadConfig({ text, origin: 'test.yaml' }, { env: BASE_ENV, ...options });
}

export function loadOk(text: string, options: LoadOptions = {}): LoadedConfig {
  const result = load(text, options);
  if (!result.ok) throw new Error(`expected a valid config:\n${result.error.format()}`);
  return result;
}

export function loadError(text: string, options: LoadOptions = {}): ConfigError {
  const result = load(text, options);
  if (result.ok) throw new Error('expected the config to be rejected');
  return result.error;
}

/** The one issue at `path`; fails listing all issues when there is not exactly one. */
export function issueAt(error: ConfigError, path: string): ConfigIssue {
  const found = error.issues.filter((issue) => issue.path === path);
  expect(found, `issues at ${path} in:\n${error.format()}`).toHaveLength(1);
  return found[0] as ConfigIssue;
}

/** A config with everything valid, to break one thing at a time. */
export const MINIMAL = yaml`
  providers:
    - name: prod
      type: stackit
      auth: { token: "\${STACKIT_TOKEN}" }
  scopes:
    - provider: prod
      project: ${PROJECT_A}
  sinks:
    - name: out
      type: stdout
`;

/** Runs the validate command the way main.ts wires it, without the other commands main.ts imports. */
export const HARNESS = [
  '--input-type=module',
  '-e',
  "import { Command } from 'commander'; import { register } from './src/cli/commands/validate.ts'; const program = new Command('auditlog-shipper'); register(program); await program.parseAsync(process.argv.slice(1), { from: 'user' });",
];
