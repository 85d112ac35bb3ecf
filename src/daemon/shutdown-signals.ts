import type { Logger } from 'pino';

/**
 * SIGTERM/SIGINT handling for `run`, installed before anything starts: a Ctrl-C in the first seconds of a
 * start (while Redis is started or awaited, sinks opened, workers created) must not kill the process
 * half-started, leaving an embedded redis-server behind with no word in the log. The first signal aborts
 * `signal`, which the start-up and the daemon's life both watch; what has started is then stopped in
 * order. A second signal exits at once (130).
 */
export class ShutdownSignals {
  readonly #controller = new AbortController();
  #log: Logger | undefined;
  #received: NodeJS.Signals | undefined;
  #startedUp = false;
  readonly #onSignal = (signal: NodeJS.Signals): void => {
    if (this.#received) {
      const message = `second ${signal}: exiting without finishing the shutdown`;
      if (this.#log) this.#log.warn(message);
      else process.stderr.write(`${message}\n`);
      this.#log?.flush();
      process.exit(130);
    }
    this.#received = signal;
    this.#report();
    this.#controller.abort(new Error(`received ${signal}`));
  };

  constructor() {
    process.on('SIGTERM', this.#onSignal);
    process.on('SIGINT', this.#onSignal);
  }

  /** Aborted by the first signal. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  get received(): NodeJS.Signals | undefined {
    return this.#received;
  }

  /** Logs through `log` from now on, including a signal that came before there was a logger. */
  attach(log: Logger): void {
    this.#log = log;
    if (this.#received) this.#report();
  }

  /** Start-up is over: a signal now means an ordinary shutdown. */
  startedUp(): void {
    this.#startedUp = true;
  }

  /** Resolves with the first signal (at once if it already came). */
  wait(): Promise<NodeJS.Signals> {
    const received = this.#received;
    if (received) return Promise.resolve(received);
    return new Promise((resolve) =>
      this.signal.addEventListener('abort', () => resolve(this.#received as NodeJS.Signals), { once: true }),
    );
  }

  dispose(): void {
    process.off('SIGTERM', this.#onSignal);
    process.off('SIGINT', this.#onSignal);
  }

  #report(): void {
    const signal = this.#received;
    if (!this.#log || !signal) return;
    this.#log.info(
      { signal },
      this.#startedUp
        ? `received ${signal}: shutting down (send it again to exit at once)`
        : `received ${signal} during start-up: stopping what has started (send it again to exit at once)`,
    );
  }
}
