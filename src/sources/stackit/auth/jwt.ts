import { randomUUID, sign } from 'node:crypto';
import type { ServiceAccountKey } from './service-account-key.ts';

/** STACKIT's docs: the assertion is valid for 600 s (research/providers.md §2.2). */
export const ASSERTION_LIFETIME_S = 600;

function base64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url');
}

/**
 * The self-signed RS512 JWT (RFC 7523) a service-account key is exchanged with: `kid` in the header;
 * `iss`, `sub`, `aud` from the key, a fresh `jti`, `iat` now and `exp` 600 s later. The signature is
 * RSASSA-PKCS1-v1_5 with SHA-512, which is what `RS512` means (RFC 7518 §3.3).
 */
export function signAssertion(key: ServiceAccountKey, nowMs: number): string {
  const iat = Math.floor(nowMs / 1000);
  const header = { alg: 'RS512', typ: 'JWT', kid: key.kid };
  const claims = {
    iss: key.iss,
    sub: key.sub,
    aud: key.aud,
    jti: randomUUID(),
    iat,
    exp: iat + ASSERTION_LIFETIME_S,
  };
  const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
  const signature = sign('sha512', Buffer.from(signingInput), key.signingKey());
  return `${signingInput}.${base64url(signature)}`;
}

/**
 * The `exp` claim of a JWT, unverified: STACKIT access tokens are JWTs, and their `exp` is the truth
 * about their lifetime (`expires_in` is rounded and counts from when the server answered). Undefined
 * when the token is not a JWT with a numeric `exp`.
 */
export function jwtExpiryMs(token: string): number | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(parts[1] as string, 'base64url').toString('utf8')) as unknown;
    const exp = (claims as { exp?: unknown } | null)?.exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}
