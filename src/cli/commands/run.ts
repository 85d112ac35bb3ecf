import type { Command } from 'commander';
import type { Logger } from 'pino';
import { loadConfig } from '../../config/load.ts';
import type { ShipperConfig } from '../../config/types.ts';
import { ConfigReloader } from '../../daemon/config-reloader.ts';
import { Daemon } from '../../daemon/daemon.ts';
import { type EmbeddedDefault, startEmbeddedDefault } from '../../daemon/embedded-default.ts';
import { ShutdownSignals } from '../../daemon/shutdown-signals.ts';
import { createLogger } from '../../observability/logger.ts';

interface RunOptions {
  readonly config?: string;
}

/**
 * Runs the daemon until SIGTERM/SIGINT, then shuts down gracefully and exits 0; a signal during start-up
 * stops what has started and exits 0 too. A second signal exits at once (130). SIGHUP, or a change of the config file, reloads the config. Without a config file it runs
 * the embedded default (simulator, local Redis, file sink).
 */
export async function run(options: RunOptions): Promise<number> {
  // Before anything starts: a signal during start-up stops what has started instead of killing the
  // process half-way (which left the embedded redis-server running and said nothing).
  const signals = new ShutdownSignals();
  try {
    return await runUntilSignal(options, signals);
  } finally {
    signals.dispose();
  }
}

async function runUntilSignal(options: RunOptions, signals: ShutdownSignals): Promise<number> {
  let embedded: EmbeddedDefault | undefined;
  if (options.config === undefined) embedded = await startEmbeddedDefault();
  const loaded = embedded
    ? loadConfig({ text: embedded.configText, origin: '<embedded default>' }, { env: embedded.env })
    : loadConfig({ path: options.config as string });
  if (!loaded.ok) {
    process.stderr.write(`✗ ${loaded.error.format()}\n`);
    await embedded?.simulator.close();
    return 1;
  }
  const config: ShipperConfig = loaded.config;
  const log = createLogger({ level: config.daemon.log.level, instanceId: config.daemon.instanceId });
  log.info(
    { pid: process.pid },
    'starting auditlog-shipper (SIGTERM or Ctrl-C stops it cleanly from now on)',
  );
  signals.attach(log);
  for (const warning of loaded.warnings) log.warn(`config: ${warning}`);
  if (embedded) {
    log.info(
      { simulator: embedded.simulator.url, scopes: config.scopes.length },
      'embedded default: polling the built-in STACKIT simulator; events are appended to ./data/events.ndjson',
    );
  }

  let daemon: Daemon;
  try {
    daemon = await Daemon.start(config, { log, signal: signals.signal });
  } catch (error) {
    await embedded?.simulator.close();
    if (signals.received) {
      // Daemon.start stopped what it had started before rethrowing.
      log.info('shutdown complete (during start-up)');
      await flush(log);
      return 0;
    }
    log.fatal({ err: error }, `cannot start: ${(error as Error).message}`);
    await flush(log);
    return 1;
  }
  signals.startedUp();

  const reloader = options.config
    ? new ConfigReloader({ path: options.config, daemon, log, metrics: daemon.metrics })
    : undefined;
  if (!signals.received) await reloader?.start();

  await signals.wait();
  await reloader?.stop();
  await daemon.stop();
  await embedded?.simulator.close();
  await flush(log);
  return 0;
}

function flush(log: Logger): Promise<void> {
  return new Promise((resolve) => log.flush(() => resolve()));
}

export function register(program: Command): void {
  program
    .command('run')
    .description(
      'Run the shipper. Without --config: the embedded default (built-in simulator, local redis-server, ./data/events.ndjson).',
    )
    .option('-c, --config <file>', 'the YAML config file')
    .action(async (options: RunOptions) => {
      process.exitCode = await run(options);
      // Open handles of a finished shutdown must not keep the process alive.
      setTimeout(() => process.exit(process.exitCode ?? 0), 200).unref();
    });
}
