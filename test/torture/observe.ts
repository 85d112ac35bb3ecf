/**
 * What the torture run reads back: every sink through its own protocol, a replica's /metrics as an
 * operator's Prometheus would, and Redis for what the metrics summarize.
 */

import { gunzipSync } from 'node:zlib';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { PROBE_PREFIX } from '../../src/sinks/s3/probe.ts';
import { fileRecords, recordOfLine, type StoredRecord } from './oracle.ts';
import { PREFIX, S3_PREFIX, type World } from './world.ts';

/** Reads S3 objects once each: keys are create-only, so an object read is never read again. */
export class S3Reader {
  readonly #world: World;
  readonly #objects = new Map<string, StoredRecord[]>();

  constructor(world: World) {
    this.#world = world;
  }

  get objects(): number {
    return this.#objects.size;
  }

  async records(): Promise<StoredRecord[]> {
    // An S3 500 is retryable for any client, this one too; a persistent one says what s3rver hit.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#read();
      } catch (error) {
        if (attempt >= 5) {
          throw new Error(
            `reading S3 back failed ${attempt} times: ${String(error)}; s3rver: ${this.#world.s3.internalErrors.slice(-3).join('\n')}`,
          );
        }
        await new Promise((r) => setTimeout(r, 1_000));
      }
    }
  }

  async #read(): Promise<StoredRecord[]> {
    const client = this.#world.s3.client();
    try {
      for (const key of await this.#world.s3.keys(S3_PREFIX)) {
        // The sink's conditional-write canary: no archive object (a replica killed mid-probe leaves one).
        if (this.#objects.has(key) || key.includes(PROBE_PREFIX)) continue;
        const got = await client.send(new GetObjectCommand({ Bucket: this.#world.s3.bucket, Key: key }));
        const bytes = Buffer.from(
          await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
        );
        const lines = gunzipSync(bytes).toString('utf8').split('\n');
        if (lines.at(-1) !== '') throw new Error(`s3 ${key}: the last line is not terminated`);
        this.#objects.set(
          key,
          lines.slice(0, -1).map((line) => recordOfLine(line, `s3 ${key}`)),
        );
      }
    } finally {
      client.destroy();
    }
    return [...this.#objects.values()].flat();
  }
}

export interface SinkRecords {
  readonly file: StoredRecord[];
  readonly loki: StoredRecord[];
  readonly es: StoredRecord[];
  readonly s3: StoredRecord[];
}

export async function readSinks(world: World, s3: S3Reader): Promise<SinkRecords> {
  return {
    file: await fileRecords(await world.fileSinkPaths()),
    loki: world.loki.entries().map((e) => recordOfLine(e.line, `loki ${e.labels}`)),
    es: world.es.docs().map((d) => recordOfLine(d.source, `es ${d.index}`, d.id)),
    s3: await s3.records(),
  };
}

/** Prometheus text exposition → samples, `name{labels}` parsed. */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export async function scrape(port: number): Promise<Sample[] | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(3_000) });
    if (!res.ok) return undefined;
    const samples: Sample[] = [];
    for (const line of (await res.text()).split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
      if (!m) continue;
      const labels: Record<string, string> = {};
      for (const pair of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
        labels[pair[1] as string] = JSON.parse(`"${pair[2]}"`) as string;
      }
      samples.push({ name: m[1] as string, labels, value: Number(m[3]) });
    }
    return samples;
  } catch {
    return undefined;
  }
}

/** One scrape from whichever replica answers first. */
export async function scrapeAny(world: World): Promise<{ slot: number; samples: Sample[] } | undefined> {
  for (const replica of world.running()) {
    const samples = await scrape(replica.metricsPort);
    if (samples) return { slot: replica.slot, samples };
  }
  return undefined;
}

export interface Health {
  /** auditlog_checkpoint_lag_seconds per scope (missing: no watermark yet). */
  readonly lagS: Record<string, number | undefined>;
  /** auditlog_outbox_oldest_age_seconds per sink. */
  readonly outboxAgeS: Record<string, number | undefined>;
  readonly outboxLength: Record<string, number | undefined>;
  readonly deadLetters: Record<string, number | undefined>;
}

export function health(world: World, samples: readonly Sample[]): Health {
  const pick = (name: string, label: string, keys: readonly string[]) =>
    Object.fromEntries(
      keys.map((key) => [key, samples.find((s) => s.name === name && s.labels[label] === key)?.value]),
    );
  return {
    lagS: pick('auditlog_checkpoint_lag_seconds', 'scope', world.scopeKeys()),
    outboxAgeS: pick('auditlog_outbox_oldest_age_seconds', 'sink', world.sinkNames()),
    outboxLength: pick('auditlog_outbox_length', 'sink', world.sinkNames()),
    deadLetters: pick('auditlog_dead_letter_length', 'sink', world.sinkNames()),
  };
}

/** Outbox entries not yet settled, and dead letters, per sink, straight from Redis. */
export async function outboxes(
  world: World,
): Promise<Record<string, { length: number; pending: number; deadLetters: number; seals: number }>> {
  const r = world.redis.client;
  const out: Record<string, { length: number; pending: number; deadLetters: number; seals: number }> = {};
  for (const sink of world.sinkNames()) {
    const stream = `${PREFIX}:outbox:${sink}`;
    const pending = (await r.xpending(stream, 'delivery').catch(() => [0])) as [number];
    out[sink] = {
      length: await r.xlen(stream),
      pending: Number(pending[0] ?? 0),
      deadLetters: await r.xlen(`${PREFIX}:dlq:${sink}`),
      seals: await r.hlen(`${PREFIX}:batches:${sink}`),
    };
  }
  return out;
}

/** Dead-lettered events per sink with their reasons (each one is an event missing from that sink). */
export async function deadLetters(world: World): Promise<string[]> {
  const out: string[] = [];
  for (const sink of world.sinkNames()) {
    const rows = (await world.redis.client.xrange(`${PREFIX}:dlq:${sink}`, '-', '+', 'COUNT', 50)) as Array<
      [string, string[]]
    >;
    for (const [, fields] of rows) {
      const f: Record<string, string> = {};
      for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i] as string] = fields[i + 1] as string;
      out.push(`${sink}: event ${f.id}: ${f.reason}`);
    }
  }
  return out;
}

/** What Redis holds about every scope and queue, for a failing run's message. */
export async function diagnose(world: World): Promise<string> {
  const r = world.redis.client;
  const lines: string[] = [];
  for (const key of world.scopeKeys()) {
    const base = `${PREFIX}:scope:${key}`;
    const checkpoint = await r.hgetall(`${base}:checkpoint`);
    const { state: _state, ...rest } = checkpoint;
    lines.push(
      `${key}: checkpoint ${JSON.stringify(rest)} status ${JSON.stringify(await r.hgetall(`${base}:status`))} ` +
        `lease ${await r.get(`${base}:lease`)} pttl ${await r.pttl(`${base}:lease`)}`,
    );
  }
  const q = `${PREFIX}:poll`;
  lines.push(`schedulers ${JSON.stringify(await r.zrange(`${q}:repeat`, '0', '-1', 'WITHSCORES'))}`);
  lines.push(
    `delayed ${await r.zcard(`${q}:delayed`)} wait ${await r.llen(`${q}:wait`)} active ${await r.llen(`${q}:active`)} failed ${await r.zcard(`${q}:failed`)}`,
  );
  lines.push(`outboxes ${JSON.stringify(await outboxes(world))}`);
  lines.push(`time ${new Date().toISOString()}`);
  return lines.join('\n');
}
