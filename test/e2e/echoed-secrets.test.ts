/**
 * Issue 9 §8: a provider, a proxy or a sink that echoes our credential in an error body
 * (`{"detail":"token … is read-only"}`) must not get it into the logs, Redis (scope status, BullMQ's
 * failedReason and stacktrace, dead-letter reasons) or CLI output. The echoes come from the fault proxy
 * in front of the simulator (STACKIT with the key flow, so the echoed value is an access token obtained
 * at run time, and cloudscale with a static token) and from the Loki test server (basic auth).
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { startCli, waitFor } from '../support/daemon.ts';
import { FaultProxy } from '../support/fault-proxy.ts';
import { LokiTestServer } from '../support/loki-server.ts';
import { type Scenario, startScenario } from '../support/scenario.ts';

let scenario: Scenario | undefined;
let proxy: FaultProxy | undefined;
let loki: LokiTestServer | undefined;
afterEach(async () => {
  await scenario?.close();
  await proxy?.stop();
  await loki?.stop();
  scenario = undefined;
  proxy = undefined;
  loki = undefined;
});

/** Every key and every value in Redis, as one text (SCAN over everything, each type read whole). */
async function dumpRedis(redis: Redis): Promise<string> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      out.push(key);
      const type = await redis.type(key);
      if (type === 'string') out.push(String(await redis.get(key)));
      else if (type === 'hash') out.push(JSON.stringify(await redis.hgetall(key)));
      else if (type === 'list') out.push(JSON.stringify(await redis.lrange(key, 0, -1)));
      else if (type === 'set') out.push(JSON.stringify(await redis.smembers(key)));
      else if (type === 'zset') out.push(JSON.stringify(await redis.zrange(key, '0', '-1', 'WITHSCORES')));
      else if (type === 'stream') out.push(JSON.stringify(await redis.xrange(key, '-', '+')));
      else out.push(`<${type}>`);
    }
  } while (cursor !== '0');
  return out.join('\n');
}

async function cli(args: string[], env: Record<string, string>): Promise<string> {
  const child = startCli(args, env);
  await child.exited;
  const { stdout, stderr } = child.output();
  return `${stdout}\n${stderr}`;
}

