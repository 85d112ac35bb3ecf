import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;

export interface ScenarioConfig {
  readonly dir: string;
  readonly redisUrl: string;
  readonly simUrl: string;
  readonly projects: readonly string[];
  readonly sinkPath?: string;
  readonly interval?: string;
  readonly overlap?: string;
  readonly settleLag?: string;
  readonly lookback?: string;
  readonly leaseTtl?: string;
  readonly retry?: { attempts: number; initialBackoff: string; maxBackoff: string };
  readonly extraDaemon?: string;
  /** More `sinks:` entries (YAML list items, indented by two spaces). */
  readonly extraSinks?: string;
  /** The provider's auth block (default: the static token from SIM_TOKEN). */
  readonly auth?: string;
  /** The provider's request budget (default: high enough never to pace the test). */
  readonly rateLimit?: { requestsPerMinute: number; burst: number };
  /** More provider settings, as YAML lines indented by four spaces. */
  readonly providerExtra?: string;
  /** The scopes list (YAML lines of `  - …` entries); default: one project scope per id in `projects`. */
  readonly scopesText?: string;
}

/** A config file for a test scenario: fast intervals, the simulator as provider, one file sink. */
export async function writeScenarioConfig(c: ScenarioConfig): Promise<string> {
  const retry = c.retry ?? { attempts: 4, initialBackoff: '50ms', maxBackoff: '400ms' };
  const rate = c.rateLimit ?? { requestsPerMinute: 1_000_000, burst: 10_000 };
  const text = `daemon:
  dataDir: ${c.dir}
  redis:
    url: ${c.redisUrl}
  log: { level: debug }
  metrics: { port: 0 }
  poll: { concurrency: 4, leaseTtl: ${c.leaseTtl ?? '5s'}, interval: ${c.interval ?? '1s'} }
  delivery: { batchSize: 200, retryInitial: 50ms, retryMax: 1s, consumerTimeout: 1500ms }
  shutdownTimeout: 10s
${c.extraDaemon ?? ''}
providers:
  - name: sim
    type: stackit
    auditLogUrl: "\${SIM_URL}"
    resourceManagerUrl: "\${SIM_URL}"
    allowInsecureHttp: true
    auth: ${c.auth ?? '{ token: "${SIM_TOKEN}" }'}
    rateLimit: { requestsPerMinute: ${rate.requestsPerMinute}, burst: ${rate.burst} }
    overlap: ${c.overlap ?? '20s'}
    settleLag: ${c.settleLag ?? '1s'}
    lookback: ${c.lookback ?? '10m'}
    requestTimeout: 5s
    retry: { attempts: ${retry.attempts}, initialBackoff: ${retry.initialBackoff}, maxBackoff: ${retry.maxBackoff} }
${c.providerExtra ?? ''}
scopes:
${c.scopesText ?? c.projects.map((id) => `  - { provider: sim, project: ${id} }`).join('\n')}
sinks:
  - name: archive
    type: file
    path: ${c.sinkPath ?? join(c.dir, 'events.ndjson')}
${c.extraSinks ?? ''}`;
  const path = join(c.dir, `config-${Math.random().toString(36).slice(2, 8)}.yaml`);
  await writeFile(path, text);
  return path;
}

export interface DaemonProcess {
  readonly child: ChildProcess;
  readonly logPath: string;
  /** Resolves with the exit code (or the signal name). */
  readonly exited: Promise<number | string>;
  kill(signal: NodeJS.Signals): void;
  logLines(): Promise<Array<Record<string, unknown>>>;
  /** Output lines that are not JSON log records (stray console output, stack traces). */
  strayLines(): Promise<string[]>;
}

let counter = 0;

/** `auditlog-shipper run -c <config>` as a child process, its JSON logs kept in a file. */
export function startDaemon(configPath: string, env: Record<string, string>, dir: string): DaemonProcess {
  const logPath = join(dir, `daemon-${++counter}.log`);
  const log = createWriteStream(logPath);
  const child = spawn(process.execPath, [MAIN, 'run', '-c', configPath], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  const exited = new Promise<number | string>((resolve) => {
    child.on('exit', (code, signal) => {
      setTimeout(() => log.end(), 50);
      resolve(code ?? signal ?? 'unknown');
    });
  });
  return {
    child,
    logPath,
    exited,
    kill: (signal) => child.kill(signal),
    async strayLines() {
      const text = await readFile(logPath, 'utf8').catch(() => '');
      return text.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('{'));
    },
    async logLines() {
      const text = await readFile(logPath, 'utf8').catch(() => '');
      return text
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => {
          try {
            return JSON.parse(line) as Record<string, unknown>;
          } catch {
            return { unparsable: line };
          }
        });
    },
  };
}

export interface CliProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<number | string>;
  /** Standard output and error so far. */
  output(): { stdout: string; stderr: string };
}

/** `auditlog-shipper <args…>` as a child process (no TTY: progress comes as lines). */
export function startCli(args: readonly string[], env: Record<string, string>): CliProcess {
  const child = spawn(process.execPath, [MAIN, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | string>((resolve) => {
    child.on('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
  });
  return { child, exited, output: () => ({ stdout, stderr }) };
}

/** A timeout only detects a hang: on a loaded machine none is shorter than this. */
const MIN_WAIT_MS = 60_000;

/**
 * Waits until `check` holds. `timeoutMs` is raised to at least a minute: the suite must pass beside a CPU
 * hog on every core (scripts/test-under-load.sh), where what takes a second alone can take many.
 */
export async function waitFor(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs: number,
  intervalMs = 200,
): Promise<void> {
  timeoutMs = Math.max(timeoutMs, MIN_WAIT_MS);
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Whether a process with this pid exists (signal 0 checks without signalling). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
