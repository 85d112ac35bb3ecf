/**
 * A reverse proxy in front of the provider simulator that breaks responses at the transport level, which
 * the simulator itself cannot: a *truncated body* keeps the upstream's status and headers (its
 * Content-Length promises the whole body) but sends only part of the body, then drops the connection,
 * as a load balancer restarting or a connection reset mid-transfer would. The Host header is passed on
 * unchanged, so URLs the upstream builds from it (cloudscale's `next`/`poll_more`) point at the proxy.
 */
import { Agent, createServer, type IncomingMessage, request, type Server } from 'node:http';
import { Rng } from '../../src/simulator/random.ts';
import { closeServer, listenLoopback } from './loopback.ts';

export class FaultProxy {
  readonly #upstream: URL;
  readonly #server: Server;
  readonly #agent = new Agent({ keepAlive: true, maxSockets: 64 });
  readonly #rng: Rng;
  #truncateRate = 0;
  #queued = 0;
  url = '';
  readonly stats = { requests: 0, truncated: 0, upstreamErrors: 0 };

  constructor(upstream: string, seed: number | string = 1) {
    this.#upstream = new URL(upstream);
    this.#rng = Rng.fromString(`${seed}|fault-proxy`);
    this.#server = createServer((req, res) => {
      this.stats.requests++;
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

  clear(): void {
    this.#truncateRate = 0;
    this.#queued = 0;
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
