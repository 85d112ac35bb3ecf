import { type Command, InvalidArgumentError } from 'commander';
import { formatDuration, parseDuration } from '../../config/duration.ts';
import {
  type BudgetOptions,
  makeScopeIds,
  type PushProtocol,
  RouterPusher,
  RouterPushLoop,
  type Simulator,
  type StackitScopeOptions,
  startSimulator,
} from '../../simulator/index.ts';
import { UUID_PATTERN } from '../../simulator/random.ts';

export interface SimulateOptions {
  readonly host: string;
  readonly port: number;
  readonly seed: number;
  /** Number of simulated projects with deterministic UUIDs (ignored when `project` is given). */
  readonly scopes?: number | undefined;
  readonly project?: readonly string[] | undefined;
  /** Events per minute per scope. */
  readonly rate: number;
  readonly token: string;
  readonly lateFraction: number;
  readonly lateMax: number;
  readonly errorRate: number;
  readonly budget?: BudgetOptions | undefined;
  /** Also serve this many cloudscale.ch projects, each with its own token. */
  readonly cloudscale?: number | undefined;
  /** Also push the STACKIT events as a Telemetry Router would, to this OTLP receiver URL. */
  readonly push?: string | undefined;
  readonly pushProtocol?: PushProtocol | undefined;
}

export interface SimulateIo {
  /** The environment (SIM_PUSH_TOKEN: the bearer token the pushes carry). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  /** Resolves when the simulator should stop (SIGINT/SIGTERM in the CLI). */
  readonly until: Promise<unknown>;
  /** Called once the simulator listens (tests use it to reach the instance). */
  readonly onStarted?: ((sim: Simulator) => void) | undefined;
}

const DEFAULT_SCOPES = 3;
const DELAY_MIN_MS = 1_000;
const DELAY_MAX_MS = 8_000;
/** cloudscale rows commit within a fraction of a second, late ones within seconds. */
const CLOUDSCALE_COMMIT_MAX_MS = 300;
const CLOUDSCALE_LATE_COMMIT_MAX_MS = 30_000;

/** A simulated cloudscale project and the environment variable its token is exported as. */
export interface CloudscaleProjectSnippet {
  readonly name: string;
  readonly env: string;
}

function numberArg(name: string, check: (n: number) => boolean, rule: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || !check(n)) {
      throw new InvalidArgumentError(`${name} must be ${rule}`);
    }
    return n;
  };
}

const parsePort = numberArg(
  'port',
  (n) => Number.isInteger(n) && n >= 0 && n <= 65_535,
  'an integer 0-65535',
);
const parseSeed = numberArg('seed', Number.isSafeInteger, 'an integer');
const parseCount = numberArg(
  'scopes',
  (n) => Number.isInteger(n) && n >= 1 && n <= 100_000,
  'an integer 1-100000',
);
const parseRate = numberArg('rate', (n) => n >= 0 && n <= 1_000_000, 'events per minute, 0-1000000');
const parseFraction = numberArg('value', (n) => n >= 0 && n <= 1, 'a fraction between 0 and 1');

function parsePushProtocol(value: string): PushProtocol {
  if (value === 'http/protobuf' || value === 'http/json' || value === 'grpc') return value;
  throw new InvalidArgumentError('push protocol must be http/protobuf, http/json or grpc');
}

function parseDurationArg(value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined) throw new InvalidArgumentError('expected a duration such as 90s, 5m or 1h30m');
  return ms;
}

function parseUuid(value: string, previous: string[] | undefined): string[] {
  if (!UUID_PATTERN.test(value)) throw new InvalidArgumentError(`${value} is not a UUID`);
  return [...(previous ?? []), value.toLowerCase()];
}

/** `N/period`, e.g. `60/60s`: a bucket of N requests refilled at N per period. */
export function parseBudget(value: string): BudgetOptions {
  const m = /^\s*(\d+)\s*\/\s*(\S+)\s*$/.exec(value);
  const capacity = m ? Number(m[1]) : Number.NaN;
  const periodMs = m ? parseDuration(m[2] as string) : undefined;
  if (!m || !(capacity >= 1) || periodMs === undefined || periodMs <= 0) {
    throw new InvalidArgumentError('budget must look like 60/60s (requests per period)');
  }
  return { capacity, refillPerSecond: capacity / (periodMs / 1000) };
}

