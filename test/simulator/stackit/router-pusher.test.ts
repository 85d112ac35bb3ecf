import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decodeJsonRequest, encodeJsonResponse } from '../../../src/otlp/json.ts';
import { attribute, type LogsRequest, locatedRecords } from '../../../src/otlp/model.ts';
import { GRPC_EXPORT_PATH } from '../../../src/otlp/proto.ts';
import { decodeProtobufRequest, encodeProtobufResponse } from '../../../src/otlp/protobuf.ts';
import {
  makeScopeIds,
  type Simulator,
  startSimulator,
  type TruthEvent,
} from '../../../src/simulator/index.ts';
import {
  AUDIT_SCOPE_NAME,
  auditLogRecord,
  rfc3339ToNanos,
} from '../../../src/simulator/stackit/audit-records.ts';
import { RouterPushLoop } from '../../../src/simulator/stackit/router-loop.ts';
import { type PushTarget, RouterPusher, routerFeed } from '../../../src/simulator/stackit/router-pusher.ts';

const [PROJECT] = makeScopeIds(71, 1) as [string];
let sim: Simulator;
let events: TruthEvent[];

/** Scripted answers, then 200: what the receiver answers to the next requests. */
type Answer = { status: number; retryAfter?: string; grpcCode?: grpc.status };

interface Received {
  readonly headers: IncomingMessage['headers'];
  readonly ids: string[];
  readonly request: LogsRequest;
}

