/**
 * The human part of a STACKIT error body, for error messages. STACKIT APIs answer errors in three shapes:
 * `{message, status, path, timestamp}` (audit log, resource manager), `{error, message, …}` and
 * `{"error": {code, message, status}}` (service-account API), and OAuth 2.0's `{error, error_description}`
 * (the federated token endpoint). Bounded, so a proxy's HTML page stays out
 * of logs, and anything shaped like a JWT is masked in case an endpoint echoes a credential.
 */
export function errorMessageOf(body: string): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const record = parsed as { message?: unknown; error?: unknown; error_description?: unknown };
  let message: unknown = record.message ?? record.error_description;
  if (typeof message !== 'string' && typeof record.error === 'object' && record.error !== null) {
    message = (record.error as { message?: unknown }).message;
  }
  if (typeof message !== 'string' || message.trim() === '') return undefined;
  return maskJwts(message).slice(0, 300);
}

const JWT_LIKE = /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g;

export function maskJwts(text: string): string {
  return text.replace(JWT_LIKE, '[jwt]');
}
