/**
 * The simulator's HTTP server: node:http, a small route registry, fixed-length bodies, delayed replies
 * and socket resets. Provider modules (STACKIT audit log now; Resource Manager, token endpoint and
 * cloudscale later) contribute `Route`s; the server knows nothing about any provider.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { SimClock } from './clock.ts';
import type { FaultInjector, RateBudget } from './faults.ts';
import type { Observation, ObservedInit, Observer } from './observe.ts';

/** A complete response. The server adds `Content-Length`. */
export interface SimResponse {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>> | undefined;
  readonly body: string | Buffer;
  /** Send only after this many milliseconds (a slow provider). */
  readonly delayMs?: number | undefined;
}

/** Reset the connection without any response. */
export interface SimReset {
  readonly reset: true;
  readonly delayMs?: number | undefined;
}

/** A chunked response (control endpoints that stream, e.g. NDJSON truth). */
export interface SimStream {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>> | undefined;
  readonly stream: Iterable<string>;
}

export type SimReply = SimResponse | SimReset | SimStream;

export interface RouteContext {
  readonly req: IncomingMessage;
  readonly method: string;
  readonly url: URL;
  /** Capture groups of the route's path pattern. */
  readonly params: readonly string[];
  /** Request body as text (read for PUT/POST/PATCH/DELETE only). */
  readonly body: string;
  /**
   * Marks this as an observed provider-API request (request log, stats, in-flight per scope); call it
   * once, synchronously, before any await. The result may be updated until the response ends.
   */
  readonly observe: (init: ObservedInit) => Observation;
}

export interface Route {
  /** For logs and errors, e.g. `stackit.audit-log`. */
  readonly name: string;
  readonly methods: readonly string[];
  readonly path: RegExp;
  readonly handle: (ctx: RouteContext) => SimReply | Promise<SimReply>;
}

/** A provider module: a named set of routes. */
/** What every provider API the simulator serves shares with the others. */
export interface ProviderSimDeps {
  readonly seed: number;
  readonly clock: SimClock;
  readonly faults: FaultInjector;
  readonly budget: RateBudget;
  /** Whether 429 responses carry `Retry-After` (read per request, so it can change at runtime). */
  readonly retryAfterHeader: () => boolean;
}

export interface SimModule {
  readonly name: string;
  readonly routes: readonly Route[];
}

export interface SimServerOptions {
  readonly host: string;
  readonly port: number;
  readonly routes: readonly Route[];
  readonly observer: Observer;
}

export interface SimServer {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

const MAX_BODY = 1 << 20;

function json(status: number, value: unknown): SimResponse {
  return { status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(value) };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > MAX_BODY) throw new Error('request body too large');
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export async function startSimServer(options: SimServerOptions): Promise<SimServer> {
  const { routes, observer } = options;
  const timers = new Set<NodeJS.Timeout>();
  const sockets = new Set<Socket>();
  let closing = false;

  const send = (req: IncomingMessage, res: ServerResponse, reply: SimReply): void => {
    if (res.destroyed || closing) {
      res.destroy();
      return;
    }
    if ('reset' in reply) {
      req.socket.resetAndDestroy();
      return;
    }
    if ('stream' in reply) {
      res.writeHead(reply.status, { ...reply.headers });
      const iterator = reply.stream[Symbol.iterator]();
      const pump = (): void => {
        try {
          for (;;) {
            if (res.destroyed) return;
            const step = iterator.next();
            if (step.done) {
              res.end();
              return;
            }
            if (!res.write(step.value)) {
              res.once('drain', pump);
              return;
            }
          }
        } catch (error) {
          res.destroy(error instanceof Error ? error : new Error(String(error)));
        }
      };
      pump();
      return;
    }
    res.writeHead(reply.status, {
      ...reply.headers,
      'content-length': String(Buffer.byteLength(reply.body)),
    });
    res.end(reply.body);
  };

  const dispatch = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://simulator.invalid');
    let matched: { route: Route; params: string[] } | undefined;
    let pathMatched = false;
    for (const route of routes) {
      const m = route.path.exec(url.pathname);
      if (!m) continue;
      pathMatched = true;
      if (route.methods.includes(method)) {
        matched = { route, params: m.slice(1).map((p) => p ?? '') };
        break;
      }
    }
    if (!matched) {
      const status = pathMatched ? 405 : 404;
      send(
        req,
        res,
        json(status, {
          message: pathMatched ? `Method ${method} not allowed` : 'Not Found',
          path: url.pathname,
          status: pathMatched ? 'Method Not Allowed' : 'Not Found',
          timestamp: new Date().toISOString(),
        }),
      );
      return;
    }
    let body = '';
    if (method !== 'GET' && method !== 'HEAD') body = await readBody(req);

    let observation: Observation | undefined;
    const ctx: RouteContext = {
      req,
      method,
      url,
      params: matched.params,
      body,
      observe: (init) => {
        if (observation) return observation;
        const pending = observer.begin(init, method, url.pathname, req.headers['user-agent']);
        observation = pending;
        res.once('close', () => observer.end(pending, res.headersSent ? res.statusCode : 0));
        return pending;
      },
    };
    let reply: SimReply;
    try {
      reply = await matched.route.handle(ctx);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      reply = json(500, { message: `simulator error in ${matched.route.name}: ${message}`, status: 500 });
    }
    const delayMs = 'delayMs' in reply ? (reply.delayMs ?? 0) : 0;
    if (delayMs > 0) {
      const timer = setTimeout(() => {
        timers.delete(timer);
        send(req, res, reply);
      }, delayMs);
      timers.add(timer);
      return;
    }
    send(req, res, reply);
  };

  const server: Server = createServer({ keepAlive: true }, (req, res) => {
    dispatch(req, res).catch((error: unknown) => {
      if (!res.headersSent) {
        const message = error instanceof Error ? error.message : String(error);
        send(req, res, json(400, { message, status: 'Bad Request' }));
      } else res.destroy();
    });
  });
  server.keepAliveTimeout = 65_000;
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  // A client resetting its side mid-request must not take the simulator down.
  server.on('clientError', (_error, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const hostForUrl = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  let closed: Promise<void> | undefined;
  return {
    url: `http://${hostForUrl}:${address.port}`,
    host: address.address,
    port: address.port,
    close(): Promise<void> {
      closed ??= new Promise<void>((resolve) => {
        closing = true;
        for (const timer of timers) clearTimeout(timer);
        timers.clear();
        server.close(() => resolve());
        server.closeAllConnections();
        for (const socket of sockets) socket.destroy();
      });
      return closed;
    },
  };
}
