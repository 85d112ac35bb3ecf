import type { Command } from 'commander';
import type { Env } from '../../config/fields.ts';
import { loadConfig } from '../../config/load.ts';
import { redactSecrets } from '../../config/redact.ts';

export interface ValidateOptions {
  readonly config: string;
  readonly json?: boolean;
}

export interface ValidateIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly env?: Env;
}

function plural(count: number, one: string): string {
  return `${count} ${count === 1 ? one : `${one}s`}`;
}

/**
 * Loads and checks a config file as `run` would (credentials resolved, token files read) without
 * starting anything: no Redis, no network. Returns the exit code: 0 valid, 1 not.
 */
export function validateConfig(options: ValidateOptions, io: ValidateIo): number {
  const result = loadConfig({ path: options.config }, io.env !== undefined ? { env: io.env } : {});
  if (options.json) {
    const report = result.ok
      ? {
          ok: true,
          origin: options.config,
          providers: result.config.providers.length,
          scopes: result.config.scopes.length,
          sinks: result.config.sinks.length,
          warnings: result.warnings,
        }
      : { ok: false, origin: result.error.origin, issues: result.error.issues };
    io.out(`${JSON.stringify(report, null, 2)}\n`);
    return result.ok ? 0 : 1;
  }
  if (!result.ok) {
    io.err(`✗ ${result.error.format()}\n`);
    return 1;
  }
  const { config, warnings } = result;
  io.out(
    `✓ ${options.config}: ${plural(config.providers.length, 'provider')}, ${plural(config.scopes.length, 'scope')}, ${plural(config.sinks.length, 'sink')}\n`,
  );
  for (const warning of warnings) io.err(`  warning: ${warning}\n`);
  return 0;
}

export function register(program: Command): void {
  program
    .command('validate')
    .description('Check a config file: every problem with its line, credentials resolved. Starts nothing.')
    .requiredOption('-c, --config <file>', 'the YAML config file')
    .option('--json', 'print the result as JSON on stdout (issues with path, line, column, message)')
    .action((options: ValidateOptions) => {
      process.exitCode = validateConfig(options, {
        out: (text) => process.stdout.write(redactSecrets(text)),
        err: (text) => process.stderr.write(redactSecrets(text)),
      });
    });
}
