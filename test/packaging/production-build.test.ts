import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EXAMPLE_ENV } from '../config/helpers.ts';

const root = new URL('../..', import.meta.url).pathname;
let out: string | undefined;
afterAll(async () => {
  if (out) await rm(out, { recursive: true, force: true });
});

function run(cmd: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }) {
  const result = spawnSync(cmd, args, { ...options, encoding: 'utf8', timeout: 240_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('the production tree the Dockerfile builds (built here without Docker)', () => {
  it('uses the same build script as the Dockerfile', () => {
    const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^RUN scripts\/build-production\.sh \/out$/m);
    expect(dockerfile).toMatch(/^COPY --from=build \/out \/app$/m);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^HEALTHCHECK /m);
    expect(dockerfile).toMatch(
      /^ENTRYPOINT \["\/usr\/bin\/tini", "--", "node", "\/app\/dist\/cli\/main\.js"\]$/m,
    );
  });

  it('has production dependencies only, runs --version and validates the example config', async () => {
    const work = await mkdtemp(join(tmpdir(), 'auditlog-prod-'));
    out = work;
    // The Docker build context: exactly what the Dockerfile's build stage copies.
    const context = join(work, 'context');
    for (const path of [
      'package.json',
      'package-lock.json',
      'tsconfig.json',
      'tsconfig.build.json',
      'scripts/build-production.sh',
      'src',
    ]) {
      await cp(join(root, path), join(context, path), { recursive: true });
    }
    const tree = join(work, 'app');
    const build = run('sh', ['scripts/build-production.sh', tree], { cwd: context });
    expect(build.status, build.stderr).toBe(0);

    for (const dev of ['typescript', 'vitest', '@biomejs/biome']) {
      expect(existsSync(join(tree, 'node_modules', dev)), `${dev} must not ship`).toBe(false);
    }
    expect(existsSync(join(tree, 'node_modules', 'bullmq'))).toBe(true);
    expect(existsSync(join(tree, 'src'))).toBe(false);

    // With the image's NODE_OPTIONS: Node refuses to start on a flag it does not allow there.
    const nodeOptions = /NODE_OPTIONS="([^"]*)"/.exec(readFileSync(join(root, 'Dockerfile'), 'utf8'))?.[1];
    expect(nodeOptions).toMatch(/--max-old-space-size=\d+/);
    const version = run(process.execPath, ['dist/cli/main.js', '--version'], {
      cwd: tree,
      env: { ...process.env, NODE_OPTIONS: nodeOptions },
    });
    expect(version.status, version.stderr).toBe(0);
    expect(version.stdout.trim()).toBe(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version);

    const validate = run(
      process.execPath,
      ['dist/cli/main.js', 'validate', '-c', join(root, 'config/example.yaml')],
      {
        cwd: tree,
        env: { ...process.env, ...EXAMPLE_ENV },
      },
    );
    expect(validate.status, validate.stderr).toBe(0);
    expect(validate.stdout).toContain('✓');
  }, 300_000);
});