/** The `providers:`/`scopes:` part of a shipper config that polls this simulator. */
export function configSnippet(
  url: string,
  scopes: readonly StackitScopeOptions[],
  cloudscale: readonly CloudscaleProjectSnippet[] = [],
): string {
  const lines = [
    'providers:',
    '  - name: sim',
    '    type: stackit',
    `    auditLogUrl: ${url}`,
    '    allowInsecureHttp: true # the simulator listens on plain HTTP',
    '    auth:',
    '      token: ${SIM_TOKEN}',
  ];
  if (cloudscale.length > 0)
    lines.push(
      '  - name: sim-cloudscale',
      '    type: cloudscale',
      `    apiUrl: ${url}`,
      '    allowInsecureHttp: true',
    );
  lines.push('scopes:');
  for (const scope of scopes) lines.push('  - provider: sim', `    ${scope.kind}: ${scope.id}`);
  for (const project of cloudscale) {
    lines.push(
      '  - provider: sim-cloudscale',
      `    project: ${project.name}`,
      '    auth:',
      `      token: \${${project.env}}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Runs the STACKIT Audit Log simulator until `io.until` resolves, printing what a shipper needs to
 * poll it. Returns the exit code.
 */
export async function simulate(options: SimulateOptions, io: SimulateIo): Promise<number> {
  const ids = options.project?.length
    ? [...new Set(options.project)]
    : makeScopeIds(options.seed, options.scopes ?? DEFAULT_SCOPES);
  const scopes: StackitScopeOptions[] = ids.map((id) => ({
    kind: 'project',
    id,
    eventsPerMinute: options.rate,
  }));
  const cloudscale = Array.from({ length: options.cloudscale ?? 0 }, (_, i) => ({
    name: `cloudscale-${i + 1}`,
    env: `SIM_CLOUDSCALE_TOKEN_${i + 1}`,
    token: `${options.token}-cloudscale-${i + 1}`,
  }));
  let sim: Simulator;
  try {
    sim = await startSimulator({
      host: options.host,
      port: options.port,
      seed: options.seed,
      stackit: {
        token: options.token,
        scopes,
        delay: {
          minMs: DELAY_MIN_MS,
          maxMs: DELAY_MAX_MS,
          lateFraction: options.lateFraction,
          lateMaxMs: Math.max(DELAY_MAX_MS, options.lateMax),
        },
      },
      cloudscale: {
        projects: cloudscale.map((p) => ({ name: p.name, token: p.token, eventsPerMinute: options.rate })),
        commit: {
          minMs: 0,
          maxMs: CLOUDSCALE_COMMIT_MAX_MS,
          lateFraction: options.lateFraction,
          lateMaxMs: Math.min(
            CLOUDSCALE_LATE_COMMIT_MAX_MS,
            Math.max(CLOUDSCALE_COMMIT_MAX_MS, options.lateMax),
          ),
        },
      },
      budget: options.budget,
      faults: { serverErrorRate: options.errorRate },
    });
  } catch (error) {
    io.err(`✗ simulator could not start: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
  io.onStarted?.(sim);

  const budget = options.budget
    ? `${options.budget.capacity} requests, refilled at ${+options.budget.refillPerSecond.toFixed(3)}/s per token`
    : 'unlimited';
  const shown = scopes.slice(0, 20);
  io.out(
    [
      `STACKIT Audit Log API simulator listening on ${sim.url}`,
      `  token:   ${sim.token}`,
      `  seed:    ${options.seed}`,
      `  traffic: ${scopes.length} project scope(s), ${options.rate} events/min each, ` +
        `delay ${formatDuration(DELAY_MIN_MS)}-${formatDuration(DELAY_MAX_MS)}, ` +
        `${options.lateFraction * 100}% late up to ${formatDuration(Math.max(DELAY_MAX_MS, options.lateMax))}`,
      `  faults:  5xx rate ${options.errorRate}; budget: ${budget}`,
      '  scopes:',
      ...shown.map((s) => `    ${s.kind} ${s.id}`),
      ...(scopes.length > shown.length
        ? [`    … and ${scopes.length - shown.length} more (GET /_sim/scopes)`]
        : []),
      ...(cloudscale.length > 0
        ? [
            `  cloudscale.ch project logs: ${cloudscale.map((p) => p.name).join(', ')} (one token each), ` +
              `${options.rate} events/min each, ${options.lateFraction * 100}% committing late; ` +
              `GET ${sim.url}/_sim/cloudscale/truth?project=<name>`,
          ]
        : []),
      `  control: GET ${sim.url}/_sim/truth?kind=project&id=<uuid>, PUT /_sim/faults, GET /_sim/stats`,
      '',
      `export SIM_TOKEN=${sim.token}`,
      ...cloudscale.map((p) => `export ${p.env}=${p.token}`),
      '',
      '# shipper config:',
      configSnippet(sim.url, scopes, cloudscale),
    ].join('\n'),
  );

  const pushing = options.push === undefined ? undefined : startPushing(sim, options, io);
  await io.until;
  if (pushing) {
    const report = await pushing.stop();
    io.err(
      `router push: ${report.acknowledged.length} records acknowledged, ${report.redelivered} redelivered, ${report.dropped.length} dropped\n`,
    );
  }
  await sim.close();
  io.err('simulator stopped\n');
  return 0;
}

/** `--push URL`: a Telemetry Router pushing every scope's events, as they become visible, to a receiver. */
function startPushing(sim: Simulator, options: SimulateOptions, io: SimulateIo): RouterPushLoop {
  const token = (io.env ?? process.env).SIM_PUSH_TOKEN;
  const protocol = options.pushProtocol ?? 'http/protobuf';
  const loop = new RouterPushLoop({
    truth: sim.truth,
    clock: sim.clock,
    pusher: new RouterPusher({
      target: { uri: options.push as string, ...(token ? { bearerToken: token } : {}) },
      protocol,
      seed: options.seed,
    }),
    scopes: () => sim.truth.scopes().map(({ kind, id }) => ({ kind, id })),
  });
  loop.start();
  io.out(
    `  push:    every STACKIT event, as it becomes visible, to ${options.push} (${protocol}, gzip, batches of 100${token ? ', bearer $SIM_PUSH_TOKEN' : ''})\n`,
  );
  return loop;
}

export function register(program: Command): void {
  program
    .command('simulate')
    .description(
      'Serve a local simulator of the STACKIT Audit Log API (and, with --cloudscale, cloudscale.ch project logs): deterministic traffic, late arrivals, limits, faults; for demos and tests.',
    )
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--port <port>', 'port to listen on (0 picks a free one)', parsePort, 8080)
    .option('--seed <n>', 'seed of all simulated traffic and faults', parseSeed, 1)
    .option(
      '--scopes <n>',
      `number of simulated projects with UUIDs derived from the seed (default ${DEFAULT_SCOPES})`,
      parseCount,
    )
    .option('--project <uuid...>', 'serve these project UUIDs instead of --scopes', parseUuid)
    .option('--rate <eventsPerMin>', 'events per minute per scope', parseRate, 30)
    .option('--token <token>', 'bearer token the API accepts', 'sim-token')
    .option('--late-fraction <f>', 'fraction of events that arrive late', parseFraction, 0.05)
    .option('--late-max <duration>', 'longest delay of a late event', parseDurationArg, 120_000)
    .option('--error-rate <f>', 'probability of a 5xx response per request', parseFraction, 0)
    .option('--budget <n/period>', 'request budget per token, e.g. 60/60s (default unlimited)', parseBudget)
    .option(
      '--cloudscale <n>',
      'also serve n cloudscale.ch projects (GET /v1/project-logs), each with its own token',
      numberArg('cloudscale', (n) => Number.isInteger(n) && n >= 0 && n <= 1_000, 'an integer 0-1000'),
    )
    .option(
      '--push <url>',
      'also push the STACKIT events as OTLP logs to this receiver, as a Telemetry Router would (bearer token from SIM_PUSH_TOKEN)',
    )
    .option('--push-protocol <protocol>', 'http/protobuf, http/json or grpc', parsePushProtocol)
    .action(async (options: SimulateOptions, command: Command) => {
      if (options.scopes !== undefined && options.project?.length) {
        command.error('error: use either --scopes or --project, not both');
      }
      let onSignal: (() => void) | undefined;
      const until = new Promise<void>((resolve) => {
        onSignal = resolve;
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      const code = await simulate(options, {
        out: (text) => process.stdout.write(text),
        err: (text) => process.stderr.write(text),
        until,
      });
      if (onSignal) {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
      process.exitCode = code;
    });
}
