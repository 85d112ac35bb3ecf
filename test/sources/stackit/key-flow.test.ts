import { createPublicKey, verify } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { withEnv } from '../../../src/config/fields.ts';
import { makeScopeIds, type Simulator, startSimulator } from '../../../src/simulator/index.ts';
import { ProviderError } from '../../../src/sources/errors.ts';
import type { Page } from '../../../src/sources/source.ts';
import { ASSERTION_LIFETIME_S, signAssertion } from '../../../src/sources/stackit/auth/jwt.ts';
import { KeyFlowTokenSource } from '../../../src/sources/stackit/auth/key-flow.ts';
import {
  parseServiceAccountKey,
  type ServiceAccountKey,
} from '../../../src/sources/stackit/auth/service-account-key.ts';
import { stackitProviderSchema, stackitScopeSchema } from '../../../src/sources/stackit/config.ts';
import { StackitSource } from '../../../src/sources/stackit/source.ts';
import { memoryLogger, silentLogger } from '../../support/logger.ts';

let sim: Simulator;
const [PROJECT] = makeScopeIds(31, 1) as [string];

beforeAll(async () => {
  sim = await startSimulator({
    seed: 31,
    stackit: {
      scopes: [{ kind: 'project', id: PROJECT, eventsPerMinute: 20 }],
      delay: { minMs: 0, maxMs: 0 },
      trafficStartMs: Date.now() - 20 * 60_000,
    },
  });
});
afterAll(async () => {
  await sim.close();
});
beforeEach(() => {
  sim.identity.accessTokenTtlMs = 3_600_000;
  sim.identityFaults.clear();
  sim.clock.skewMs = 0;
});

function keyFromDocument(doc: unknown): ServiceAccountKey {
  const parsed = parseServiceAccountKey({ text: JSON.stringify(doc), origin: 'test' });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
  return parsed.key;
}

function tokenSource(key: ServiceAccountKey, log = silentLogger) {
  return new KeyFlowTokenSource({
    providerName: 'sim',
    key,
    tokenEndpoint: sim.tokenUrl,
    timeoutMs: 5_000,
    userAgent: 'test',
    log,
    onRequest: () => {},
  });
}

const signal = () => new AbortController().signal;

async function auditStatus(token: string): Promise<number> {
  const end = new Date(Date.now() - 60_000).toISOString();
  const start = new Date(Date.now() - 120_000).toISOString();
  const res = await fetch(
    `${sim.url}/v2/projects/${PROJECT}?start-time-range=${start}&end-time-range=${end}`,
    { headers: { authorization: `Bearer ${token}` } },
  );
  await res.arrayBuffer();
  return res.status;
}

describe('the assertion', () => {
  it('is an RS512 JWT with kid, the key’s iss/sub/aud, a uuid jti and a 600 s lifetime', () => {
    const doc = sim.identity.createKey();
    const key = keyFromDocument(doc);
    const now = Date.UTC(2025, 0, 1, 12);
    const jwt = signAssertion(key, now);
    const [h, c, s] = jwt.split('.') as [string, string, string];
    const header = JSON.parse(Buffer.from(h, 'base64url').toString());
    const claims = JSON.parse(Buffer.from(c, 'base64url').toString());
    expect(header).toEqual({ alg: 'RS512', typ: 'JWT', kid: doc.credentials.kid });
    expect(claims).toEqual({
      iss: doc.credentials.iss,
      sub: doc.credentials.sub,
      aud: doc.credentials.aud,
      jti: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/),
      iat: now / 1000,
      exp: now / 1000 + ASSERTION_LIFETIME_S,
    });
    expect(ASSERTION_LIFETIME_S).toBe(600);
    const publicKey = createPublicKey(doc.publicKey);
    expect(verify('sha512', Buffer.from(`${h}.${c}`), publicKey, Buffer.from(s, 'base64url'))).toBe(true);
    expect(signAssertion(key, now)).not.toBe(jwt); // a fresh jti each time
  });
});

