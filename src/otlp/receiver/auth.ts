import { createHash, timingSafeEqual } from 'node:crypto';
import type { Secret } from '../../config/secret.ts';

/** How a pusher proves it may send: the STACKIT destination offers a bearer token or basic auth. */
export type ReceiverAuth =
  | { readonly kind: 'bearer'; readonly token: Secret }
  | { readonly kind: 'basic'; readonly username: string; readonly password: Secret }
  | { readonly kind: 'none' };

/**
 * Checks an `Authorization` header value. Both sides are hashed first and compared with
 * timingSafeEqual, so neither the secret's content nor its length leaks through response timing.
 */
export function authorizer(auth: ReceiverAuth): (header: string | undefined) => boolean {
  if (auth.kind === 'none') return () => true;
  const expected = digest(
    auth.kind === 'bearer'
      ? `Bearer ${auth.token.reveal()}`
      : `Basic ${Buffer.from(`${auth.username}:${auth.password.reveal()}`, 'utf8').toString('base64')}`,
  );
  return (header) => {
    // The scheme is case-insensitive (RFC 9110); the credentials are not.
    const normalized = header?.replace(/^(bearer|basic)\s+/i, (_, scheme: string) =>
      scheme.toLowerCase() === 'bearer' ? 'Bearer ' : 'Basic ',
    );
    return timingSafeEqual(digest(normalized ?? ''), expected);
  };
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
