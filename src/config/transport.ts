/**
 * Transport rules for the URLs a config names (guarantee G6): no credentials over plain HTTP unless an
 * entry says `allowInsecureHttp: true`, and no credentials inside a URL, where they escape the
 * Secret handling (and end up in shell history, process listings and ConfigMaps).
 */
import { isSecret } from './secret.ts';

/** Plain data only: class instances (Secret, a parsed key) are not settings written in the file. */
function isRecord(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** A URL-valued setting found in an entry's parsed settings. */
export interface UrlSetting {
  /** Path below the entry, e.g. `['auth', 'tokenEndpoint']`. */
  readonly path: readonly (string | number)[];
  readonly url: URL;
}

/** Every http(s) URL among an entry's parsed settings (plain objects and arrays are walked). */
export function urlSettings(value: unknown, path: readonly (string | number)[] = []): UrlSetting[] {
  if (typeof value === 'string') {
    if (!/^https?:\/\//i.test(value)) return [];
    try {
      return [{ path, url: new URL(value) }];
    } catch {
      return [];
    }
  }
  if (Array.isArray(value)) return value.flatMap((item, i) => urlSettings(item, [...path, i]));
  if (isRecord(value)) {
    return Object.entries(value).flatMap(([key, item]) => urlSettings(item, [...path, key]));
  }
  return [];
}

/** Whether an entry's parsed settings hold any credential (a Secret anywhere inside). */
export function holdsSecret(value: unknown): boolean {
  if (isSecret(value)) return true;
  if (Array.isArray(value)) return value.some(holdsSecret);
  if (isRecord(value)) return Object.values(value).some(holdsSecret);
  return false;
}

const WHOLE_ENV_REF = /^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/;

/**
 * Whether a URL as written in the file carries a password written out (`redis://:hunter2@host`), as
 * opposed to a reference (`redis://:${REDIS_PASSWORD}@host`). A lone user name counts as a password:
 * Redis clients read `redis://secret@host` that way.
 */
export function hasInlinePassword(written: string): boolean {
  const match = /^\s*[a-z][a-z0-9+.-]*:\/\/([^/?#]*)@/i.exec(written);
  if (!match) return false;
  const userinfo = match[1] as string;
  const colon = userinfo.indexOf(':');
  const password = colon === -1 ? userinfo : userinfo.slice(colon + 1);
  return password !== '' && !WHOLE_ENV_REF.test(password);
}
