import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Command } from 'commander';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { register, validateConfig } from '../../src/cli/commands/validate.ts';
import { BASE_ENV, HARNESS, MINIMAL, TOKEN } from './helpers.ts';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'auditlog-validate-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const good = join(dir, 'good.yaml');
writeFileSync(good, MINIMAL);
const bad = join(dir, 'bad.yaml');
writeFileSync(
  bad,
  MINIMAL.replace('type: stdout', 'type: stdout\n    colour: red').replace('provider: prod', 'provider: prd'),
);

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: { out: (t: string) => void out.push(t), err: (t: string) => void err.push(t), env: BASE_ENV },
    get: () => ({ out: out.join(''), err: err.join('') }),
  };
}

describe('validateConfig', () => {
  it('prints a summary and the warnings for a valid config, exit code 0', () => {
    const { io, get } = capture();
    expect(validateConfig({ config: good }, io)).toBe(0);
    expect(get().out).toBe(`✓ ${good}: 1 provider, 1 scope, 1 sink\n`);
    expect(get().err).toMatch(/^ {2}warning: daemon\.redis\.url is empty/);
  });

  it('prints the report to stderr for a bad config, exit code 1', () => {
    const { io, get } = capture();
    expect(validateConfig({ config: bad }, io)).toBe(1);
    expect(get().out).toBe('');
    expect(get().err).toBe(
      [
        `✗ ${bad}: 2 problems`,
        '  scopes[0].provider (line 6, column 15): "prd" is not a defined provider (did you mean "prod"?); defined: prod',
        '  sinks[0].colour (line 11, column 5): unknown key "colour"',
        '',
      ].join('\n'),
    );
  });

  it('prints machine-readable JSON with --json', () => {
    const ok = capture();
    expect(validateConfig({ config: good, json: true }, ok.io)).toBe(0);
    expect(JSON.parse(ok.get().out)).toEqual({
      ok: true,
      origin: good,
      providers: 1,
      scopes: 1,
      sinks: 1,
      warnings: [expect.stringMatching(/^daemon\.redis\.url is empty/)],
    });
    const failed = capture();
    expect(validateConfig({ config: bad, json: true }, failed.io)).toBe(1);
    expect(JSON.parse(failed.get().out)).toEqual({
      ok: false,
      origin: bad,
      issues: [
        { path: 'scopes[0].provider', line: 6, column: 15, message: expect.stringContaining('"prd"') },
        { path: 'sinks[0].colour', line: 11, column: 5, message: 'unknown key "colour"' },
      ],
    });
  });
});

describe('validate command', () => {
  afterEach(() => {
    vi.restoreAllMocks();
    vi.unstubAllEnvs();
    process.exitCode = undefined;
  });

  it('is registered on a program and sets the exit code', async () => {
    vi.stubEnv('STACKIT_TOKEN', TOKEN);
    const written: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
      written.push(String(chunk));
      return true;
    });
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      written.push(String(chunk));
      return true;
    });
    const program = new Command('auditlog-shipper').exitOverride();
    register(program);
    await program.parseAsync(['validate', '--config', bad], { from: 'user' });
    expect(process.exitCode).toBe(1);
    expect(written.join('')).toContain(`✗ ${bad}: 2 problems`);
  });

  it('requires --config', async () => {
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const program = new Command('auditlog-shipper').exitOverride();
    register(program);
    await expect(program.parseAsync(['validate'], { from: 'user' })).rejects.toThrow(/--config <file>/);
  });

  it('runs in a child process: exit 0 on a valid config, 1 on a bad one', async () => {
    const env = { ...process.env, ...BASE_ENV, REDIS_URL: 'redis://redis:6379' };
    const ok = await run(process.execPath, [...HARNESS, 'validate', '-c', good], { env });
    expect(ok.stdout).toBe(`✓ ${good}: 1 provider, 1 scope, 1 sink\n`);
    expect(ok.stderr).toBe('');
    const failed = await run(process.execPath, [...HARNESS, 'validate', '-c', bad], { env }).catch(
      (error: { code: number; stdout: string; stderr: string }) => error,
    );
    expect(failed).toMatchObject({ code: 1, stdout: '' });
    expect((failed as { stderr: string }).stderr).toContain(`${bad}: 2 problems`);
  });

  // main.ts imports every command; until they all exist it cannot load.
  const mainLoads = ['run', 'simulate', 'state'].every((c) => existsSync(`src/cli/commands/${c}.ts`));
  it.skipIf(!mainLoads)('runs as `node src/cli/main.ts validate -c <file>`', async () => {
    const env = { ...process.env, ...BASE_ENV, REDIS_URL: 'redis://redis:6379' };
    const ok = await run(process.execPath, ['src/cli/main.ts', 'validate', '-c', good], { env });
    expect(ok.stdout).toBe(`✓ ${good}: 1 provider, 1 scope, 1 sink\n`);
    const failed = await run(process.execPath, ['src/cli/main.ts', 'validate', '-c', bad], { env }).catch(
      (error: { code: number; stderr: string }) => error,
    );
    expect(failed).toMatchObject({ code: 1 });
    expect((failed as { stderr: string }).stderr).toContain(`${bad}: 2 problems`);
  });
});
