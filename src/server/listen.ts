/**
 * Serving the REST service on a TCP address with `Deno.serve`, and stopping it gracefully.
 * @module
 */
import type { Engine } from "../execution/engine.ts";
import { createServer, type ServerOptions, type StepflowServer } from "./server.ts";

/** Options of {@linkcode listen}. */
export interface ListenOptions extends ServerOptions {
  /** Address to bind. @default "127.0.0.1" */
  hostname?: string;
  /** TCP port; 0 picks a free one. @default 7840 */
  port?: number;
  /**
   * The URL other engines reach this service at (PostgreSQL store: registered in the `engines`
   * table; cancels are forwarded to it). Default: the bound address, or for `0.0.0.0`/`::` this
   * machine's host name with the port.
   */
  advertiseUrl?: string;
}

/** A service listening on an address. */
export interface ListeningService {
  server: StepflowServer;
  /** The bound address (the chosen port when 0 was asked). */
  hostname: string;
  port: number;
  /** `http://host:port` (IPv6 hosts in brackets). */
  url: string;
  /**
   * Stops gracefully: no new connections or runs; runs in progress get `graceMs` (default 30 s)
   * to finish, then are cancelled; open requests are answered. Does not close the engine.
   */
  shutdown(
    graceMs?: number,
  ): Promise<{ finished: number; cancelled: number; released?: number }>;
  /** Settles when the HTTP server has stopped. */
  finished: Promise<void>;
  /**
   * Resolves once the service takes part in its cluster (PostgreSQL store: registered in the
   * `engines` table with its URL, claiming runs); at once otherwise. Rejects with a
   * `StoreError` when the database cannot be written.
   */
  ready: Promise<void>;
}

/** Where other machines reach a service bound to `addr`: its host name for a wildcard address. */
function advertised(addr: Deno.NetAddr): string {
  let host = addr.hostname;
  if (host === "0.0.0.0" || host === "::") {
    try {
      host = Deno.hostname();
    } catch {
      // no --allow-sys=hostname: the address as bound
    }
  }
  return `http://${host.includes(":") ? `[${host}]` : host}:${addr.port}`;
}

/** True for loopback addresses (`127.0.0.0/8`, `::1`, `localhost`). */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * After a shutdown's runs are done, the longest wait for the requests still open (ms); then
 * `shutdown()` resolves and the rest are left to the process's exit.
 */
export const CONNECTION_GRACE_MS = 2_000;

/**
 * Starts the service on `engine` at `hostname:port`.
 * @throws {Error} when a non-loopback address is asked without a token (anyone who can reach
 * the address could run flows), or the address cannot be bound (`Deno.errors.AddrInUse`, ...).
 */
export function listen(engine: Engine, options: ListenOptions = {}): ListeningService {
  const hostname = options.hostname ?? "127.0.0.1";
  if (!isLoopback(hostname) && !options.token) {
    throw new Error(
      `refusing to listen on ${hostname} without a token: anyone who can reach that address could run flows. Set --token (or STEPFLOW_TOKEN); clients then send 'Authorization: Bearer <token>'`,
    );
  }
  const serverOptions: ServerOptions = { ...options };
  if (isLoopback(hostname) && !options.token && options.allowedHosts === undefined) {
    // without a token, only names of this machine (a guard against DNS rebinding)
    serverOptions.allowedHosts = ["localhost", "127.0.0.1", "[::1]", hostname.toLowerCase()];
  }
  const server = createServer(engine, serverOptions);
  const http = Deno.serve({
    hostname,
    port: options.port ?? 7840,
    onListen: () => {},
  }, server.fetch);
  const addr = http.addr as Deno.NetAddr;
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  let stopping:
    | Promise<{ finished: number; cancelled: number; released?: number }>
    | undefined;
  const url = `http://${host}:${addr.port}`;
  const ready = server.service.cluster?.start(options.advertiseUrl ?? advertised(addr)) ??
    Promise.resolve();
  ready.catch(() => {}); // the caller awaits it
  return {
    server,
    hostname: addr.hostname,
    port: addr.port,
    url,
    finished: http.finished,
    ready,
    shutdown(graceMs = 30_000) {
      return stopping ??= (async () => {
        const drained = server.shutdown(graceMs);
        // stops accepting connections; waits for the requests in progress (which end when
        // their runs end, or are cancelled by the drain) ...
        const closed = http.shutdown();
        await drained;
        // ... and, once the runs are done, at most CONNECTION_GRACE_MS more for the requests
        // whose clients hold them open (a body that stopped arriving, an event stream of a run
        // left paused): before, `stepflow serve` did not exit on SIGTERM until they went away
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([
          closed,
          new Promise<void>((resolve) => timer = setTimeout(resolve, CONNECTION_GRACE_MS)),
        ]);
        clearTimeout(timer);
        return await drained;
      })();
    },
  };
}