/** A small OTLP/HTTP receiver: decodes each request, records it, answers from the script. */
async function startReceiver(
  script: Answer[],
): Promise<{ url: string; received: Received[]; close: () => Promise<void> }> {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
      const json = req.headers['content-type'] === 'application/json';
      const decoded = json ? decodeJsonRequest(body.toString('utf8')) : decodeProtobufRequest(body);
      received.push({ headers: req.headers, ids: idsOf(decoded.request), request: decoded.request });
      const answer = script.shift() ?? { status: 200 };
      if (answer.status !== 200) {
        res.writeHead(answer.status, answer.retryAfter ? { 'retry-after': answer.retryAfter } : {});
        res.end();
        return;
      }
      const reply = json ? Buffer.from(encodeJsonResponse({})) : Buffer.from(encodeProtobufResponse({}));
      res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/x-protobuf' });
      res.end(reply);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function idsOf(request: LogsRequest): string[] {
  return [...locatedRecords(request)].map((r) => {
    const value = attribute(r.record.attributes, 'stackit.log.id');
    return value?.kind === 'string' ? value.value : '';
  });
}

/** Records the pusher's waits instead of waiting: Retry-After is checked as logic, not timing. */
function recordingSleep(): { sleep: (ms: number) => Promise<void>; waits: number[] } {
  const waits: number[] = [];
  return { waits, sleep: async (ms) => void waits.push(ms) };
}

const closers: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

beforeAll(async () => {
  const now = Date.now();
  sim = await startSimulator({
    seed: 71,
    stackit: {
      scopes: [{ kind: 'project', id: PROJECT, eventsPerMinute: 40 }],
      trafficStartMs: now - 10 * 60_000,
    },
  });
  events = sim.truth.events({ scope: { kind: 'project', id: PROJECT }, toMs: now - 60_000 });
});
afterAll(async () => {
  await sim.close();
});

describe('audit records in STACKIT’s data format', () => {
  it('carry the documented attributes on the log record, nanosecond time, scope stackit-audit-provider', () => {
    const event = events[0] as TruthEvent;
    const record = auditLogRecord(event);
    const keys = record.attributes.map((a) => a.key);
    for (const key of [
      'service.name',
      'service.instance.id',
      'cloud.region',
      'cloud.provider',
      'stackit.resource.type',
      'stackit.resource.id',
      'stackit.log.id',
      'stackit.log.type',
      'stackit.action',
      'stackit.initiator',
      'user_agent.original',
      'http.request.method',
      'url.path',
      'client.address',
    ]) {
      expect(keys, key).toContain(key);
    }
    expect(attribute(record.attributes, 'stackit.log.id')).toEqual({ kind: 'string', value: event.id });
    expect(attribute(record.attributes, 'stackit.resource.type')).toEqual({
      kind: 'string',
      value: 'PROJECT',
    });
    expect(attribute(record.attributes, 'stackit.log.type')).toEqual({ kind: 'string', value: 'AUDIT' });
    expect(record.timeUnixNano).toBe(rfc3339ToNanos(event.eventTimeText, event.eventTimeMs));
    expect(rfc3339ToNanos('2026-12-02T10:00:00.123456789Z', 0)).toBe(
      BigInt(Date.UTC(2026, 11, 2, 10)) * 1_000_000n + 123_456_789n,
    );
    expect(record.body).toMatchObject({ kind: 'string' });
  });
});

describe('the Telemetry Router pusher', () => {
  it('retries 429 and 5xx, honouring Retry-After, until every batch is acknowledged (protobuf, gzip)', async () => {
    const receiver = await startReceiver([
      { status: 429, retryAfter: '2' },
      { status: 503, retryAfter: '1' },
      { status: 500 },
    ]);
    closers.push(receiver.close);
    const { sleep, waits } = recordingSleep();
    const pusher = new RouterPusher({
      target: { uri: receiver.url, bearerToken: 'router-to-receiver' },
      batchSize: 50,
      initialBackoffMs: 40,
      sleep,
    });
    const records = events.slice(0, 120).map(auditLogRecord);
    const report = await pusher.push(records);

    expect(waits).toEqual([2_000, 1_000, 160]); // Retry-After twice, then backoff (third attempt: 40·2²)
    expect(report.statuses).toEqual({ '429': 1, '503': 1, '500': 1, ok: 3 });
    expect(report.dropped).toEqual([]);
    expect(new Set(report.acknowledged)).toEqual(
      new Set(records.map((_, i) => (events[i] as TruthEvent).id)),
    );
    // The first batch arrived four times (three refusals), the others once: 6 requests of ≤ 50 records.
    expect(receiver.received.map((r) => r.ids.length)).toEqual([50, 50, 50, 50, 50, 20]);
    expect(new Set(receiver.received.flatMap((r) => r.ids))).toEqual(new Set(report.acknowledged));
    for (const r of receiver.received) {
      expect(r.headers).toMatchObject({
        'content-type': 'application/x-protobuf',
        'content-encoding': 'gzip',
        authorization: 'Bearer router-to-receiver',
      });
      const [resourceLogs] = r.request.resourceLogs;
      expect(resourceLogs?.resource?.attributes).toEqual([]);
      expect(resourceLogs?.scopeLogs[0]?.scope?.name).toBe(AUDIT_SCOPE_NAME);
    }
  });

  it('redelivers acknowledged batches and sends batches out of order (JSON, basic auth)', async () => {
    const receiver = await startReceiver([]);
    closers.push(receiver.close);
    const pusher = new RouterPusher({
      target: { uri: `${receiver.url}/v1/logs`, basicAuth: { username: 'router', password: 'pw' } },
      protocol: 'http/json',
      gzip: false,
      batchSize: 25,
      redeliverRate: 1,
      shuffle: true,
      seed: 3,
    });
    const records = events.slice(0, 100).map(auditLogRecord);
    const report = await pusher.push(records);
    expect(report.redelivered).toBe(100);
    const counts = new Map<string, number>();
    for (const id of receiver.received.flatMap((r) => r.ids)) counts.set(id, (counts.get(id) ?? 0) + 1);
    expect(counts.size).toBe(100);
    expect([...counts.values()].every((n) => n === 2)).toBe(true);
    // Every batch arrives whole and twice in a row (a redelivery follows its original).
    const batches = receiver.received.map((r) => r.ids.join(','));
    for (let i = 0; i < batches.length; i += 2) expect(batches[i + 1]).toBe(batches[i]);
    expect(receiver.received[0]?.headers).toMatchObject({
      'content-type': 'application/json',
      authorization: `Basic ${Buffer.from('router:pw').toString('base64')}`,
    });
  });

  it('gives a batch up after maxElapsedMs or a non-retryable answer, and says which records', async () => {
    const receiver = await startReceiver([
      { status: 400 },
      { status: 503, retryAfter: '120' },
      { status: 503, retryAfter: '120' },
    ]);
    closers.push(receiver.close);
    const { sleep, waits } = recordingSleep();
    const pusher = new RouterPusher({
      target: { uri: receiver.url },
      batchSize: 10,
      maxElapsedMs: 200_000,
      sleep,
    });
    const records = events.slice(0, 20).map(auditLogRecord);
    const report = await pusher.push(records);
    expect(report.dropped).toEqual([...events.slice(0, 10), ...events.slice(10, 20)].map((e) => e.id));
    expect(waits).toEqual([120_000]);
    expect(report.acknowledged).toEqual([]);
  });

  it('pushes over OTLP/gRPC and retries UNAVAILABLE', async () => {
    const received: string[][] = [];
    let refusals = 1;
    const server = new grpc.Server();
    server.addService(
      {
        Export: {
          path: GRPC_EXPORT_PATH,
          requestStream: false,
          responseStream: false,
          requestSerialize: (v: Buffer) => v,
          requestDeserialize: (v: Buffer) => v,
          responseSerialize: (v: Buffer) => v,
          responseDeserialize: (v: Buffer) => v,
        },
      },
      {
        Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
          const { request } = decodeProtobufRequest(call.request);
          received.push(idsOf(request));
          if (call.metadata.get('authorization')[0] !== 'Bearer grpc-token') {
            callback({ code: grpc.status.UNAUTHENTICATED, details: 'no' });
          } else if (refusals-- > 0) {
            callback({ code: grpc.status.UNAVAILABLE, details: 'busy' });
          } else {
            callback(null, Buffer.from(encodeProtobufResponse({})));
          }
        },
      },
    );
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, p) =>
        error ? reject(error) : resolve(p),
      ),
    );
    closers.push(() => new Promise<void>((resolve) => server.tryShutdown(() => resolve())));
    const { sleep, waits } = recordingSleep();
    const pusher = new RouterPusher({
      target: { uri: `http://127.0.0.1:${port}`, bearerToken: 'grpc-token' },
      protocol: 'grpc',
      batchSize: 30,
      initialBackoffMs: 25,
      sleep,
    });
    closers.push(() => pusher.close());
    const records = events.slice(0, 60).map(auditLogRecord);
    const report = await pusher.push(records);
    expect(report.statuses).toEqual({ [`grpc:${grpc.status.UNAVAILABLE}`]: 1, ok: 2 });
    expect(waits).toEqual([25]);
    expect(received.map((ids) => ids.length)).toEqual([30, 30, 30]);
    expect(new Set(received.flat())).toEqual(new Set(events.slice(0, 60).map((e) => e.id)));
  });
});

