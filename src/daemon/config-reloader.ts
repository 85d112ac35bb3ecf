import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Env } from '../config/fields.ts';
import { loadConfig } from '../config/load.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Daemon } from './daemon.ts';

export interface ConfigReloaderOptions {
  readonly path: string;
  readonly daemon: Pick<Daemon, 'applyConfig'>;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly env?: Env;
  /** How often the file is checked for changes; Kubernetes updates a mounted ConfigMap in place. */
  readonly checkEveryMs?: number;
}

/**
 * Reloads the config file on SIGHUP and whenever its content changes (checked by hash, which also
 * catches the symlink swap Kubernetes does for ConfigMap volumes). An invalid file is rejected with
 * every problem logged, and the config in effect keeps running.
 */
export class ConfigReloader {
  readonly #o: ConfigReloaderOptions;
  #hash: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> = Promise.resolve();
  readonly #onSignal = (): void => void this.reload('SIGHUP');

  constructor(options: ConfigReloaderOptions) {
    this.#o = options;
  }

  async start(): Promise<void> {
    this.#hash = await this.#contentHash();
    this.#o.metrics.configLoadedTimestamp.set(Date.now() / 1000);
    process.on('SIGHUP', this.#onSignal);
    this.#timer = setInterval(() => void this.reload('file change'), this.#o.checkEveryMs ?? 5_000);
    this.#timer.unref();
  }

  stop(): Promise<void> {
    clearInterval(this.#timer);
    process.off('SIGHUP', this.#onSignal);
    return this.#running;
  }

  /** A reload; with trigger "file change" only if the content differs from what was last applied. */
  reload(trigger: 'SIGHUP' | 'file change'): Promise<void> {
    this.#running = this.#running.then(() => this.#reload(trigger));
    return this.#running;
  }

  async #reload(trigger: 'SIGHUP' | 'file change'): Promise<void> {
    const { log, metrics, path } = this.#o;
    const hash = await this.#contentHash();
    if (hash === undefined || (trigger === 'file change' && hash === this.#hash)) return;
    const loaded = loadConfig({ path }, this.#o.env ? { env: this.#o.env } : {});
    if (!loaded.ok) {
      metrics.configReloads.inc({ result: 'invalid' });
      this.#hash = hash; // report a broken file once, not on every check
      log.error(
        { trigger, problems: loaded.error.issues.length },
        `config reload (${trigger}) rejected; the config in effect keeps running:\n${loaded.error.format()}`,
      );
      return;
    }
    try {
      const summary = await this.#o.daemon.applyConfig(loaded.config);
      this.#hash = hash;
      metrics.configReloads.inc({ result: 'applied' });
      metrics.configLoadedTimestamp.set(Date.now() / 1000);
      for (const warning of loaded.warnings) log.warn(`config: ${warning}`);
      log.info(
        { trigger, ...summary },
        `config reloaded (${trigger}): scopes +${summary.scopes.added.length} -${summary.scopes.removed.length}, ` +
          `sinks +${summary.sinks.added.length} -${summary.sinks.removed.length} ~${summary.sinks.replaced.length}, ` +
          `providers +${summary.providers.added.length} -${summary.providers.removed.length} ~${summary.providers.replaced.length}`,
      );
      if (summary.needsRestart.length > 0) {
        log.warn(
          { settings: summary.needsRestart },
          `config reload: ${summary.needsRestart.join(', ')} changed; daemon settings take effect after a restart`,
        );
      }
    } catch (error) {
      metrics.configReloads.inc({ result: 'failed' });
      log.error(
        { err: error, trigger },
        `config reload (${trigger}) could not be applied: ${(error as Error).message}`,
      );
    }
  }

  async #contentHash(): Promise<string | undefined> {
    try {
      return createHash('sha256')
        .update(await readFile(this.#o.path))
        .digest('hex');
    } catch (error) {
      this.#o.log.warn(
        { err: error },
        `config file ${this.#o.path} cannot be read; keeping the config in effect`,
      );
      return undefined;
    }
  }
}
