/**
 * What the operator commands that read the shipper's Redis (`state`, `dlq`, `status`) share: the same
 * options and the same way of printing results and failing, so they behave alike.
 */
import type { Command } from 'commander';
import { redactSecrets } from '../config/redact.ts';

/** `-c/--config` (which Redis, which prefix) and `--json`, for a subcommand that reads Redis. */
export function redisCommandOptions(cmd: Command): Command {
  return cmd
    .option(
      '-c, --config <file>',
      'the config file (for the Redis URL and prefix); default: REDIS_URL, else the embedded Redis',
    )
    .option('--json', 'machine-readable output');
}

/** Reports a failed command on stderr and sets a failing exit code; open handles still close cleanly. */
export function failCommand(error: unknown): void {
  process.stderr.write(redactSecrets(`✗ ${(error as Error).message}\n`));
  process.exitCode = 1;
}

/** A command's output, to stdout. */
export function writeOut(s: string): void {
  process.stdout.write(redactSecrets(s));
}