describe('a router built through the management APIs', () => {
  it('pushes the events of exactly the containers linked to it, to its destination', async () => {
    const receiver = await startReceiver([]);
    closers.push(receiver.close);
    const org = sim.resourceManager.addOrganization().id;
    const linked = sim.resourceManager.addProject(org, { eventsPerMinute: 30 }).id;
    const unlinked = sim.resourceManager.addProject(org, { eventsPerMinute: 30 }).id;
    const routerProject = sim.resourceManager.addProject(org).id;
    const api = async (method: string, path: string, body: unknown) => {
      const res = await fetch(`${sim.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${sim.token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return (await res.json()) as Record<string, string>;
    };
    // Links settle at once here: what is pushed depends on which links are active, not on timing.
    sim.telemetry.reconcileMs = 0;
    const base = `/v1/projects/${routerProject}/regions/eu01/telemetry-routers`;
    const router = await api('POST', base, { displayName: 'r' });
    const token = await api('POST', `${base}/${router.id}/access-tokens`, { displayName: 't' });
    await api('POST', `${base}/${router.id}/destinations`, {
      displayName: 'receiver',
      config: { configType: 'OpenTelemetry', openTelemetry: { uri: receiver.url, bearerToken: 'feed' } },
    });
    await api('PUT', `/v1/projects/${linked}/regions/eu01/telemetry-link`, {
      displayName: 'l',
      telemetryRouterId: router.id,
      enabled: true,
      accessToken: token.accessToken,
    });
    const toMs = Date.now() + 3_600_000;

    const feed = routerFeed(sim.telemetry, sim.truth, router.id as string, { fromMs: 0, toMs });
    expect(feed.targets).toEqual([{ uri: receiver.url, bearerToken: 'feed', basicAuth: undefined }]);
    const truth = sim.truth.events({ scope: { kind: 'project', id: linked }, fromMs: 0, toMs });
    expect(truth.length).toBeGreaterThan(0);
    const pusher = new RouterPusher({ target: feed.targets[0] as PushTarget });
    const report = await pusher.push(feed.records);
    expect(new Set(receiver.received.flatMap((r) => r.ids))).toEqual(new Set(truth.map((e) => e.id)));
    expect(report.acknowledged).toHaveLength(truth.length);
    const unlinkedIds = new Set(
      sim.truth.events({ scope: { kind: 'project', id: unlinked }, fromMs: 0, toMs }).map((e) => e.id),
    );
    expect(receiver.received.flatMap((r) => r.ids).filter((id) => unlinkedIds.has(id))).toEqual([]);
  });
});

describe('a router that keeps pushing (RouterPushLoop)', () => {
  it('pushes each event once as it becomes visible, rotating over two replicas, one of them down', async () => {
    const t0 = Date.UTC(2026, 11, 2, 8, 0, 0);
    let t = t0;
    const [project] = makeScopeIds(72, 1) as [string];
    const own = await startSimulator({
      seed: 72,
      now: () => t,
      stackit: {
        scopes: [{ kind: 'project', id: project, eventsPerMinute: 30 }],
        trafficStartMs: t0 - 60_000,
      },
    });
    closers.push(() => own.close());
    const up = await startReceiver([]);
    closers.push(up.close);
    const down = await startReceiver([]);
    await down.close(); // a replica that is gone: connections are refused
    const { sleep } = recordingSleep();
    const loop = new RouterPushLoop({
      truth: own.truth,
      clock: own.clock,
      pusher: new RouterPusher({
        target: [{ uri: down.url }, { uri: up.url }],
        batchSize: 40,
        initialBackoffMs: 10,
        sleep,
      }),
      scopes: () => [{ kind: 'project', id: project }],
      fromMs: t0,
    });
    t = t0 + 5 * 60_000;
    await loop.round();
    t += 5 * 60_000;
    await loop.round();
    await loop.round(); // nothing new became visible: nothing is sent again
    const report = await loop.stop();

    const truth = own.truth.events({
      scope: { kind: 'project', id: project },
      fromMs: t0,
      toMs: t,
      visibleBy: t,
    });
    expect(truth.length).toBeGreaterThan(100);
    const received = up.received.flatMap((r) => r.ids);
    expect(received.sort()).toEqual(truth.map((e) => e.id).sort()); // each exactly once
    expect(report.statuses.network).toBeGreaterThan(0);
    expect(report.dropped).toEqual([]);
    expect(new Set(report.acknowledged)).toEqual(new Set(received));
  });
});
