import { createHash } from 'node:crypto';
import { isSecret } from '../config/secret.ts';

/**
 * A stable digest of a config entry, to tell on reload whether it changed. Secrets count by a hash of
 * their value (they serialize as "[redacted]", which would hide a rotated token); the digest itself is
 * never shown.
 */
export function fingerprint(value: unknown): string {
  const text = JSON.stringify(value, function replacer(this: unknown, key: string, v: unknown) {
    const raw = (this as Record<string, unknown> | undefined)?.[key];
    if (isSecret(raw)) return `secret:${createHash('sha256').update(raw.reveal()).digest('hex')}`;
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      return Object.fromEntries(
        Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)),
      );
    }
    return v;
  });
  return createHash('sha256')
    .update(text ?? '')
    .digest('hex');
}
