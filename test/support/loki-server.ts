import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { gunzipSync, inflateSync } from 'node:zlib';
import protobuf from 'protobufjs';
import { uncompress as unsnappy } from 'snappyjs';
import { closeServer, listenLoopback } from './loopback.ts';
import { SinkFaultControl, sleep } from './sink-faults.ts';

/**
 * A Loki push endpoint that enforces Loki's own rules, for tests (facts: shared/research/sinks.md §1):
 * - protobuf bodies are snappy *block* compressed logproto.PushRequest (decoded here with protobufjs
 *   from the .proto text, independently of the shipper's hand-written encoder); JSON bodies may be gzip
 *   or deflate, any other Content-Encoding is a 400; timestamps in JSON must be strings;
 * - `X-Scope-OrgID` is required (auth_enabled), one tenant per push;
 * - distributor validation per entry (line too long, too old, too new, structured metadata allowed)
 *   with Loki's messages; the valid entries are stored and the push still answers 400 (partial success);
 * - per stream, entries older than the newest one minus the window (max_chunk_age/2, 1 h) are refused
 *   as too far behind; an entry identical to a stored one (timestamp, line, metadata) is dropped silently;
 *   at most `maxReturnedErrors` (10) refused entries are listed per stream, then a "total ignored" trailer;
 * - bodies over `maxRecvBytes` get 413; faults: down (503), queued answers (429 + Retry-After, 260), and
 *   `faults` (queued or at a rate): a status with Loki's body, a slow answer, a push stored whose answer
 *   is lost (connection dropped), a partial write (half of each stream stored, then a 500, as when some
 *   ingesters of the replication set fail).
 */
export interface LokiEntry {
  readonly tenant: string;
  /** Canonical label set, `{a="x", b="y"}`. */
  readonly labels: string;
  readonly tsNanos: bigint;
  readonly line: string;
  readonly metadata: Readonly<Record<string, string>>;
}

export interface LokiServerOptions {
  readonly maxLineSize?: number;
  readonly rejectOldSamplesMaxAgeMs?: number;
  readonly creationGracePeriodMs?: number;
  readonly tooFarBehindWindowMs?: number;
  readonly maxReturnedErrors?: number;
  readonly maxRecvBytes?: number;
  readonly allowStructuredMetadata?: boolean;
  /** Required Authorization header value (Loki behind an auth proxy). */
  readonly authorization?: string;
  /** 400 bodies name nothing (as behind a proxy that replaces error pages). */
  readonly opaqueErrors?: boolean;
}

const PROTO = `
syntax = "proto3";
package logproto;
message PushRequest { repeated StreamAdapter streams = 1; string format = 2; }
message StreamAdapter { string labels = 1; repeated EntryAdapter entries = 2; uint64 hash = 3; }
message EntryAdapter { Timestamp timestamp = 1; string line = 2; repeated LabelPairAdapter structuredMetadata = 3; repeated LabelPairAdapter parsed = 4; }
message LabelPairAdapter { string name = 1; string value = 2; }
message Timestamp { int64 seconds = 1; int32 nanos = 2; }
`;
const PushRequest = protobuf.parse(PROTO).root.lookupType('logproto.PushRequest');

interface IncomingEntry {
  tsNanos: bigint;
  line: string;
  metadata: Record<string, string>;
}

interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

export class LokiTestServer {
  readonly #o: Required<Omit<LokiServerOptions, 'authorization'>> & { authorization?: string | undefined };
  readonly #server: Server;
  readonly #entries: LokiEntry[] = [];
  readonly #streams = new Map<string, { highest: bigint; keys: Set<string> }>();
  readonly #queued: Answer[] = [];
  #down = false;
  url = '';
  readonly requests: Array<{ status: number; contentType: string; encoding: string; entries: number }> = [];
  /** Injected faults (torture tests); none unless set. */
  readonly faults: SinkFaultControl;

