import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it, vi } from 'vitest';
import { simulate } from '../../src/cli/commands/simulate.ts';
import { attribute, locatedRecords } from '../../src/otlp/model.ts';
import { decodeProtobufRequest, encodeProtobufResponse } from '../../src/otlp/protobuf.ts';
import type { Simulator } from '../../src/simulator/index.ts';

describe('auditlog-shipper simulate --push', () => {
  it('pushes the simulated STACKIT events to a receiver as a Telemetry Router would, with the bearer token', async () => {
    const ids: string[] = [];
    const auth: Array<string | undefined> = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        auth.push(req.headers.authorization);
        const { request } = decodeProtobufRequest(gunzipSync(Buffer.concat(chunks)));
        for (const r of locatedRecords(request)) {
          const id = attribute(r.record.attributes, 'stackit.log.id');
          if (id?.kind === 'string') ids.push(id.value);
        }
        res.writeHead(200, { 'content-type': 'application/x-protobuf' });
        res.end(Buffer.from(encodeProtobufResponse({})));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const started = Date.now();
    let stop = (): void => {};
    const until = new Promise<void>((resolve) => {
      stop = resolve;
    });
    let sim: Simulator | undefined;
    let out = '';
    let err = '';
    const done = simulate(
      {
        host: '127.0.0.1',
        port: 0,
        seed: 9,
        scopes: 1,
        rate: 600,
        token: 'sim-token',
        lateFraction: 0,
        lateMax: 0,
        errorRate: 0,
        push: url,
      },
      {
        env: { SIM_PUSH_TOKEN: 'push-secret' },
        out: (t) => (out += t),
        err: (t) => (err += t),
        until,
        onStarted: (s) => {
          sim = s;
        },
      },
    );
    try {
      await vi.waitFor(() => expect(ids.length).toBeGreaterThan(0), { timeout: 25_000, interval: 200 });
    } finally {
      stop();
      expect(await done).toBe(0);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    expect(out).toContain(`push:    every STACKIT event, as it becomes visible, to ${url}`);
    expect(out).not.toContain('push-secret');
    expect(new Set(auth)).toEqual(new Set(['Bearer push-secret']));
    expect(err).toMatch(/router push: \d+ records acknowledged, 0 redelivered, 0 dropped/);
    // Every pushed id is a real event of the simulated scope.
    const [scope] = sim?.truth.scopes() ?? [];
    const known = new Set(
      sim?.truth
        .events({
          scope: { kind: 'project', id: scope?.id as string },
          fromMs: started - 60_000,
          toMs: Date.now() + 60_000,
        })
        .map((e) => e.id),
    );
    for (const id of ids) expect(known.has(id)).toBe(true);
  });
});
