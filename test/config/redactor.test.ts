import { describe, expect, it } from 'vitest';
import {
  redactedError,
  redactSecrets,
  registerSecretValue,
  SecretRedactor,
} from '../../src/config/redact.ts';
import { Secret } from '../../src/config/secret.ts';

describe('SecretRedactor (issue 9 §8)', () => {
  it('masks a value, its JSON-escaped and its URL-encoded form, wherever it appears', () => {
    const r = new SecretRedactor();
    r.add('s3cr"et/+token');
    expect(r.redact('token s3cr"et/+token is read-only')).toBe('token [redacted] is read-only');
    expect(r.redact(JSON.stringify({ detail: 'bad s3cr"et/+token' }))).toBe('{"detail":"bad [redacted]"}');
    expect(r.redact('?t=s3cr%22et%2F%2Btoken&x=1')).toBe('?t=[redacted]&x=1');
  });

  it('masks the longer of two overlapping values whole, and leaves short values alone', () => {
    const r = new SecretRedactor();
    r.add('abcdef');
    r.add('abcdef-ghijkl');
    r.add('admin');
    expect(r.redact('x abcdef-ghijkl y abcdef admin')).toBe('x [redacted] y [redacted] admin');
  });

  it('redacts the message and stack of an error handed to storage (BullMQ failedReason, stacktrace)', () => {
    registerSecretValue('tok-0123456789-global');
    const error = redactedError(new Error('HTTP 403: tok-0123456789-global is read-only'));
    expect(error.message).toBe('HTTP 403: [redacted] is read-only');
    expect(error.stack).toMatch(/^Error: HTTP 403: \[redacted\] is read-only\n/);
    expect(error.stack).not.toContain('tok-0123456789-global');
  });

  it('masks every value a Secret object holds, from its creation on', () => {
    new Secret('created-as-secret-42', 'env X');
    expect(redactSecrets('echo created-as-secret-42')).toBe('echo [redacted]');
  });
});
