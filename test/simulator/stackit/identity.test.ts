import { generateKeyPairSync, sign } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ServiceAccountKeyDocument,
  type Simulator,
  startSimulator,
} from '../../../src/simulator/index.ts';
import { PROJECT } from '../helpers.ts';

let sim: Simulator;

beforeAll(async () => {
  sim = await startSimulator({
    seed: 5,
    stackit: { scopes: [{ kind: 'project', id: PROJECT, eventsPerMinute: 1 }] },
  });
});
afterAll(async () => {
  await sim.close();
});

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

/** An assertion as a client would build it, with any part overridable, signed with `privateKey`. */
function assertion(
  doc: ServiceAccountKeyDocument,
  options: { header?: Record<string, unknown>; claims?: Record<string, unknown>; privateKey?: string } = {},
): string {
  const now = Math.floor(Date.now() / 1000);
  const header = { alg: 'RS512', typ: 'JWT', kid: doc.credentials.kid, ...options.header };
  const claims = {
    iss: doc.credentials.iss,
    sub: doc.credentials.sub,
    aud: doc.credentials.aud,
    jti: 'a7c0b3b2-8f7e-4e1a-9c55-1f2e3d4c5b6a',
    iat: now,
    exp: now + 600,
    ...options.claims,
  };
  const input = `${b64(header)}.${b64(claims)}`;
  const key = options.privateKey ?? (doc.credentials.privateKey as string);
  return `${input}.${sign('sha512', Buffer.from(input), key).toString('base64url')}`;
}