describe('credentials echoed back (issue 9 §8)', () => {
  it('appear in no log line, no Redis key or value, and no CLI output', async () => {
    const csToken = `cs-${randomBytes(16).toString('hex')}`;
    const lokiPassword = `lk-${randomBytes(16).toString('hex')}`;
    scenario = await startScenario({
      projects: 1,
      eventsPerMinute: 120,
      historyMs: 60_000,
      sim: {
        cloudscale: {
          projects: [{ name: 'shop', token: csToken, eventsPerMinute: 120 }],
          trafficStartMs: Date.now() - 60_000,
        },
      },
    });
    const s = scenario;
    const key = await s.serviceAccountKey();

    // Each provider API echoes the bearer token: first in a 503 (retried), then events flow until the
    // test turns on `refuse`, from when on every request gets a 403 echoing it.
    let refuse = false;
    const bearers = new Set<string>();
    const echoed = { stackit: 0, cloudscale: 0 };
    proxy = new FaultProxy(s.sim.url);
    await proxy.start();
    proxy.misbehave((req) => {
      const auth = req.headers.authorization;
      const api = req.url.startsWith('/v2/')
        ? 'stackit'
        : req.url.startsWith('/v1/')
          ? 'cloudscale'
          : undefined;
      if (auth === undefined || api === undefined) return undefined;
      if (echoed[api] > 0 && !refuse) return undefined;
      const token = auth.replace(/^Bearer /, '');
      bearers.add(token);
      echoed[api]++;
      const status = echoed[api] === 1 ? 503 : 403;
      const text = `token ${token} is read-only (you sent "${auth}")`;
      return { type: 'reply', status, body: JSON.stringify({ detail: text, message: text }) };
    });

    // Loki behind basic auth echoes the header and the password: a 401, a 500, then 400s per event.
    const basic = `Basic ${Buffer.from(`shipper:${lokiPassword}`).toString('base64')}`;
    loki = new LokiTestServer({ authorization: basic });
    await loki.start();
    const lokiEcho = `authorization "${basic}" (password ${lokiPassword}) refused`;
    loki.queue(
      { status: 401, body: lokiEcho },
      { status: 500, body: lokiEcho },
      ...Array.from({ length: 40 }, () => ({ status: 400, body: lokiEcho })),
    );

    const config = await s.config({
      auth: key.auth,
      retry: { attempts: 3, initialBackoff: '50ms', maxBackoff: '200ms' },
      providerExtra: `  - name: cs
    type: cloudscale
    apiUrl: "\${SIM_URL}"
    allowInsecureHttp: true
    lookback: 10m
    requestTimeout: 5s
    retry: { attempts: 3, initialBackoff: 50ms, maxBackoff: 200ms }`,
      scopesText: `  - { provider: sim, project: ${s.projects[0]} }
  - { provider: cs, project: shop, auth: { token: "\${CS_TOKEN}" } }`,
      extraSinks: `  - name: loki
    type: loki
    url: "\${LOKI_URL}"
    allowInsecureHttp: true
    tenant: audit
    auth: { username: shipper, password: "\${LOKI_PASSWORD}" }`,
    });
    const env = { SIM_URL: proxy.url, CS_TOKEN: csToken, LOKI_URL: loki.url, LOKI_PASSWORD: lokiPassword };
    const daemon = s.daemon(config, env);
    const redis = s.redis.client;

    await waitFor(
      'an event dead-lettered by Loki',
      async () => (await redis.xlen('{auditlog}:dlq:loki')) > 0,
      90_000,
    );
    await waitFor('Loki stores events again', () => loki !== undefined && loki.entries().length > 0, 90_000);
    refuse = true;
    const failedInARow = async (scope: string) =>
      Number(await redis.hget(`{auditlog}:scope:${scope}:status`, 'consecutiveFailures'));
    await waitFor(
      'both scopes failing with the echo',
      async () =>
        (await failedInARow(`stackit:project:${s.projects[0]}`)) > 0 &&
        (await failedInARow('cloudscale:project:shop')) > 0,
      90_000,
    );
    expect(await redis.zcard('{auditlog}:poll:failed')).toBeGreaterThanOrEqual(2); // BullMQ kept them

    const secrets = [...bearers, csToken, lokiPassword, basic.slice('Basic '.length)];
    expect(bearers.size).toBeGreaterThanOrEqual(2); // a STACKIT access token and the cloudscale token
    const expectClean = (what: string, text: string) => {
      for (const secret of secrets) {
        if (text.includes(secret))
          throw new Error(
            `${what} contains a secret: …${text.slice(Math.max(0, text.indexOf(secret) - 120), text.indexOf(secret) + 40)}…`,
          );
      }
    };

    // CLI output, without the config (nothing but what Redis holds) and with it.
    const redisEnv = { REDIS_URL: s.redis.url };
    const scopes = [`stackit:project:${s.projects[0]}`, 'cloudscale:project:shop'];
    const outputs: string[] = [];
    for (const scope of scopes) {
      outputs.push(await cli(['state', 'show', scope], redisEnv));
      outputs.push(await cli(['state', 'show', scope, '--json'], redisEnv));
      outputs.push(
        await cli(['state', 'show', scope, '-c', config], { ...redisEnv, ...env, SIM_TOKEN: s.sim.token }),
      );
    }
    outputs.push(await cli(['status'], redisEnv));
    outputs.push(await cli(['dlq', 'show', 'loki'], redisEnv));
    for (const output of outputs) expectClean('CLI output', output);
    // The echoes did arrive, masked: the scope status names provider, status and the masked detail.
    expect(outputs[0]).toMatch(/HTTP 403 .*token \[(redacted|jwt)\] is read-only/);
    expect(outputs[3]).toMatch(/HTTP 403 .*token \[(redacted|jwt)\] is read-only/);

    expectClean('Redis', await dumpRedis(redis));

    daemon.kill('SIGTERM');
    await daemon.exited;
    const log = (await daemon.logLines()).map((line) => JSON.stringify(line)).join('\n');
    expectClean('the daemon log', log);
    expect(log).toMatch(/stackit .*HTTP 503.*token \[(redacted|jwt)\] is read-only/);
    expect(log).toMatch(/cloudscale provider \\"cs\\".*HTTP 403.*token \[(redacted|jwt)\] is read-only/);
    expect(log).toMatch(/loki sink \\"loki\\": HTTP 401: not authorized.*\[redacted\]/);
    expect(await daemon.strayLines()).toEqual([]);
  }, 300_000);
});
