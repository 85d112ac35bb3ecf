/**
 * `auditlog-shipper stackit links plan|apply -c FILE`: the Telemetry Router setup of every STACKIT
 * provider with a `telemetry:` section (src/sources/stackit/telemetry/links.ts does the work).
 */
import type { Command } from 'commander';
import type { Logger } from 'pino';
import type { Env } from '../../config/fields.ts';
import { loadConfig } from '../../config/load.ts';
import { createLogger } from '../../observability/logger.ts';
import { ProviderError } from '../../sources/errors.ts';
import type { StackitProviderSettings, StackitScopeSettings } from '../../sources/stackit/config.ts';
import { openTelemetryClients } from '../../sources/stackit/telemetry/clients.ts';
import {
  type ApplyOutcome,
  applyLinks,
  type LinksDeps,
  type LinksPlan,
  linkLevels,
  planLinks,
} from '../../sources/stackit/telemetry/links.ts';
import { failCommand, writeOut } from '../command-io.ts';

export interface LinksOptions {
  readonly config: string;
  readonly provider?: string;
  readonly json?: boolean;
}

export interface LinksIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly env?: Env;
  /** Where log lines go (default: standard error, warnings and up). */
  readonly log?: Logger;
}

/** Plans or applies; returns the exit code: 0 done, 1 a failure, a foreign link or a bad config. */
export async function runLinks(mode: 'plan' | 'apply', options: LinksOptions, io: LinksIo): Promise<number> {
  const loaded = loadConfig({ path: options.config }, io.env !== undefined ? { env: io.env } : {});
  if (!loaded.ok) {
    io.err(`✗ ${loaded.error.format()}\n`);
    return 1;
  }
  const { config } = loaded;
  const providers = config.providers.filter(
    (p) =>
      p.type === 'stackit' &&
      (options.provider === undefined || p.name === options.provider) &&
      (p.settings as StackitProviderSettings).telemetry !== undefined,
  );
  if (providers.length === 0) {
    io.err(
      `✗ ${options.config}: ${options.provider ? `provider "${options.provider}" is not a STACKIT provider with` : 'no STACKIT provider has'} a telemetry section (providers[].telemetry: routerProject, regions, destination)\n`,
    );
    return 1;
  }
  const log = io.log ?? createLogger({ level: 'warn', instanceId: config.daemon.instanceId });
  let code = 0;
  const report: Array<{ provider: string; plan?: LinksPlan; outcomes?: ApplyOutcome[]; error?: string }> = [];
  for (const provider of providers) {
    const settings = provider.settings as StackitProviderSettings;
    const scopes = config.scopes
      .filter((s) => s.provider === provider.name && s.discoveredBy === undefined)
      .map((s) => s.settings as StackitScopeSettings);
    const clients = openTelemetryClients(provider.name, settings, config.daemon.instanceId, log);
    if (clients === undefined) continue;
    const deps: LinksDeps = {
      provider: provider.name,
      ...clients,
      signal: new AbortController().signal,
      log,
    };
    try {
      const levels = await linkLevels(scopes, deps);
      const plan = await planLinks(levels, deps);
      if (mode === 'plan') {
        report.push({ provider: provider.name, plan });
        if (!options.json) io.out(formatPlan(plan));
        if (plan.regions.some((r) => r.items.some((i) => i.action === 'foreign' || i.action === 'error')))
          code = 1;
      } else {
        const outcomes = await applyLinks(plan, deps);
        report.push({ provider: provider.name, outcomes });
        if (!options.json) io.out(formatOutcomes(provider.name, outcomes));
        if (outcomes.some((o) => o.result === 'failed' || o.result === 'foreign')) code = 1;
      }
    } catch (error) {
      if (!(error instanceof ProviderError)) throw error;
      report.push({ provider: provider.name, error: error.message });
      io.err(`✗ provider "${provider.name}": ${error.message}\n`);
      code = 1;
    } finally {
      await clients.close();
    }
  }
  if (options.json) io.out(`${JSON.stringify(jsonReport(report), null, 2)}\n`);
  return code;
}

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, col) => Math.max(...rows.map((r) => (r[col] ?? '').length))) ?? [];
  return rows
    .map((r) =>
      r.map((cell, col) => (col === r.length - 1 ? cell : cell.padEnd(widths[col] ?? 0))).join('  '),
    )
    .join('\n');
}

export function formatPlan(plan: LinksPlan): string {
  const rows = [['REGION', 'KIND', 'TARGET', 'ACTION', 'DETAIL']];
  const counts = new Map<string, number>();
  for (const region of plan.regions) {
    for (const item of region.items) {
      rows.push([item.region, item.kind, item.target, item.action, item.detail]);
      counts.set(item.action, (counts.get(item.action) ?? 0) + 1);
    }
  }
  const summary = ['create', 'update', 'repair', 'none', 'foreign', 'error']
    .filter((a) => counts.has(a))
    .map((a) => `${counts.get(a)} ${a === 'none' ? 'unchanged' : a}`)
    .join(', ');
  return `provider "${plan.provider}": ${summary}\n${table(rows)}\n`;
}

export function formatOutcomes(provider: string, outcomes: readonly ApplyOutcome[]): string {
  const rows = [['REGION', 'KIND', 'TARGET', 'RESULT', 'DETAIL']];
  const counts = new Map<string, number>();
  for (const o of outcomes) {
    rows.push([o.region, o.kind, o.target, o.result, o.detail]);
    counts.set(o.result, (counts.get(o.result) ?? 0) + 1);
  }
  const summary = ['created', 'updated', 'repaired', 'unchanged', 'foreign', 'failed']
    .filter((r) => counts.has(r))
    .map((r) => `${counts.get(r)} ${r}`)
    .join(', ');
  return `provider "${provider}": ${summary}\n${table(rows)}\n`;
}

/** The JSON report: plan items without the API's full link objects (which may carry a token). */
function jsonReport(
  report: ReadonlyArray<{ provider: string; plan?: LinksPlan; outcomes?: ApplyOutcome[]; error?: string }>,
): unknown {
  return report.map((r) => ({
    provider: r.provider,
    ...(r.plan
      ? {
          plan: r.plan.regions.flatMap((region) =>
            region.items.map((i) => ({
              region: i.region,
              kind: i.kind,
              target: i.target,
              action: i.action,
              detail: i.detail,
              ...(i.current
                ? { status: i.current.status, telemetryRouterId: i.current.telemetryRouterId }
                : {}),
            })),
          ),
        }
      : {}),
    ...(r.outcomes ? { outcomes: r.outcomes } : {}),
    ...(r.error ? { error: r.error } : {}),
  }));
}

export function register(program: Command): void {
  const stackit = program.command('stackit').description('STACKIT-specific operations.');
  const links = stackit
    .command('links')
    .description(
      'Telemetry Router setup: a router, its OpenTelemetry destination and a Telemetry Link for every organization, folder and project of the providers with a telemetry section.',
    );
  for (const mode of ['plan', 'apply'] as const) {
    links
      .command(mode)
      .description(
        mode === 'plan'
          ? 'Show what apply would create or change (reads only).'
          : 'Create and update what plan shows; idempotent; never deletes; non-zero exit when a link failed or a foreign link blocks a level.',
      )
      .requiredOption('-c, --config <file>', 'the YAML config file')
      .option('--provider <name>', 'only this provider')
      .option('--json', 'machine-readable output')
      .action(async (options: LinksOptions) => {
        try {
          process.exitCode = await runLinks(mode, options, {
            out: writeOut,
            err: (text) => process.stderr.write(text),
          });
        } catch (error) {
          failCommand(error);
        }
      });
  }
}
