const MASK = '***';
/** Query parameters that carry credentials in connection URLs (`?password=`, `?token=`, `?sig=`...). */
const SECRET_PARAM = /pass|pwd|secret|token|key|auth|sig|credential/i;

/**
 * A URL safe to print: the password (and the user name when it stands alone, since some Redis clients
 * read `redis://secret@host` as a password) and credential-like query parameters become `***`. Text that
 * does not parse as a URL is withheld entirely: it may be a credential pasted in the wrong place.
 *
 *   redactUrl('redis://:hunter2@redis:6379/0')       → 'redis://:***@redis:6379/0'
 *   redactUrl('rediss://app:hunter2@redis:6380')     → 'rediss://app:***@redis:6380'
 */
export function redactUrl(url: string): string {
  if (url === '') return '';
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return '[redacted: not a URL]';
  }
  if (parsed.password !== '') parsed.password = MASK;
  else if (parsed.username !== '') parsed.username = MASK;
  for (const name of [...parsed.searchParams.keys()]) {
    if (SECRET_PARAM.test(name)) parsed.searchParams.set(name, MASK);
  }
  // URL encodes the mask's asterisks in userinfo as-is, but in the query as %2A%2A%2A; print them plainly.
  return parsed.toString().replaceAll('%2A%2A%2A', MASK);
}

/** What a known secret value becomes wherever it appears in outgoing text. */
export const SECRET_MASK = '[redacted]';
/** Values shorter than this are not masked in free text: it would garble every message ("admin"). */
const MIN_SECRET_LENGTH = 6;
/** Old values (rotated tokens, reloaded configs) are forgotten beyond this many, oldest first. */
const MAX_SECRET_VALUES = 10_000;

/**
 * The one redactor: every credential value this process has seen (config secrets, access tokens the key
 * flow obtained, sink credentials and their encoded forms) is masked in any text that leaves the process
 * (log lines, messages stored in Redis, error messages, CLI output, metrics), also when a provider or a
 * proxy echoes the value back in an error body. Secret objects register their values on creation;
 * values obtained at run time (access tokens) are registered where they are obtained.
 */
export class SecretRedactor {
  readonly #values = new Set<string>();
  #pattern: RegExp | undefined;

  /** Registers a value and the forms it takes inside JSON strings and URLs. */
  add(value: string): void {
    if (value.length < MIN_SECRET_LENGTH) return;
    const forms = [value, JSON.stringify(value).slice(1, -1), encodeURIComponent(value)];
    for (const form of forms) {
      if (this.#values.has(form)) continue;
      this.#values.add(form);
      this.#pattern = undefined;
    }
    while (this.#values.size > MAX_SECRET_VALUES) {
      const oldest = this.#values.values().next().value as string;
      this.#values.delete(oldest);
    }
  }

  /** The text with every known secret value replaced by `[redacted]`. */
  redact(text: string): string {
    if (this.#values.size === 0 || text.length < MIN_SECRET_LENGTH) return text;
    this.#pattern ??= new RegExp(
      [...this.#values]
        .sort((a, b) => b.length - a.length) // a value that contains another is masked whole
        .map((value) => value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
        .join('|'),
      'g',
    );
    return text.replace(this.#pattern, SECRET_MASK);
  }

  /** Forgets every value (tests). */
  clear(): void {
    this.#values.clear();
    this.#pattern = undefined;
  }
}

/** The process's redactor. */
export const secretRedactor = new SecretRedactor();

/** Masks every known secret value in `text`. */
export function redactSecrets(text: string): string {
  return secretRedactor.redact(text);
}

/** Tells the redactor about a credential obtained at run time (e.g. an access token). */
export function registerSecretValue(value: string): void {
  secretRedactor.add(value);
}

/**
 * A plain copy of an error, safe to hand to code that stores or prints it: BullMQ keeps `message` as a
 * job's failedReason and `stack` as its stacktrace, in Redis. Message and stack are redacted.
 */
export function redactedError(error: unknown): Error {
  const source = error instanceof Error ? error : new Error(String(error));
  const copy = new Error(redactSecrets(source.message));
  copy.name = source.name;
  copy.stack = redactSecrets(source.stack ?? `${source.name}: ${source.message}`);
  return copy;
}
