/**
 * A reverse proxy in front of the provider simulator that breaks responses at the transport level, which
 * the simulator itself cannot: a *truncated body* keeps the upstream's status and headers (its
 * Content-Length promises the whole body) but sends only part of the body, then drops the connection,
 * as a load balancer restarting or a connection reset mid-transfer would. The Host header is passed on
 * unchanged, so URLs the upstream builds from it (cloudscale's `next`/`poll_more`) point at the proxy.
 */
import {
  Agent,
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  request,
  type Server,
  type ServerResponse,
} from 'node:http';
import { Rng } from '../../src/simulator/random.ts';
import { closeServer, listenLoopback } from './loopback.ts';

/** What a request looked like when it reached the proxy (headers lower-case, as node gives them). */
export interface ProxiedRequest {
  readonly method: string;
  /** Path and query. */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
}

/** An answer the upstream would have given (status, headers, body), as a rewrite sees and returns it. */
export interface ProxiedReply {
  readonly status: number;
  readonly headers: OutgoingHttpHeaders;
  readonly body: Buffer;
}

/**
 * How one request is mistreated, for hostile-provider tests. `reply` answers without asking the
 * upstream; `rewrite` asks the upstream and alters its answer; `drip` sends the upstream's answer a few
 * bytes at a time (slowloris); `reset` answers with headers and part of the body, then resets.
 */
export type Misbehaviour =
  | {
      readonly type: 'reply';
      readonly status: number;
      readonly headers?: OutgoingHttpHeaders;
      readonly body: string | Buffer;
    }
  | { readonly type: 'rewrite'; readonly edit: (reply: ProxiedReply) => ProxiedReply }
  | { readonly type: 'drip'; readonly bytesPerTick: number; readonly tickMs: number }
  | { readonly type: 'reset' };

/** Chooses a misbehaviour for a request, or undefined to pass it on unchanged. */
export type MisbehaviourRule = (req: ProxiedRequest) => Misbehaviour | undefined;

export class FaultProxy {
  readonly #upstream: URL;
  readonly #server: Server;
  readonly #agent = new Agent({ keepAlive: true, maxSockets: 64 });
  readonly #rng: Rng;
  #truncateRate = 0;
  #queued = 0;
  #rule: MisbehaviourRule | undefined;
  url = '';
  readonly stats = { requests: 0, truncated: 0, upstreamErrors: 0 };

  constructor(upstream: string, seed: number | string = 1) {
    this.#upstream = new URL(upstream);
    this.#rng = Rng.fromString(`${seed}|fault-proxy`);
    this.#server = createServer((req, res) => {
      this.stats.requests++;
      const misbehaviour = this.#rule?.({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
      });
      if (misbehaviour?.type === 'reply') {
        req.resume();
        res.writeHead(misbehaviour.status, misbehaviour.headers ?? { 'content-type': 'application/json' });
        res.end(misbehaviour.body);
        return;
      }
      if (misbehaviour !== undefined) {
        this.#misbehave(req, res, misbehaviour);
        return;
      }
      const truncate = this.#drawTruncate();
      const upstreamReq = request(
        {
          host: this.#upstream.hostname,
          port: this.#upstream.port,
          method: req.method,
          path: req.url,
          headers: req.headers,
          agent: this.#agent,
        },
        (upstreamRes: IncomingMessage) => {
          if (!truncate || upstreamRes.statusCode !== 200) {
            res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
            upstreamRes.pipe(res);
            return;
          }
          const chunks: Buffer[] = [];
          upstreamRes.on('data', (chunk: Buffer) => chunks.push(chunk));
          upstreamRes.on('end', () => {
            const body = Buffer.concat(chunks);
            this.stats.truncated++;
            const { 'transfer-encoding': _chunked, ...headers } = upstreamRes.headers;
            res.writeHead(200, { ...headers, 'content-length': String(body.length) });
            res.write(body.subarray(0, Math.floor(body.length / 2)), () => {
              // Let the partial body leave before the connection goes: a cut transfer, not a refusal.
              setTimeout(() => res.socket?.destroy(), 5);
            });
          });
        },
      );
      upstreamReq.on('error', () => {
        this.stats.upstreamErrors++;
        res.socket?.destroy(); // the simulator reset the connection: pass the reset on
      });
      req.pipe(upstreamReq);
    });
  }

  async start(): Promise<string> {
    this.url = await listenLoopback(this.#server);
    return this.url;
  }

  /** Responses with status 200 are truncated with this probability (0 turns it off). */
  setTruncateRate(rate: number): void {
    this.#truncateRate = rate;
  }

  /** The next `count` 200 responses are truncated. */
  truncateNext(count: number): void {
    this.#queued += count;
  }

  /** From now on every request is first shown to `rule` (undefined: none). */
  misbehave(rule: MisbehaviourRule | undefined): void {
    this.#rule = rule;
  }

  clear(): void {
    this.#truncateRate = 0;
    this.#queued = 0;
    this.#rule = undefined;
  }

  /** Asks the upstream, buffering its answer, then mistreats the answer as told. */
  #misbehave(req: IncomingMessage, res: ServerResponse, how: Exclude<Misbehaviour, { type: 'reply' }>): void {
    const upstreamReq = request(
      {
        host: this.#upstream.hostname,
        port: this.#upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
        agent: this.#agent,
      },
      (upstreamRes: IncomingMessage) => {
        const chunks: Buffer[] = [];
        upstreamRes.on('data', (chunk: Buffer) => chunks.push(chunk));
        upstreamRes.on('end', () => {
          const {
            'transfer-encoding': _chunked,
            'content-length': _length,
            ...headers
          } = upstreamRes.headers;
          let reply: ProxiedReply = {
            status: upstreamRes.statusCode ?? 502,
            headers,
            body: Buffer.concat(chunks),
          };
          if (how.type === 'rewrite') reply = how.edit(reply);
          res.writeHead(reply.status, { ...reply.headers, 'content-length': String(reply.body.length) });
          if (how.type === 'reset') {
            res.write(reply.body.subarray(0, Math.floor(reply.body.length / 2)), () => {
              setTimeout(() => res.socket?.destroy(), 5);
            });
          } else if (how.type === 'drip') {
            this.#drip(res, reply.body, how.bytesPerTick, how.tickMs);
          } else {
            res.end(reply.body);
          }
        });
      },
    );
    upstreamReq.on('error', () => {
      this.stats.upstreamErrors++;
      res.socket?.destroy();
    });
    req.pipe(upstreamReq);
  }

  #drip(res: ServerResponse, body: Buffer, bytesPerTick: number, tickMs: number): void {
    let offset = 0;
    const timer = setInterval(() => {
      if (res.destroyed || offset >= body.length) {
        clearInterval(timer);
        if (!res.destroyed) res.end();
        return;
      }
      res.write(body.subarray(offset, offset + bytesPerTick));
      offset += bytesPerTick;
    }, tickMs);
    res.on('close', () => clearInterval(timer));
  }

  async stop(): Promise<void> {
    this.#agent.destroy();
    await closeServer(this.#server);
  }

  #drawTruncate(): boolean {
    if (this.#queued > 0) {
      this.#queued--;
      return true;
    }
    // Always one draw, so the sequence depends only on the number of requests.
    return this.#rng.next() < this.#truncateRate;
  }
}
