import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../src/daemon/redis-server.ts';

const root = new URL('../..', import.meta.url).pathname;
const SYSTEM_NODE = '/usr/bin/node';

let started: ChildProcess | undefined;
let clone: string | undefined;
afterEach(() => {
  if (started?.exitCode === null) started.kill('SIGKILL');
  started = undefined;
  if (clone) rmSync(clone, { recursive: true, force: true });
  clone = undefined;
});

// The launcher runs scripts/env.sh first (Node 24 via npx, the dependency check): seconds, more under load.
describe("a newcomer's shell", { timeout: 150_000 }, () => {
  it('bin/auditlog-shipper runs the CLI with Node 24 even when an older system Node comes first on PATH', () => {
    // The system Node (20 on Debian bookworm) first, as in a fresh shell; the launcher finds Node 24.
    const path = existsSync(SYSTEM_NODE) ? `${dirname(SYSTEM_NODE)}:${process.env.PATH}` : process.env.PATH;
    const result = spawnSync(join(root, 'bin/auditlog-shipper'), ['--version'], {
      cwd: tmpdir(),
      env: { ...process.env, PATH: path },
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(result.status, result.stderr).toBe(0);
    const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version as string;
    expect(result.stdout.trim()).toBe(version);
  });

  it("the launcher resolves config paths from the caller's directory", () => {
    clone = mkdtempSync(join(tmpdir(), 'launcher-'));
    writeFileSync(
      join(clone, 'shipper.yaml'),
      'providers:\n  - name: s\n    type: stackit\n    auth: { token: "${T}" }\nscopes:\n  - provider: s\n' +
        '    project: 0b1f3c2e-1234-4abc-8def-0123456789ab\nsinks:\n  - name: o\n    type: stdout\n',
    );
    const result = spawnSync(join(root, 'bin/auditlog-shipper'), ['validate', '-c', 'shipper.yaml'], {
      cwd: clone,
      env: { ...process.env, T: 'token' },
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(result.status, `${result.stdout}${result.stderr}`).toBe(0);
  });

  it('every link in README.md points at a file inside the repository', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const links = [...readme.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1] as string);
    expect(links.length).toBeGreaterThan(5);
    const outside = links.filter((link) => {
      if (/^[a-z]+:/i.test(link)) return true;
      const target = resolve(root, link.split('#')[0] as string);
      return relative(root, target).startsWith('..') || !existsSync(target);
    });
    expect(outside).toEqual([]);
    expect(readme).not.toMatch(/\.\.\/shared\//);
  });

  it('the first run of scripts/start.sh leaves a fresh clone clean (git status)', async () => {
    clone = mkdtempSync(join(tmpdir(), 'start-clean-'));
    const git = (...args: string[]) =>
      spawnSync('git', args, { cwd: clone, encoding: 'utf8' }) as { status: number; stdout: string };
    expect(spawnSync('git', ['clone', '-q', '--no-hardlinks', root, clone]).status).toBe(0);
    // This checkout's dependencies stand in for `npm ci` (minutes, and the network): the symlink is
    // excluded like the node_modules/ directory it replaces, and the lock is older than it.
    symlinkSync(join(root, 'node_modules'), join(clone, 'node_modules'));
    spawnSync('sh', ['-c', 'echo /node_modules >> .git/info/exclude'], { cwd: clone });
    utimesSync(join(clone, 'package-lock.json'), new Date(0), new Date(0));

    const metricsPort = await freePort();
    // Its own metrics port: other tests (or a developer's start.sh) may hold the default 9464.
    started = spawn('bash', ['scripts/start.sh'], {
      cwd: clone,
      env: { ...process.env, METRICS_PORT: String(metricsPort) },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    started.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const exited = new Promise<number | null>((done) => started?.on('exit', (code) => done(code)));
    // Running for real: events written, and ready (its signal handlers are installed by then, so the
    // SIGINT below is a clean shutdown, not a kill during start).
    const events = join(clone, 'data/events.ndjson');
    await expect
      .poll(
        async () => {
          if (!existsSync(events) || readFileSync(events, 'utf8').length === 0) return false;
          const ready = await fetch(`http://127.0.0.1:${metricsPort}/readyz`).catch(() => undefined);
          return ready?.status === 200;
        },
        { timeout: 90_000, interval: 500 },
      )
      .toBe(true);
    started.kill('SIGINT');
    expect(await exited, stderr.slice(-2000)).toBe(0);
    expect(git('status', '--porcelain', '--untracked-files=all').stdout).toBe('');
  });
});
