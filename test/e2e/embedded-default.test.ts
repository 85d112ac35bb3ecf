import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/daemon/redis-server.ts';
import { waitFor } from '../support/daemon.ts';

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;
let cwd: string;

beforeAll(async () => {
  cwd = await mkdtemp(join(tmpdir(), 'auditlog-embedded-'));
});
afterAll(async () => {
  await rm(cwd, { recursive: true, force: true });
});

/** The environment a user has: no REDIS_URL, nothing configured. */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  delete env.REDIS_URL;
  return env;
}

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [MAIN, ...args], {
    cwd,
    env: userEnv(),
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('the embedded default (README command one)', () => {
  it('runs without a config: simulator → embedded Redis → ./data/events.ndjson, serves metrics, stops cleanly', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [MAIN, 'run'], {
      cwd,
      env: userEnv({ METRICS_PORT: String(port) }),
      stdio: 'pipe',
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    const events = join(cwd, 'data', 'events.ndjson');
    // Every one of the three simulated projects polled (the state test below relies on it).
    const scopesWritten = (): number =>
      new Set(
        readFileSync(events, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((line) => (JSON.parse(line) as { scope: { id: string } }).scope.id),
      ).size;
    await waitFor(
      'events of every project in ./data/events.ndjson',
      () => existsSync(events) && scopesWritten() === 3,
      30_000,
    );

    const lines = readFileSync(events, 'utf8').trim().split('\n');
    const first = JSON.parse(lines[0] as string);
    expect(first).toMatchObject({ provider: 'stackit', scope: { kind: 'project' } });
    expect(typeof first.raw.id).toBe('string');

    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(Number(/auditlog_events_committed_total\{[^}]*\} (\d+)/.exec(metrics)?.[1])).toBeGreaterThan(0);
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);

    const redisPid = Number(readFileSync(join(cwd, 'data', 'redis', 'redis.pid'), 'utf8'));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stderr).toContain('shutdown complete');
    expect(stderr).not.toContain('Unhandled');
    // The embedded redis-server was stopped with the daemon.
    await waitFor(
      'the embedded redis-server to exit',
      () => {
        try {
          process.kill(redisPid, 0);
          return false;
        } catch {
          return true;
        }
      },
      10_000,
    );
  }, 300_000);

  it('state list/show/reset work on what that run left in ./data', () => {
    const list = cli('state', 'list');
    expect(list.status).toBe(0);
    const keys = list.stdout
      .trim()
      .split('\n')
      .map((l) => l.split(' ')[0] as string);
    expect(keys).toHaveLength(3);
    const id = (keys[0] as string).split(':')[2] as string;

    const shown = cli('state', 'show', id, '--json');
    expect(shown.status).toBe(0);
    const view = JSON.parse(shown.stdout);
    expect(view.scope).toBe(keys[0]);
    expect(view.committedEvents).toBeGreaterThan(0);
    expect(view.lastPoll.outcome).toBe('completed');

    // Without a terminal to ask on, a reset needs --yes.
    const unconfirmed = cli('state', 'reset', id);
    expect(unconfirmed.status).toBe(1);
    expect(unconfirmed.stderr).toContain('needs confirmation: pass --yes');
    expect(JSON.parse(cli('state', 'show', id, '--json').stdout).checkpoint).not.toBeNull();
    expect(cli('state', 'reset', id, '--yes').stdout).toContain(`reset ${keys[0]}`);
    expect(JSON.parse(cli('state', 'show', id, '--json').stdout).checkpoint).toBeNull();

    const unknown = cli('state', 'show', 'no-such-scope');
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toContain('no scope "no-such-scope"');
  }, 300_000);
});
