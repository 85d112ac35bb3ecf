import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { withEnv } from '../../../src/config/fields.ts';
import { type Simulator, startSimulator } from '../../../src/simulator/index.ts';
import { ProviderError } from '../../../src/sources/errors.ts';
import {
  DEFAULT_FEDERATED_TOKEN_FILE,
  DEFAULT_WIF_TOKEN_ENDPOINT,
  WorkloadIdentityTokenSource,
} from '../../../src/sources/stackit/auth/workload-identity.ts';
import { stackitProviderSchema } from '../../../src/sources/stackit/config.ts';
import { memoryLogger, silentLogger } from '../../support/logger.ts';

/** One clock for the simulator and the token source, so token lifetimes are logic, not waiting. */
let nowMs = Date.UTC(2026, 11, 2, 9, 0, 0);
let sim: Simulator;
let dir: string;
let tokenFile: string;

beforeAll(async () => {
  sim = await startSimulator({ seed: 41, now: () => nowMs });
  dir = await mkdtemp(join(tmpdir(), 'wif-'));
  tokenFile = join(dir, 'token');
});
afterAll(async () => {
  await sim.close();
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => {
  sim.identity.accessTokenTtlMs = 3_600_000;
  sim.identityFaults.clear();
});

const signal = () => new AbortController().signal;

function tokenSource(email: string, log = silentLogger) {
  return new WorkloadIdentityTokenSource({
    providerName: 'sim',
    serviceAccountEmail: email,
    tokenFile,
    tokenEndpoint: sim.identity.federatedTokenUrl,
    timeoutMs: 5_000,
    userAgent: 'test',
    log,
    onRequest: () => {},
    now: () => nowMs,
  });
}

async function resourceManagerStatus(token: string): Promise<number> {
  const org = sim.resourceManager.addOrganization();
  const res = await fetch(`${sim.url}/v2/projects?containerParentId=${org.id}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  await res.arrayBuffer();
  return res.status;
}

describe('WorkloadIdentityTokenSource', () => {
  it('exchanges the projected token for an access token the APIs accept, once for many callers', async () => {
    const issuer = sim.identity.federate();
    await writeFile(tokenFile, `${issuer.issueToken()}\n`);
    const source = tokenSource(issuer.serviceAccountEmail);
    const before = sim.identity.stats().issued;
    const tokens = await Promise.all(Array.from({ length: 20 }, () => source.token(signal())));
    expect(new Set(tokens).size).toBe(1);
    expect(sim.identity.stats().issued - before).toBe(1);
    expect(await resourceManagerStatus(tokens[0] as string)).toBe(200);
    expect(source.credentialId).toBe(`wif-${issuer.serviceAccountEmail}`);
    await source.close();
  });

  it('re-reads the file when it renews: a rotated projected token is the one exchanged next', async () => {
    sim.identity.accessTokenTtlMs = 600_000;
    const issuer = sim.identity.federate();
    const first = issuer.issueToken({ ttlMs: 900_000 });
    await writeFile(tokenFile, first);
    const source = tokenSource(issuer.serviceAccountEmail);
    const accessA = await source.token(signal());
    expect(sim.identity.credentialsSeen().assertions.at(-1)).toBe(first);

    // The kubelet rotates the token; the first one expires. The cached access token is still handed out.
    nowMs += 60_000;
    const second = issuer.issueToken({ ttlMs: 3_600_000 });
    await writeFile(tokenFile, second);
    expect(await source.token(signal())).toBe(accessA);

    // Past the access token's life: the next exchange uses the rotated file, not the expired token.
    nowMs += 16 * 60_000;
    const accessB = await source.token(signal());
    expect(accessB).not.toBe(accessA);
    expect(sim.identity.credentialsSeen().assertions.at(-1)).toBe(second);
    expect(await resourceManagerStatus(accessA)).toBe(401);
    expect(await resourceManagerStatus(accessB)).toBe(200);
    await source.close();
  });

  it('a refused assertion names the provider, the endpoint and the status, never the token', async () => {
    const trusted = sim.identity.federate();
    const { log, lines } = memoryLogger();
    const sent: string[] = [];
    for (const forged of [
      trusted.issueToken({ subject: 'system:serviceaccount:other:intruder' }),
      trusted.issueToken({ audience: 'someone-else' }),
      trusted.issueToken({ ttlMs: -60_000 }),
      sim.identity.federate().issueToken(), // another cluster, not trusted for this service account
    ]) {
      sent.push(forged);
      await writeFile(tokenFile, forged);
      const source = tokenSource(trusted.serviceAccountEmail, log);
      const error = await source.token(signal()).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ProviderError);
      expect(error).toMatchObject({ reason: 'unauthorized', retryable: false, status: 401 });
      const message = (error as Error).message;
      expect(message).toMatch(
        /^stackit provider "sim": token endpoint http:\/\/127\.0\.0\.1:\d+\/oauth\/v2\/token refused/,
      );
      expect(message).toContain('HTTP 401');
      expect(message).toContain(trusted.serviceAccountEmail);
      expect(message).not.toContain(forged);
      expect(message).not.toContain(forged.split('.')[2] as string);
      await source.close();
    }
    const logged = JSON.stringify(lines());
    for (const token of sent) expect(logged).not.toContain(token.split('.')[1] as string);
  });

  it('an unknown service account is refused, and a missing file is an error naming the file', async () => {
    const issuer = sim.identity.federate();
    await writeFile(tokenFile, issuer.issueToken());
    const stranger = tokenSource('nobody@sa.stackit.cloud');
    await expect(stranger.token(signal())).rejects.toThrow(
      /refused service account nobody@sa\.stackit\.cloud .*HTTP 401/,
    );
    await stranger.close();

    const missing = new WorkloadIdentityTokenSource({
      providerName: 'sim',
      serviceAccountEmail: issuer.serviceAccountEmail,
      tokenFile: join(dir, 'not-there'),
      tokenEndpoint: sim.identity.federatedTokenUrl,
      timeoutMs: 5_000,
      userAgent: 'test',
      log: silentLogger,
      onRequest: () => {},
    });
    const error = await missing.token(signal()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProviderError);
    expect((error as Error).message).toContain(
      `workload identity token file ${join(dir, 'not-there')}: cannot be read (ENOENT)`,
    );
    await missing.close();
  });
});

describe('auth.workloadIdentity', () => {
  const parse = (auth: unknown, env: Record<string, string> = {}) =>
    withEnv(env, () => stackitProviderSchema.safeParse({ auth }));

  it('true takes the e-mail, file and endpoint from the pod identity webhook’s environment, then defaults', () => {
    const fromEnv = parse(
      { workloadIdentity: true },
      {
        STACKIT_SERVICE_ACCOUNT_EMAIL: 'shipper@sa.stackit.cloud',
        STACKIT_FEDERATED_TOKEN_FILE: '/var/run/token',
        STACKIT_IDP_ENDPOINT: 'https://idp.example/oauth/v2/token',
      },
    );
    expect(fromEnv.success && fromEnv.data.auth).toEqual({
      kind: 'workload-identity',
      serviceAccountEmail: 'shipper@sa.stackit.cloud',
      tokenFile: '/var/run/token',
      tokenEndpoint: 'https://idp.example/oauth/v2/token',
    });
    const defaults = parse({ workloadIdentity: { serviceAccountEmail: 'shipper@sa.stackit.cloud' } });
    expect(defaults.success && defaults.data.auth).toEqual({
      kind: 'workload-identity',
      serviceAccountEmail: 'shipper@sa.stackit.cloud',
      tokenFile: DEFAULT_FEDERATED_TOKEN_FILE,
      tokenEndpoint: DEFAULT_WIF_TOKEN_ENDPOINT,
    });
    expect(DEFAULT_WIF_TOKEN_ENDPOINT).toBe('https://accounts.stackit.cloud/oauth/v2/token');
    expect(DEFAULT_FEDERATED_TOKEN_FILE).toBe('/var/run/secrets/stackit.cloud/serviceaccount/token');
  });

  it('without an e-mail, or together with a key, is refused with the reason', () => {
    const noEmail = parse({ workloadIdentity: true });
    expect(noEmail.success).toBe(false);
    expect(JSON.stringify(noEmail.error?.issues)).toContain('STACKIT_SERVICE_ACCOUNT_EMAIL');
    const both = parse(
      { workloadIdentity: true, serviceAccountKey: '${KEY}' },
      { KEY: '{}', STACKIT_SERVICE_ACCOUNT_EMAIL: 'a@sa.stackit.cloud' },
    );
    expect(both.success).toBe(false);
    expect(JSON.stringify(both.error?.issues)).toContain('workloadIdentity replaces serviceAccountKey');
  });
});
