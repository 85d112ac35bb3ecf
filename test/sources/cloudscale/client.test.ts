import { describe, expect, it } from 'vitest';
import { Secret } from '../../../src/config/secret.ts';
import { startSimulator } from '../../../src/simulator/index.ts';
import { ProjectLogsClient } from '../../../src/sources/cloudscale/client.ts';
import { cloudscaleProviderSchema } from '../../../src/sources/cloudscale/config.ts';
import { ProviderError } from '../../../src/sources/errors.ts';
import { silentLogger } from '../../support/logger.ts';

function client(apiUrl = 'https://api.cloudscale.ch') {
  const settings = cloudscaleProviderSchema.parse({
    apiUrl,
    retry: { attempts: 1, initialBackoff: '10ms', maxBackoff: '10ms' },
  });
  return new ProjectLogsClient(settings, { providerName: 'cs', instanceId: 't', onRequest: () => {} });
}

function refusal(run: () => unknown): ProviderError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ProviderError);
    return error as ProviderError;
  }
  throw new Error('expected a refusal');
}

describe('vetting URLs the API hands out', () => {
  const c = client();
  const base = new URL('https://api.cloudscale.ch/v1/project-logs?cursor=1');

  it('accepts the configured origin, and resolves a relative link against the request', () => {
    expect(c.vet('https://api.cloudscale.ch/v1/project-logs?cursor=2', 'w', 'next').href).toBe(
      'https://api.cloudscale.ch/v1/project-logs?cursor=2',
    );
    expect(c.vet('/v1/project-logs?cursor=3', 'w', 'next', base).href).toBe(
      'https://api.cloudscale.ch/v1/project-logs?cursor=3',
    );
    expect(c.vet('https://API.cloudscale.ch:443/v1/project-logs', 'w', 'next').origin).toBe(
      'https://api.cloudscale.ch',
    );
  });

  it.each([
    ['another host', 'https://evil.example/v1/project-logs?cursor=9'],
    ['a look-alike host', 'https://api.cloudscale.ch.evil.example/v1/project-logs'],
    ['userinfo in front of another host', 'https://api.cloudscale.ch@evil.example/v1/project-logs'],
    ['plain http', 'http://api.cloudscale.ch/v1/project-logs'],
    ['another port', 'https://api.cloudscale.ch:8443/v1/project-logs'],
    ['a protocol-relative link', '//evil.example/v1/project-logs'],
  ])('refuses %s, without the query in the message', (_what, url) => {
    const error = refusal(() => c.vet(url, 'cloudscale provider "cs", project p, page 2', 'next', base));
    expect(error.reason).toBe('origin_refused');
    expect(error.retryable).toBe(false);
    expect(error.message).toMatch(
      /^cloudscale provider "cs", project p, page 2: next: refusing to send credentials to .*; only https:\/\/api\.cloudscale\.ch is configured/,
    );
    expect(error.message).not.toContain('cursor=');
  });

  it('refuses what is not a URL at all', () => {
    expect(refusal(() => c.vet('not a url', 'w', 'poll_more')).reason).toBe('invalid_response');
  });

  it('builds the first request with start in UTC', () => {
    expect(
      client('https://proxy.example/cloudscale/').startUrl(Date.UTC(2025, 8, 3, 11, 15, 19, 391)).href,
    ).toBe('https://proxy.example/cloudscale/v1/project-logs?start=2025-09-03T11%3A15%3A19.391Z');
  });
});

describe('statuses', () => {
  it('treats a 404 as a bad request, never as a vanished scope (the token implies the project)', async () => {
    const sim = await startSimulator({
      cloudscale: { projects: [{ name: 'p', token: 'tok', eventsPerMinute: 1 }] },
    });
    const c = client(sim.url);
    try {
      const url = new URL(`${sim.url}/v1/project-logs?cursor=not-a-number`);
      const error = await c
        .fetchPage(url, new Secret('tok', 'test'), 'w', AbortSignal.timeout(5_000), silentLogger)
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(error).toBeInstanceOf(ProviderError);
      expect(error).toMatchObject({ status: 404, reason: 'bad_request', retryable: false });
      expect((error as Error).message).toBe(
        `w: HTTP 404 from GET ${sim.url}/v1/project-logs: Invalid cursor`,
      );
    } finally {
      await c.close();
      await sim.close();
    }
  });
});
