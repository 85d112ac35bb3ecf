import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Secret } from '../../src/config/secret.ts';
import { createLogger, throttledErrorLog } from '../../src/observability/logger.ts';
import { memoryLogger } from '../support/logger.ts';

function capture() {
  const out = new PassThrough();
  let text = '';
  out.on('data', (c: Buffer) => {
    text += c.toString();
  });
  return { out, text: () => text };
}

describe('createLogger', () => {
  it('writes JSON lines with the instance and redacts credentials, plain or as Secret', async () => {
    const { out, text } = capture();
    const log = createLogger({ level: 'info', instanceId: 'pod-1', destination: out });
    log.info(
      {
        token: 'plain-token-value',
        auth: { password: 'hunter2', token: new Secret('secret-value', 'env X') },
        headers: { authorization: 'Bearer abc.def' },
      },
      'hello',
    );
    await new Promise((r) => setImmediate(r));
    const line = JSON.parse(text().trim());
    expect(line).toMatchObject({ level: 'info', instance: 'pod-1', msg: 'hello' });
    for (const leaked of ['plain-token-value', 'hunter2', 'secret-value', 'abc.def'])
      expect(text()).not.toContain(leaked);
    expect(line.token).toBe('[redacted]');
    expect(line.headers.authorization).toBe('[redacted]');
  });
});

describe('throttledErrorLog', () => {
  it('logs a recurring error once per interval and says how many it held back', async () => {
    const { log, lines } = memoryLogger();
    const report = throttledErrorLog(log, 'redis down', 100);
    for (let i = 0; i < 5; i++) report(new Error('ECONNREFUSED'));
    await new Promise((r) => setTimeout(r, 120));
    report(new Error('ECONNREFUSED'));
    const logged = lines().filter((l) => l.msg === 'redis down');
    expect(logged.map((l) => l.suppressed)).toEqual([0, 4]);
  });
});
