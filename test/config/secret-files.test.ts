/**
 * Issue 9 §10: secret files are read with limits. `/dev/zero` once grew the process to 22 GB, a FIFO
 * hung `validate` forever (and after a reload froze the event loop). The dangerous cases run in a child
 * process with a deadline, so a regression fails this test instead of hanging the test worker.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { readBoundedFile, SECRET_FILE_MAX_BYTES } from '../../src/config/bounded-file.ts';
import { BASE_ENV, loadError, PROJECT_A, yaml } from './helpers.ts';

const run = promisify(execFile);
const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'auditlog-secret-files-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const withTokenFile = (path: string) => yaml`
  providers:
    - name: prod
      type: stackit
      auth:
        tokenFile: ${path}
  scopes:
    - provider: prod
      project: ${PROJECT_A}
  sinks:
    - name: out
      type: stdout
`;

/** `validate` in a child process; a hang is killed after 30 s and fails the test. */
async function validate(tokenFile: string): Promise<{ code: number; stderr: string }> {
  const config = join(dir, `config-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(config, withTokenFile(tokenFile));
  try {
    await run(process.execPath, [MAIN, 'validate', '-c', config], {
      env: { ...process.env, ...BASE_ENV },
      timeout: 30_000,
      killSignal: 'SIGKILL',
      maxBuffer: 1024 * 1024,
    });
    return { code: 0, stderr: '' };
  } catch (error) {
    const failed = error as { code?: number; killed?: boolean; stderr?: string };
    if (failed.killed) throw new Error(`validate did not finish for tokenFile ${tokenFile}`);
    return { code: failed.code ?? -1, stderr: failed.stderr ?? '' };
  }
}

describe('secret files (issue 9 §10)', () => {
  it('refuses /dev/zero as a character device, naming the config path and the file', async () => {
    const { code, stderr } = await validate('/dev/zero');
    expect(code).toBe(1);
    expect(stderr).toContain(
      'providers[0].auth.tokenFile (line 5, column 18): file /dev/zero is a character device, not a regular file',
    );
  });

  it('refuses a FIFO without waiting for a writer', async () => {
    const fifo = join(dir, 'token.fifo');
    execFileSync('mkfifo', [fifo]);
    const { code, stderr } = await validate(fifo);
    expect(code).toBe(1);
    expect(stderr).toContain(
      `providers[0].auth.tokenFile (line 5, column 18): file ${fifo} is a FIFO (named pipe), not a regular file`,
    );
  });

  it('refuses a directory', () => {
    const folder = join(dir, 'token.d');
    mkdirSync(folder);
    expect(loadError(withTokenFile(folder)).issues).toEqual([
      {
        path: 'providers[0].auth.tokenFile',
        line: 5,
        column: 18,
        message: `file ${folder} is a directory, not a regular file`,
      },
    ]);
  });

  it('refuses a huge file without reading it (a sparse 4 GiB file)', () => {
    const huge = join(dir, 'huge');
    writeFileSync(huge, '');
    truncateSync(huge, 4 * 1024 ** 3);
    expect(loadError(withTokenFile(huge)).issues).toEqual([
      {
        path: 'providers[0].auth.tokenFile',
        line: 5,
        column: 18,
        message: `file ${huge} is larger than 64 KiB (${4 * 1024 ** 3} bytes), refused: not a credential file`,
      },
    ]);
  });

  it('reads a file of exactly the cap, refuses one byte more', () => {
    const atCap = join(dir, 'at-cap');
    writeFileSync(atCap, 'x'.repeat(SECRET_FILE_MAX_BYTES));
    expect(readBoundedFile(atCap, SECRET_FILE_MAX_BYTES).length).toBe(SECRET_FILE_MAX_BYTES);
    const over = join(dir, 'over-cap');
    writeFileSync(over, 'x'.repeat(SECRET_FILE_MAX_BYTES + 1));
    expect(() => readBoundedFile(over, SECRET_FILE_MAX_BYTES)).toThrow(/larger than 64 KiB/);
  });
});