  constructor(options: LokiServerOptions = {}, seed: number | string = 1) {
    this.faults = new SinkFaultControl(`${seed}|loki`);
    this.#o = {
      maxLineSize: options.maxLineSize ?? 256 * 1024,
      rejectOldSamplesMaxAgeMs: options.rejectOldSamplesMaxAgeMs ?? 7 * 86_400_000,
      creationGracePeriodMs: options.creationGracePeriodMs ?? 10 * 60_000,
      tooFarBehindWindowMs: options.tooFarBehindWindowMs ?? 3_600_000,
      maxReturnedErrors: options.maxReturnedErrors ?? 10,
      maxRecvBytes: options.maxRecvBytes ?? 100 * 1024 * 1024,
      allowStructuredMetadata: options.allowStructuredMetadata ?? true,
      opaqueErrors: options.opaqueErrors ?? false,
      authorization: options.authorization,
    };
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((error: unknown) => {
        res.writeHead(500).end(String(error));
      });
    });
  }

  async start(port = 0): Promise<string> {
    this.url = await listenLoopback(this.#server, port);
    return this.url;
  }

  async stop(): Promise<void> {
    await closeServer(this.#server);
  }

  /** While down, every push answers 503 and stores nothing. */
  setDown(down: boolean): void {
    this.#down = down;
  }

  /** The next pushes get these answers (and store nothing). */
  queue(...answers: Answer[]): void {
    this.#queued.push(...answers);
  }

  entries(): readonly LokiEntry[] {
    return this.#entries;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readAll(req);
    const send = (status: number, text = '', headers: Record<string, string> = {}, entries = 0): void => {
      this.requests.push({
        status,
        contentType: String(req.headers['content-type'] ?? ''),
        encoding: String(req.headers['content-encoding'] ?? ''),
        entries,
      });
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers }).end(text);
    };
    // Loki's readiness endpoint (doctor): 503 while the ingester is not ready.
    if (req.method === 'GET' && new URL(req.url ?? '/', 'http://x').pathname === '/ready') {
      if (this.#down) send(503, 'Ingester not ready: waiting for 15s after being ready\n');
      else send(200, 'ready\n');
      return;
    }
    if (req.method !== 'POST' || new URL(req.url ?? '/', 'http://x').pathname !== '/loki/api/v1/push') {
      send(404, '404 page not found\n');
      return;
    }
    if (this.#o.authorization !== undefined && req.headers.authorization !== this.#o.authorization) {
      send(401, 'Unauthorized\n');
      return;
    }
    const tenant = req.headers['x-scope-orgid'];
    if (typeof tenant !== 'string' || tenant === '') {
      send(401, 'no org id\n');
      return;
    }
    if (tenant.includes('|')) {
      send(400, 'multiple org IDs present\n');
      return;
    }
    if (this.#down) {
      send(503, 'empty ring\n');
      return;
    }
    const queued = this.#queued.shift();
    if (queued) {
      send(queued.status, queued.body ?? '', queued.headers ?? {});
      return;
    }
    const fault = this.faults.next();
    if (fault?.kind === 'status') {
      const headers: Record<string, string> =
        fault.retryAfterSec === undefined ? {} : { 'retry-after': String(fault.retryAfterSec) };
      send(fault.status, `${LOKI_STATUS_TEXT[fault.status] ?? 'error'}\n`, headers);
      return;
    }
    if (fault?.kind === 'slow') await sleep(fault.delayMs);
    if (body.length > this.#o.maxRecvBytes) {
      send(413, `request_body_too_large: ${body.length} > ${this.#o.maxRecvBytes}\n`);
      return;
    }
    let streams: Array<{ labels: string; entries: IncomingEntry[] }>;
    try {
      streams = this.#decode(req, body);
    } catch (error) {
      send(400, `${(error as Error).message}\n`);
      return;
    }
    const total = streams.reduce((n, s) => n + s.entries.length, 0);
    const errors: string[] = [];
    const nowNs = BigInt(Date.now()) * 1_000_000n;
    for (const stream of streams) {
      const labels = parseLabelSet(stream.labels);
      if (typeof labels === 'string') {
        errors.push(`Error parsing labels '${stream.labels}' with error: ${labels}`);
        continue;
      }
      if (labels.length === 0) {
        errors.push('error at least one label pair is required per stream');
        continue;
      }
      const canonical = formatLabels(labels);
      const valid: IncomingEntry[] = [];
      for (const entry of stream.entries) {
        const problem = this.#validate(canonical, entry, nowNs);
        if (problem) errors.push(problem);
        else valid.push(entry);
      }
      const stored = fault?.kind === 'partial' ? valid.slice(0, Math.ceil(valid.length / 2)) : valid;
      const ingesterError = this.#ingest(tenant, canonical, stored);
      if (ingesterError) errors.push(ingesterError);
    }
    if (fault?.kind === 'partial') {
      send(
        500,
        'rpc error: code = Unavailable desc = at least 2 live replicas required, could only find 1\n',
      );
      return;
    }
    if (fault?.kind === 'lost-answer') {
      this.requests.push({ status: 0, contentType: '', encoding: '', entries: total });
      req.socket.destroy();
      return;
    }
    if (errors.length > 0)
      send(400, this.#o.opaqueErrors ? 'Bad Request\n' : `${errors.join('\n')}\n`, {}, total);
    else send(204, '', {}, total);
  }

  #decode(req: IncomingMessage, body: Buffer): Array<{ labels: string; entries: IncomingEntry[] }> {
    const type = String(req.headers['content-type'] ?? 'application/x-protobuf');
    const encoding = String(req.headers['content-encoding'] ?? '');
    if (type.startsWith('application/json')) {
      let raw = body;
      if (encoding === 'gzip') raw = gunzipSync(body);
      else if (encoding === 'deflate') raw = inflateSync(body);
      else if (encoding !== '' && encoding !== 'snappy')
        throw new Error(`Content-Encoding "${encoding}" not supported`);
      const json = JSON.parse(raw.toString('utf8')) as {
        streams?: Array<{ stream?: Record<string, string>; values?: unknown[][] }>;
      };
      return (json.streams ?? []).map((s) => ({
        labels: formatLabels(
          Object.entries(s.stream ?? {}).map(([name, value]) => [name, value] as [string, string]),
        ),
        entries: (s.values ?? []).map((v) => {
          if (typeof v[0] !== 'string') throw new Error('loghttp: timestamp must be a string');
          return {
            tsNanos: BigInt(v[0]),
            line: String(v[1]),
            metadata: (v[2] as Record<string, string> | undefined) ?? {},
          };
        }),
      }));
    }
    const decoded = PushRequest.toObject(PushRequest.decode(unsnappy(body)), {
      longs: String,
      defaults: true,
    }) as {
      streams: Array<{
        labels: string;
        entries: Array<{
          timestamp?: { seconds: string; nanos: number };
          line: string;
          structuredMetadata: Array<{ name: string; value: string }>;
        }>;
      }>;
    };
    return decoded.streams.map((s) => ({
      labels: s.labels,
      entries: s.entries.map((e) => ({
        tsNanos: BigInt(e.timestamp?.seconds ?? '0') * 1_000_000_000n + BigInt(e.timestamp?.nanos ?? 0),
        line: e.line,
        metadata: Object.fromEntries(e.structuredMetadata.map((p) => [p.name, p.value])),
      })),
    }));
  }

  /** The distributor's per-entry checks (pkg/validation/validate.go messages). */
  #validate(stream: string, entry: IncomingEntry, nowNs: bigint): string | undefined {
    const size = Buffer.byteLength(entry.line, 'utf8');
    if (this.#o.maxLineSize > 0 && size > this.#o.maxLineSize) {
      return `Max entry size '${this.#o.maxLineSize}' bytes exceeded for stream '${stream}' while adding an entry with length '${size}' bytes`;
    }
    const oldest = nowNs - BigInt(this.#o.rejectOldSamplesMaxAgeMs) * 1_000_000n;
    if (entry.tsNanos < oldest) {
      return `entry for stream '${stream}' has timestamp too old: ${goTime(entry.tsNanos)}, oldest acceptable timestamp is: ${goTime(oldest)}`;
    }
    if (entry.tsNanos > nowNs + BigInt(this.#o.creationGracePeriodMs) * 1_000_000n) {
      return `entry for stream '${stream}' has timestamp too new: ${goTime(entry.tsNanos)}`;
    }
    if (!this.#o.allowStructuredMetadata && Object.keys(entry.metadata).length > 0) {
      return `stream '${stream}' includes structured metadata, but this feature is disallowed. Please see \`limits_config.allow_structured_metadata\` or contact your Loki administrator to enable it.`;
    }
    return undefined;
  }

  /** The ingester: ordering window, de-duplication, the capped list of refused entries. */
  #ingest(tenant: string, labels: string, entries: IncomingEntry[]): string | undefined {
    const key = `${tenant}/${labels}`;
    let state = this.#streams.get(key);
    if (!state) {
      state = { highest: -1n, keys: new Set() };
      this.#streams.set(key, state);
    }
    const refused: string[] = [];
    const windowNs = BigInt(this.#o.tooFarBehindWindowMs) * 1_000_000n;
    for (const entry of entries) {
      const cutoff = state.highest - windowNs;
      if (state.highest >= 0n && entry.tsNanos < cutoff) {
        refused.push(
          `entry with timestamp ${goTime(entry.tsNanos)} ignored, reason: 'entry too far behind, entry timestamp is: ${rfc3339Seconds(entry.tsNanos)}, oldest acceptable timestamp is: ${rfc3339Seconds(cutoff)}',`,
        );
        continue;
      }
      const identity = `${entry.tsNanos}\u0000${entry.line}\u0000${JSON.stringify(Object.entries(entry.metadata).sort())}`;
      if (state.keys.has(identity)) continue; // a duplicate: dropped, not an error
      state.keys.add(identity);
      if (entry.tsNanos > state.highest) state.highest = entry.tsNanos;
      this.#entries.push({
        tenant,
        labels,
        tsNanos: entry.tsNanos,
        line: entry.line,
        metadata: entry.metadata,
      });
    }
    if (refused.length === 0) return undefined;
    const listed = refused.slice(0, this.#o.maxReturnedErrors);
    return `${listed.join('\n')}\nuser '${tenant}', total ignored: ${refused.length} out of ${entries.length} for stream: ${labels}`;
  }
}

