/**
 * Provider settings every HTTP provider has, with the same bounds, defaults and documentation, so a
 * config reads alike across providers. Factories rather than shared instances: each provider's schema
 * gets its own copy, and the generated JSON Schema inlines each one where it is used.
 */
import { z } from 'zod';
import { duration, text } from '../config/fields.ts';

/** `requestTimeout`: the deadline of one request (connect, headers and body). */
export function requestTimeoutField() {
  return duration({ min: 1_000, max: 300_000 }).prefault('30s').describe('Per request, headers and body.');
}

/**
 * `retry`: tries per request within one poll and the backoff between them. `description` says which
 * failures the provider retries, since that differs between APIs.
 */
export function retryField(description: string) {
  return z
    .strictObject({
      attempts: z.number().int().min(1).max(20).default(5).describe('Tries per request within one poll.'),
      initialBackoff: duration({ min: 10 }).prefault('1s'),
      maxBackoff: duration({ min: 10 }).prefault('30s'),
    })
    .prefault({})
    .describe(description);
}

/** `tls`: an extra CA bundle, and the loudly logged escape hatch of not verifying at all. */
export function tlsField() {
  return z
    .strictObject({
      caFile: text().optional().describe('Extra CA bundle (PEM) to trust, e.g. for a corporate proxy.'),
      insecureSkipVerify: z
        .boolean()
        .default(false)
        .describe('Turns off certificate verification. Never in production; logged loudly.'),
    })
    .prefault({});
}