async function exchange(
  body: Record<string, string>,
  contentType = 'application/x-www-form-urlencoded',
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(sim.tokenUrl, {
    method: 'POST',
    headers: { 'content-type': contentType },
    body: new URLSearchParams(body).toString(),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

const GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

async function apiStatus(token: string): Promise<number> {
  const start = new Date(Date.now() - 120_000).toISOString();
  const end = new Date(Date.now() - 60_000).toISOString();
  const audit = await fetch(
    `${sim.url}/v2/projects/${PROJECT}?start-time-range=${start}&end-time-range=${end}`,
    {
      headers: { authorization: `Bearer ${token}` },
    },
  );
  await audit.arrayBuffer();
  return audit.status;
}

describe('simulated token endpoint', () => {
  it('exchanges a valid assertion for a short-lived token the APIs accept (the spec’s response shape)', async () => {
    const doc = sim.identity.createKey();
    expect(doc).toMatchObject({ keyOrigin: 'GENERATED', keyAlgorithm: 'RSA_2048', active: true });
    expect(doc.credentials.privateKey).toContain('BEGIN PRIVATE KEY');
    const { status, json } = await exchange({ grant_type: GRANT, assertion: assertion(doc) });
    expect(status).toBe(200);
    expect(json).toEqual({
      access_token: expect.any(String),
      expires_in: 3600,
      refresh_token: expect.any(String),
      scope: '',
      token_type: 'Bearer',
    });
    const token = json.access_token as string;
    const exp = JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString()).exp as number;
    expect(exp * 1000).toBeGreaterThan(Date.now() + 3_590_000);
    expect(await apiStatus(token)).toBe(200);
    const rm = await fetch(`${sim.url}/v2/projects?containerParentId=${PROJECT}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(rm.status).not.toBe(401);
    expect(await apiStatus('made-up-token')).toBe(401);
  });

  it('refuses bad requests and assertions with STACKIT’s 400 ErrorResponse', async () => {
    const doc = sim.identity.createKey();
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({
      type: 'pkcs8',
      format: 'pem',
    });
    const cases: Array<[Record<string, string>, string, string?]> = [
      [{ grant_type: 'refresh_token', refresh_token: 'x' }, 'unsupported grant_type "refresh_token"'],
      [{ grant_type: GRANT }, 'assertion is required for the jwt-bearer grant'],
      [{ grant_type: GRANT, assertion: 'not-a-jwt' }, 'assertion is not a JWT'],
      [
        { grant_type: GRANT, assertion: assertion(doc, { header: { alg: 'HS256' } }) },
        'unsupported signing algorithm "HS256"',
      ],
      [
        { grant_type: GRANT, assertion: assertion(doc, { header: { kid: 'nope' } }) },
        'Key with kid nope was not found',
      ],
      [
        { grant_type: GRANT, assertion: assertion(doc, { privateKey: other.toString() }) },
        'assertion signature is invalid',
      ],
      [
        { grant_type: GRANT, assertion: assertion(doc, { claims: { iss: 'evil@sa.stackit.cloud' } }) },
        'claim iss does not match the key',
      ],
      [
        { grant_type: GRANT, assertion: assertion(doc, { claims: { aud: 'https://elsewhere' } }) },
        'claim aud does not match the key',
      ],
      [
        {
          grant_type: GRANT,
          assertion: assertion(doc, { claims: { exp: Math.floor(Date.now() / 1000) - 5 } }),
        },
        'assertion is expired',
      ],
      [
        {
          grant_type: GRANT,
          assertion: assertion(doc, {
            claims: { iat: Math.floor(Date.now() / 1000) + 600, exp: Math.floor(Date.now() / 1000) + 1200 },
          }),
        },
        'assertion is issued in the future',
      ],
      [
        {
          grant_type: GRANT,
          assertion: assertion(doc, { claims: { exp: Math.floor(Date.now() / 1000) + 7200 } }),
        },
        'assertion lifetime exceeds 3600 s',
      ],
      [
        { grant_type: GRANT, assertion: assertion(doc, { claims: { jti: undefined } }) },
        'claim jti is required',
      ],
    ];
    for (const [body, message] of cases) {
      const { status, json } = await exchange(body);
      expect({ status, message: json.message }).toEqual({ status: 400, message });
      expect(json).toMatchObject({
        error: 'Bad Request',
        path: '/token',
        status: 400,
        timeStamp: expect.any(String),
      });
    }
    const wrongType = await exchange({ grant_type: GRANT, assertion: assertion(doc) }, 'application/json');
    expect(wrongType.status).toBe(400);
  });

  it('refuses a deactivated key with the AuthError shape, and a deleted one as not found', async () => {
    const doc = sim.identity.createKey();
    sim.identity.setKeyActive(doc.credentials.kid, false);
    expect(await exchange({ grant_type: GRANT, assertion: assertion(doc) })).toEqual({
      status: 403,
      json: { error: { code: 403, message: 'The request could not be performed', status: 'Forbidden' } },
    });
    sim.identity.deleteKey(doc.credentials.kid);
    const { json } = await exchange({ grant_type: GRANT, assertion: assertion(doc) });
    expect(json.message).toBe(`Key with kid ${doc.credentials.kid} was not found`);
  });

  it('verifies user-provided keys by their registered public key', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const doc = sim.identity.registerKey({
      publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    });
    expect(doc.keyOrigin).toBe('USER_PROVIDED');
    expect(doc.credentials.privateKey).toBeUndefined();
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    expect(
      (await exchange({ grant_type: GRANT, assertion: assertion(doc, { privateKey: pem }) })).status,
    ).toBe(200);
  });

  it('lets issued tokens expire, be revoked, or belong to a disabled account', async () => {
    sim.identity.accessTokenTtlMs = 1_000;
    const doc = sim.identity.createKey();
    const { json } = await exchange({ grant_type: GRANT, assertion: assertion(doc) });
    expect(json.expires_in).toBe(1);
    const shortLived = json.access_token as string;
    expect(await apiStatus(shortLived)).toBe(200);
    await new Promise((r) => setTimeout(r, 1_100));
    expect(await apiStatus(shortLived)).toBe(401);
    sim.identity.accessTokenTtlMs = 3_600_000;

    const fresh = (await exchange({ grant_type: GRANT, assertion: assertion(doc) })).json
      .access_token as string;
    sim.identity.setServiceAccountEnabled(doc.credentials.sub, false);
    expect(await apiStatus(fresh)).toBe(401);
    sim.identity.setServiceAccountEnabled(doc.credentials.sub, true);
    expect(await apiStatus(fresh)).toBe(200);
    sim.identity.revokeAccessTokens();
    expect(await apiStatus(fresh)).toBe(401);
    // The static token is not an issued one: revocation leaves it alone.
    expect(await apiStatus(sim.token)).toBe(200);
  });
});