const LOKI_STATUS_TEXT: Readonly<Record<number, string>> = {
  429: 'Ingestion rate limit exceeded for user audit (limit: 4194304 bytes/sec) while attempting to ingest lines',
  500: 'rpc error: code = Internal desc = internal server error',
  502: 'Bad Gateway',
  503: 'empty ring',
  504: 'Gateway Timeout',
};

async function readAll(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A LogQL label set `{a="x", b="y"}`; an error message when it is not one. */
function parseLabelSet(text: string): Array<[string, string]> | string {
  const trimmed = text.trim();
  if (!trimmed.startsWith('{') || !trimmed.endsWith('}')) return 'parse error: expected {';
  const body = trimmed.slice(1, -1).trim();
  const pairs: Array<[string, string]> = [];
  const re = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)/y;
  while (re.lastIndex < body.length) {
    const at = re.lastIndex;
    const m = re.exec(body);
    if (!m || m.index !== at) return `parse error at position ${at}`;
    const value = JSON.parse(`"${(m[2] as string).replace(/\\x([0-9a-fA-F]{2})/g, '\\u00$1')}"`) as string;
    if (m[1]?.startsWith('__')) return `label name ${m[1]} is reserved`;
    pairs.push([m[1] as string, value]);
  }
  return pairs.filter(([, v]) => v !== '');
}

function formatLabels(pairs: Array<[string, string]>): string {
  return `{${[...pairs]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([n, v]) => `${n}=${JSON.stringify(v)}`)
    .join(', ')}}`;
}

/** Go's time.Time.String() in UTC: `2006-01-02 15:04:05.999999999 +0000 UTC`, trailing zeros trimmed. */
function goTime(ns: bigint): string {
  const ms = Number(ns / 1_000_000n);
  const base = new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
  const fraction = (ns % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return `${base}${fraction ? `.${fraction}` : ''} +0000 UTC`;
}

function rfc3339Seconds(ns: bigint): string {
  return `${new Date(Number(ns / 1_000_000n)).toISOString().slice(0, 19)}Z`;
}
