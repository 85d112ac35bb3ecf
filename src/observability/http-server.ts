import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Metrics } from './metrics.ts';

export interface ReadinessCheck {
  readonly name: string;
  /** Resolves with a problem description, or undefined when healthy. */
  readonly check: () => Promise<string | undefined>;
}

/**
 * How long one readiness check may take. A check that waits on a stalled dependency (Redis paused or
 * unreachable, its commands queued) counts as a problem once this passes, so /readyz always answers
 * within about a second.
 */
const CHECK_DEADLINE_MS = 800;

/**
 * `/metrics` for Prometheus, `/healthz` (the process answers: liveness) and `/readyz` (Redis reachable,
 * config loaded, workers running: readiness). Kept apart from any data path so a stuck sink never makes
 * the pod look dead, only not ready.
 */
export class ObservabilityServer {
  readonly #server: Server;
  readonly #metrics: Metrics;
  readonly #checks: readonly ReadinessCheck[];

  constructor(metrics: Metrics, checks: readonly ReadinessCheck[]) {
    this.#metrics = metrics;
    this.#checks = checks;
    this.#server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405).end();
        return;
      }
      if (path === '/metrics') {
        this.#metrics.scrape().then(
          (body) => res.writeHead(200, { 'content-type': this.#metrics.registry.contentType }).end(body),
          (error: unknown) => res.writeHead(500).end(String(error)),
        );
      } else if (path === '/healthz') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      } else if (path === '/readyz') {
        this.#readiness().then((problems) => {
          const ready = Object.keys(problems).length === 0;
          res
            .writeHead(ready ? 200 : 503, { 'content-type': 'application/json' })
            .end(`${JSON.stringify({ ready, problems })}\n`);
        });
      } else {
        res.writeHead(404).end();
      }
    });
  }

  async #readiness(): Promise<Record<string, string>> {
    const problems: Record<string, string> = {};
    await Promise.all(
      this.#checks.map(async ({ name, check }) => {
        let timer: NodeJS.Timeout | undefined;
        const deadline = new Promise<string>((resolve) => {
          timer = setTimeout(() => resolve(`no answer within ${CHECK_DEADLINE_MS} ms`), CHECK_DEADLINE_MS);
        });
        try {
          const problem = await Promise.race([check(), deadline]);
          if (problem !== undefined) problems[name] = problem;
        } catch (error) {
          problems[name] = error instanceof Error ? error.message : String(error);
        } finally {
          clearTimeout(timer);
        }
      }),
    );
    return problems;
  }

  async listen(host: string, port: number): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    return (this.#server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