describe('KeyFlowTokenSource', () => {
  it('mints once for many concurrent callers, caches, and the API accepts the token', async () => {
    const source = tokenSource(keyFromDocument(sim.identity.createKey()));
    const before = sim.identity.stats().issued;
    const tokens = await Promise.all(Array.from({ length: 50 }, () => source.token(signal())));
    expect(new Set(tokens).size).toBe(1);
    expect(await source.token(signal())).toBe(tokens[0]);
    expect(sim.identity.stats().issued - before).toBe(1);
    expect(await auditStatus(tokens[0] as string)).toBe(200);
    await source.close();
  });

  it('mints the next token before the current one expires, without making callers wait', async () => {
    sim.identity.accessTokenTtlMs = 4_000;
    const source = tokenSource(keyFromDocument(sim.identity.createKey()));
    // Issued tokens carry exp in whole seconds: start on a second boundary so the lifetime is ~4 s.
    await new Promise((r) => setTimeout(r, 1_000 - (Date.now() % 1_000)));
    const first = await source.token(signal());
    const before = sim.identity.stats().issued;
    // Past half its life (renewal due at ~2 s), before its last quarter (~3 s): still handed out, while
    // a new one is minted in the background.
    await new Promise((r) => setTimeout(r, 2_400));
    expect(await source.token(signal())).toBe(first);
    await new Promise((r) => setTimeout(r, 200));
    const second = await source.token(signal());
    expect(second).not.toBe(first);
    expect(sim.identity.stats().issued - before).toBe(1);
    // The first expires at the provider; the second is still good.
    await new Promise((r) => setTimeout(r, 1_600));
    expect(await auditStatus(first)).toBe(401);
    expect(await auditStatus(second)).toBe(200);
    await source.close();
  });

  it('fails loudly with reason unauthorized when the key was deleted ("Key with kid … was not found")', async () => {
    const doc = sim.identity.createKey();
    const source = tokenSource(keyFromDocument(doc));
    sim.identity.deleteKey(doc.credentials.kid);
    const error = await source.token(signal()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject({ reason: 'unauthorized', retryable: false, status: 400 });
    expect((error as Error).message).toContain(`Key with kid ${doc.credentials.kid} was not found`);
    expect((error as Error).message).toContain('the key was deleted or deactivated');
    await source.close();
  });

  it('is refused for a wrong audience, an expired assertion (clock off) and a deactivated key', async () => {
    const doc = sim.identity.createKey();
    const wrongAud = tokenSource(
      keyFromDocument({ ...doc, credentials: { ...doc.credentials, aud: 'https://x' } }),
    );
    await expect(wrongAud.token(signal())).rejects.toThrow(/HTTP 400: claim aud does not match the key/);
    // The provider's clock is 20 minutes ahead: a 10-minute assertion signed now is already expired there.
    sim.clock.skewMs = 20 * 60_000;
    const skewed = tokenSource(keyFromDocument(doc));
    await expect(skewed.token(signal())).rejects.toThrow(/HTTP 400: assertion is expired/);
    sim.clock.skewMs = 0;
    sim.identity.setKeyActive(doc.credentials.kid, false);
    await expect(tokenSource(keyFromDocument(doc)).token(signal())).rejects.toMatchObject({
      reason: 'unauthorized',
      status: 403,
    });
    for (const source of [wrongAud, skewed]) await source.close();
  });

  it('reports a token endpoint outage as retryable', async () => {
    const source = tokenSource(keyFromDocument(sim.identity.createKey()));
    sim.identityFaults.enqueue({ type: 'status', status: 503 });
    await expect(source.token(signal())).rejects.toMatchObject({
      retryable: true,
      reason: 'server_error',
      status: 503,
    });
    expect(typeof (await source.token(signal()))).toBe('string');
    await source.close();
  });
});

describe('StackitSource with a service-account key', () => {
  function setup(doc: unknown) {
    const settings = withEnv({ SA_KEY: JSON.stringify(doc) }, () =>
      stackitProviderSchema.parse({
        auditLogUrl: sim.url,
        auth: { serviceAccountKey: '${SA_KEY}', tokenEndpoint: sim.tokenUrl },
        lookback: '10m',
        overlap: '1m',
        settleLag: '1s',
        retry: { attempts: 3, initialBackoff: '10ms', maxBackoff: '20ms' },
      }),
    );
    const { log, lines } = memoryLogger();
    const source = new StackitSource(
      { name: 'sim', type: 'stackit', settings },
      { log, instanceId: 't', onRequest: () => {} },
    );
    const scope = {
      key: `stackit:project:${PROJECT}`,
      provider: 'sim',
      ref: { kind: 'project', id: PROJECT },
      settings: stackitScopeSchema.parse({ project: PROJECT }),
    };
    const pull = async (): Promise<Page[]> => {
      const pages: Page[] = [];
      for await (const page of source.pull(scope, undefined, { signal: signal(), log, now: Date.now }))
        pages.push(page);
      return pages;
    };
    return { source, pull, lines };
  }

  it('answers a 401 (revoked token) with one fresh token, and carries on', async () => {
    const { source, pull, lines } = setup(sim.identity.createKey());
    await pull();
    const before = sim.identity.stats().issued;
    sim.identity.revokeAccessTokens();
    const pages = await pull();
    expect(pages.flatMap((p) => p.events).length).toBeGreaterThan(0);
    expect(sim.identity.stats().issued - before).toBe(1);
    expect(lines().some((l) => String(l.msg).includes('minting a new one and retrying once'))).toBe(true);
    await source.close();
  });

  it('fails with reason unauthorized after the fresh token is refused too, instead of looping', async () => {
    const doc = sim.identity.createKey();
    const { source, pull, lines } = setup(doc);
    await pull();
    sim.identity.setServiceAccountEnabled(doc.credentials.sub, false);
    sim.resetObservations();
    const error = await pull().catch((e: unknown) => e);
    expect(error).toMatchObject({ reason: 'unauthorized', status: 401, retryable: false });
    expect((error as Error).message).toContain('refused again with a freshly minted token');
    const audit = sim.requestLog.filter((r) => r.route === 'stackit.audit-log');
    expect(audit.map((r) => r.status)).toEqual([401, 401]);

    // Nothing the flow handled ever reached a log line or the error.
    const seen = sim.identity.credentialsSeen();
    const text = `${JSON.stringify(lines())}\n${(error as Error).message}`;
    expect(seen.assertions.length).toBeGreaterThan(0);
    for (const secret of [...seen.assertions, ...seen.accessTokens]) expect(text).not.toContain(secret);
    expect(text).not.toContain(doc.credentials.privateKey?.split('\n')[3] as string);
    sim.identity.setServiceAccountEnabled(doc.credentials.sub, true);
    await source.close();
  });

  it('retries through a token endpoint outage', async () => {
    const { source, pull } = setup(sim.identity.createKey());
    sim.identityFaults.enqueue({ type: 'status', status: 503 }, { type: 'reset' });
    const pages = await pull();
    expect(pages.length).toBeGreaterThan(0);
    await source.close();
  });
});
