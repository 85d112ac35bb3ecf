import { inspect } from 'node:util';
import { registerSecretValue } from './redact.ts';

const REDACTED = '[redacted]';

/**
 * A credential read from the environment or a file. It renders as `[redacted]` everywhere a value can
 * leak by accident (string interpolation, JSON, util.inspect, pino), so only code that calls `reveal()`
 * on purpose (an Authorization header) ever sees the value. Creating one registers the value with the
 * process's redactor (redact.ts), which masks it in any outgoing text.
 */
export class Secret {
  readonly #value: string;
  /** Where the value came from, e.g. `env STACKIT_TOKEN` or `file /run/secrets/token`; safe to log. */
  readonly origin: string;

  constructor(value: string, origin: string) {
    this.#value = value;
    this.origin = origin;
    // The redactor masks the value wherever it shows up anyway, e.g. echoed back in a provider's error.
    registerSecretValue(value);
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return `Secret(${this.origin})`;
  }
}

export function isSecret(value: unknown): value is Secret {
  return value instanceof Secret;
}
