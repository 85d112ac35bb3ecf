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
