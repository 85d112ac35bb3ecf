import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const root = new URL('../..', import.meta.url).pathname;
const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version as string;

/** scripts/build-image.sh with these arguments; --dry-run prints the command instead of running it. */
function buildImage(args: string[], env: NodeJS.ProcessEnv = {}) {
  const result = spawnSync(join(root, 'scripts/build-image.sh'), args, {
    cwd: root,
    env: { ...process.env, IMAGE: '', ...env },
    encoding: 'utf8',
  });
  return { status: result.status, stdout: result.stdout.trim(), stderr: result.stderr };
}

describe('the image build and release (no container engine here: the commands and files are checked)', () => {
  it('build-image.sh fills the OCI labels from package.json and git and tags the version and revision', () => {
    const head = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8' }).stdout.trim();
    const { status, stdout } = buildImage(['--dry-run']);
    expect(status).toBe(0);
    expect(stdout).toMatch(/^docker build --file Dockerfile /);
    expect(stdout).toContain(`--build-arg VERSION=${version} `);
    expect(stdout).toMatch(new RegExp(`--build-arg REVISION=${head}(-dirty)? `));
    expect(stdout).toContain(`--tag ghcr.io/auditlog-shipper/auditlog-shipper:${version} `);
    expect(stdout).toMatch(
      new RegExp(`--tag ghcr\\.io/auditlog-shipper/auditlog-shipper:${head.slice(0, 12)}(-dirty)? \\.$`),
    );
  });

  it('build-image.sh pushes multi-platform images with buildx, with the tags and source given', () => {
    const { status, stdout } = buildImage(
      [
        '--dry-run',
        '--push',
        '--platform',
        'linux/amd64,linux/arm64',
        '--image',
        'registry.example.com/a/b',
        '--tag',
        '1.2.3',
      ],
      { CONTAINER_CLI: 'docker' },
    );
    expect(status).toBe(0);
    expect(stdout).toMatch(/^docker buildx build --push --platform linux\/amd64\\?,linux\/arm64 /);
    expect(stdout).toMatch(/--tag registry\.example\.com\/a\/b:1\.2\.3 \.$/);
    expect(stdout.match(/--tag /g)).toHaveLength(1);
    expect(buildImage(['--dry-run', '--source', 'https://example.com/x']).stdout).toContain(
      '--build-arg SOURCE=https://example.com/x',
    );
    expect(buildImage(['--dry-run'], { CONTAINER_CLI: 'podman' }).stdout).toMatch(/^podman build /);
  });

  it('build-image.sh refuses unknown arguments and a multi-platform build it could not keep', () => {
    const unknown = buildImage(['--bogus']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain('unknown argument: --bogus');
    expect(unknown.stderr).toContain('--dry-run');
    const missing = buildImage(['--tag']);
    expect(missing.status).toBe(2);
    const platform = buildImage(['--platform', 'linux/arm64', '--dry-run']);
    expect(platform.status).toBe(2);
    expect(platform.stderr).toContain('only --push can keep');
  });

  it('the Dockerfile labels the image and installs exactly the lock file (npm ci)', () => {
    const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
    for (const [label, arg] of [
      ['version', 'VERSION'],
      ['revision', 'REVISION'],
      ['source', 'SOURCE'],
    ]) {
      expect(dockerfile).toMatch(new RegExp(`^ARG ${arg}=`, 'm'));
      expect(dockerfile).toContain(`org.opencontainers.image.${label}="\${${arg}}"`);
    }
    expect(dockerfile).toContain('AUDITLOG_REVISION="${REVISION}"');
    const build = readFileSync(join(root, 'scripts/build-production.sh'), 'utf8');
    const installs = build.split('\n').filter((line) => /^npm (ci|install)\b/.test(line));
    expect(installs).toEqual([
      'npm ci --no-audit --no-fund --ignore-scripts',
      'npm ci --omit=dev --no-audit --no-fund --ignore-scripts',
    ]);
    expect(readFileSync(join(root, 'scripts/env.sh'), 'utf8')).toMatch(/^ {2}npm ci --no-audit --no-fund$/m);
  });

  it('the release workflow builds and pushes the image for version tags, after the tests', () => {
    const workflow = parse(readFileSync(join(root, '.github/workflows/release.yml'), 'utf8'));
    expect(workflow.on.push.tags).toEqual(['v*.*.*']);
    expect(workflow.permissions).toEqual({ contents: 'read', packages: 'write' });
    const steps: Array<{ name?: string; uses?: string; run?: string }> = workflow.jobs.image.steps;
    const index = (predicate: (s: (typeof steps)[number]) => boolean) => steps.findIndex(predicate);
    const test = index((s) => s.run?.includes('scripts/test.sh') ?? false);
    const push = index((s) => s.run?.includes('scripts/build-image.sh --push') ?? false);
    const login = index((s) => s.uses?.startsWith('docker/login-action@') ?? false);
    expect(test).toBeGreaterThanOrEqual(0);
    expect(push).toBeGreaterThan(test);
    expect(push).toBeGreaterThan(login);
    expect(login).toBeGreaterThan(0);
    for (const step of steps) if (step.uses) expect(step.uses).toMatch(/@v\d+$/);
  });
});
