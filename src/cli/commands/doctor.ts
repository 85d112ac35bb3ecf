import type { Command } from 'commander';
import { pino } from 'pino';
import { parseDuration } from '../../config/duration.ts';
import { loadConfig } from '../../config/load.ts';
import type { ShipperConfig } from '../../config/types.ts';
import { type CheckStep, fail, skip } from '../../http/check.ts';
import { sinkModules } from '../../sinks/registry.ts';
import { sourceModules } from '../../sources/registry.ts';
import type { PollScope } from '../../sources/source.ts';
import { failCommand, writeOut } from '../command-io.ts';

/**
 * `auditlog-shipper doctor -c FILE`: every provider and sink reached with the configured credentials
 * (DNS, TLS, auth, permission, one harmless read or write), as `filebeat test output` does. Each
 * provider and sink folder brings its own check (`check` on its module); this only runs them and
 * prints the result. Exit code 1 when any step failed.
 */

export interface DoctorTarget {
  readonly kind: 'provider' | 'sink';
  readonly name: string;
  readonly type: string;
  readonly steps: readonly CheckStep[];
}

export interface DoctorReport {
  readonly ok: boolean;
  readonly targets: readonly DoctorTarget[];
}

export interface DoctorOptions {
  /** Each target's check is abandoned (and failed) after this long. */
  readonly timeoutMs: number;
  readonly instanceId?: string;
}

export async function runDoctor(config: ShipperConfig, options: DoctorOptions): Promise<DoctorReport> {
  const log = pino({ level: 'silent' });
  const instanceId = options.instanceId ?? config.daemon.instanceId;
  const bounded = async (run: (signal: AbortSignal) => Promise<readonly CheckStep[]>) => {
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<readonly CheckStep[]>((resolve) => {
      timer = setTimeout(() => {
        controller.abort();
        resolve([fail('check', `no answer within ${options.timeoutMs / 1000}s`)]);
      }, options.timeoutMs);
    });
    try {
      return await Promise.race([
        run(controller.signal).catch((error: Error) => [fail('check', error.message)]),
        timeout,
      ]);
    } finally {
      clearTimeout(timer);
    }
  };

  const targets: DoctorTarget[] = [];
  for (const provider of config.providers) {
    const module = sourceModules.get(provider.type);
    const scopes: PollScope[] = config.scopes
      .filter((scope) => scope.provider === provider.name)
      .map((scope) => ({
        key: scope.key,
        provider: scope.provider,
        ref: scope.ref,
        settings: scope.settings,
      }));
    const steps = module?.check
      ? await bounded((signal) =>
          (module.check as NonNullable<typeof module.check>)(
            provider,
            scopes,
            { log, instanceId, onRequest: () => undefined },
            signal,
          ),
        )
      : [skip('check', `no check for provider type ${provider.type}`)];
    targets.push({ kind: 'provider', name: provider.name, type: provider.type, steps });
  }
  for (const sink of config.sinks) {
    const module = sinkModules.get(sink.type);
    const steps = module?.check
      ? await bounded((signal) =>
          (module.check as NonNullable<typeof module.check>)(sink, { log, instanceId }, signal),
        )
      : [skip('check', `nothing to reach for a ${sink.type} sink`)];
    targets.push({ kind: 'sink', name: sink.name, type: sink.type, steps });
  }
  return { ok: targets.every((t) => t.steps.every((s) => s.status !== 'fail')), targets };
}

const MARK = { ok: '✓', fail: '✗', warn: '!', skip: '-' } as const;

/** One row per step, the target named on its first row; a summary line at the end. */
export function renderDoctor(report: DoctorReport): string {
  const rows: string[][] = [['TARGET', 'STEP', '', 'DETAIL']];
  for (const target of report.targets) {
    target.steps.forEach((s, i) => {
      rows.push([
        i === 0 ? `${target.kind} ${target.name} (${target.type})` : '',
        s.step,
        MARK[s.status],
        s.detail,
      ]);
    });
  }
  const widths = [0, 1, 2].map((c) => Math.max(...rows.map((r) => (r[c] as string).length)));
  const lines = rows.map((r) =>
    r
      .map((cell, c) => (c < 3 ? cell.padEnd(widths[c] as number) : cell))
      .join('  ')
      .trimEnd(),
  );
  const failed = report.targets.filter((t) => t.steps.some((s) => s.status === 'fail'));
  lines.push(
    '',
    failed.length === 0
      ? `✓ ${report.targets.length} checked, all reachable`
      : `✗ ${failed.length} of ${report.targets.length} failed: ${failed.map((t) => t.name).join(', ')}`,
  );
  return `${lines.join('\n')}\n`;
}

interface DoctorCommandOptions {
  readonly config: string;
  readonly json?: boolean;
  readonly timeout: string;
}

export function register(program: Command): void {
  program
    .command('doctor')
    .description(
      'Reach every provider and sink with the configured credentials: DNS, TLS, auth, permission, one harmless read or write (S3: the conditional-write probe). Exit 1 on any failure.',
    )
    .requiredOption('-c, --config <file>', 'the YAML config file')
    .option('--json', 'machine-readable output')
    .option('--timeout <duration>', 'give up on one provider or sink after this long', '30s')
    .action(async (options: DoctorCommandOptions) => {
      try {
        const timeoutMs = parseDuration(options.timeout);
        if (timeoutMs === undefined)
          throw new Error(`--timeout ${options.timeout}: not a duration such as 30s`);
        const loaded = loadConfig({ path: options.config });
        if (!loaded.ok) throw new Error(loaded.error.format());
        const report = await runDoctor(loaded.config, { timeoutMs });
        writeOut(options.json ? `${JSON.stringify(report, null, 2)}\n` : renderDoctor(report));
        if (!report.ok) process.exitCode = 1;
      } catch (error) {
        failCommand(error);
      }
    });
}
