/**
 * `stepflow serve [--port N] [--host H] [--config C] [--store S] [--token T] ...`: the REST
 * service (stepflow 0.8's `stepflow-server`, see docs/server.md). When it listens it prints ONE
 * JSON line on stderr: `{"event":"listening","url":"http://127.0.0.1:7840","host":...,"port":...,
 * "store":...,"pid":...}` (with `--port 0` the chosen port is there).
 *
 * SIGTERM / Ctrl-C stop it gracefully: no new connections or runs; runs in progress get
 * `--shutdown-timeout` (default 30s) to finish, then are cancelled; step services are closed;
 * exit code 0. A second signal exits at once (130).
 *
 * Exit codes: 0 after a graceful stop; 1 when the engine or the listener cannot start; 2 for bad
 * usage or an invalid config (including a non-loopback `--host` without a token).
 * The server code (Hono) is loaded only by this command, so `stepflow run` does not pay for it.
 * @module
 */
import type { Command } from "commander";
import type { SetExit } from "./output.ts";
import { EXIT_FAILED, EXIT_INVALID, EXIT_OK } from "./exit_codes.ts";
import { writeStderr } from "./output.ts";
import { onCancelSignals } from "./signals.ts";
import { startFailure } from "./run.ts";
import { loadConfigForFlow } from "../config/load.ts";
import { validateConfig } from "../config/preflight.ts";
import { formatDiagnostic } from "../core/diagnostics.ts";
import { Engine } from "../execution/engine.ts";
import { parseDuration } from "../core/duration.ts";
import { openStateStore, storeConfigFromUrl, storeGivenBy } from "../state/create.ts";
import { checkSqliteStore } from "./store_option.ts";
import { describePostgresUrl } from "../state/postgres_url.ts";
import type { StateStoreConfig } from "../config/model.ts";
import type { StateStore } from "../state/store.ts";
import { describeError, FlowLoadError, UsageError } from "../errors.ts";
import { isJsonObject } from "../json/exact_json.ts";

interface ServeFlags {
  port?: string;
  host?: string;
  config?: string;
  store?: string;
  token?: string;
  maxBodySize?: string;
  maxConcurrentRuns?: string;
  maxQueuedRuns?: string;
  maxEventStreams?: string;
  shutdownTimeout?: string;
  corsOrigin?: string[];
  /** false with `--no-resume`. */
  resume?: boolean;
  leaseTtl?: string;
  advertiseUrl?: string;
  sqliteCommits?: string;
}

/** Adds `serve` to `program`. */
export function register(program: Command, setExit: SetExit): void {
  program.command("serve")
    .description("Run the REST service (stepflow 0.8's API under /api/v1; see docs/server.md)")
    .option(
      "-p, --port <port>",
      "TCP port, 0 for any free one (default: $STEPFLOW_PORT, else 7840)",
    )
    .option("--host <host>", "address to bind; other than loopback needs --token", "127.0.0.1")
    .option(
      "-c, --config <file>",
      "config file (default: $STEPFLOW_CONFIG, else stepflow-config.yml in the current directory)",
    )
    .option(
      "--store <path>",
      "state store: an SQLite file, 'sqlite:<url>', 'postgres://...' or 'memory' (default: the config's stateStore, else ./stepflow.db)",
    )
    .option("--token <token>", "require 'Authorization: Bearer <token>' (default: $STEPFLOW_TOKEN)")
    .option("--max-body-size <size>", "largest request body, e.g. 10MB or 1048576", "10MiB")
    .option("--max-concurrent-runs <n>", "runs executing at once; more are queued", "100")
    .option("--max-queued-runs <n>", "runs waiting for a slot; more are refused with 429", "10000")
    .option(
      "--max-event-streams <n>",
      "run event streams (GET /runs/{id}/events) open at once; more are refused with 429",
      "1000",
    )
    .option(
      "--shutdown-timeout <duration>",
      "on SIGTERM, how long runs in progress may take to finish before they are cancelled",
      "30s",
    )
    .option(
      "--lease-ttl <duration>",
      "PostgreSQL store: how long a run's lease lasts without renewal, e.g. 30s (default: the config's leaseTtl, else 30s)",
    )
    .option(
      "--advertise-url <url>",
      "PostgreSQL store: the URL the other engines reach this one at (default: the bound address; this machine's host name for 0.0.0.0)",
    )
    .option(
      "--cors-origin <origin...>",
      "origins allowed to call the API from a browser ('*' for any; default none)",
    )
    .option(
      "--sqlite-commits <where>",
      "SQLite store: commit in a 'worker' thread (its own connection) or on the event 'loop'",
      "worker",
    )
    .option(
      "--no-resume",
      "do not resume the unfinished runs of services that stopped, at start or (on a shared SQLite file) while serving; they are marked interrupted (default: resume them)",
    )
    .action(async (flags: ServeFlags) => {
      setExit(await serveCommand(flags));
    });
}

/** Runs `stepflow serve` until it is stopped; returns the exit code. Never throws. */
export async function serveCommand(flags: ServeFlags): Promise<number> {
  let settings;
  try {
    settings = readSettings(flags);
  } catch (e) {
    writeStderr(`error: ${describeError(e)}\n`);
    return EXIT_INVALID;
  }
  let config;
  try {
    config = await loadConfigForFlow({ configPath: settings.configPath });
  } catch (e) {
    writeStderr(`error: ${describeError(e)}\n`);
    return EXIT_INVALID;
  }
  const problems = validateConfig(config).filter((d) => d.level !== "warning");
  if (problems.length > 0) {
    for (const d of problems) writeStderr(formatDiagnostic(d) + "\n");
    writeStderr(`error: the config is not valid; the service was not started\n`);
    return EXIT_INVALID;
  }
  let store: StateStore;
  let storeText: string;
  try {
    // --store, else a stateStore the config sets, else the durable default ./stepflow.db
    const fromConfig = isJsonObject(config.raw) && config.raw.stateStore !== undefined;
    let storeConfig: StateStoreConfig = settings.store ??
      (fromConfig ? config.config.stateStore : storeGivenBy(
        { type: "sqlite", databaseUrl: "sqlite:stepflow.db", autoMigrate: true },
        "the default store ./stepflow.db (neither --store nor the config's stateStore names one)",
        "--store",
      ));
    if (settings.leaseTtl !== undefined) {
      if (storeConfig.type !== "postgres") {
        throw new UsageError("--lease-ttl applies to a PostgreSQL store (--store postgres://...)");
      }
      storeConfig = { ...storeConfig, leaseTtl: settings.leaseTtl };
    }
    storeText = storeConfig.type === "sqlite"
      ? storeConfig.databaseUrl
      : storeConfig.type === "postgres"
      ? describePostgresUrl(storeConfig.url) // never the password
      : storeConfig.type;
    store = await openStateStore(
      storeConfig,
      fromConfig && !settings.store ? config.workingDirectory : Deno.cwd(),
      { journal: true }, // the event streams (GET /runs/{id}/events) read it
    );
  } catch (e) {
    if (e instanceof UsageError) {
      writeStderr(`error: ${describeError(e)}\n`);
      return EXIT_INVALID;
    }
    writeStderr(`error: cannot open the state store: ${describeError(e)}\n`);
    return EXIT_FAILED;
  }
  const cancel = onCancelSignals((sig) =>
    writeStderr(
      `${sig}: stopping: no new runs; runs in progress have ${settings.shutdownMs} ms to finish (again to exit at once)\n`,
    )
  );
  let engine: Engine;
  try {
    engine = await Engine.create(config, { store, signal: cancel.signal });
  } catch (e) {
    cancel.dispose();
    if (cancel.signal.aborted) return EXIT_OK;
    writeStderr(
      `error: cannot start the engine: ${startFailure(e, config.source)}\n`,
    );
    return e instanceof FlowLoadError ? EXIT_INVALID : EXIT_FAILED;
  }
  const { listen } = await import("../server/listen.ts");
  let service;
  try {
    service = listen(engine, {
      hostname: settings.host,
      port: settings.port,
      token: settings.token,
      maxBodyBytes: settings.maxBodyBytes,
      maxConcurrentRuns: settings.maxConcurrentRuns,
      maxQueuedRuns: settings.maxQueuedRuns,
      maxEventStreams: settings.maxEventStreams,
      corsOrigins: flags.corsOrigin,
      sqliteCommits: settings.sqliteCommits,
      orphans: { resume: flags.resume !== false },
      ...(settings.advertiseUrl !== undefined ? { advertiseUrl: settings.advertiseUrl } : {}),
    });
  } catch (e) {
    cancel.dispose();
    await engine.close();
    const refused = describeError(e).startsWith("refusing");
    // a --host this machine cannot listen on (not one of its addresses, or a name that does not
    // resolve) is bad usage, named as such
    const badHost = e instanceof Deno.errors.AddrNotAvailable ||
      /failed to lookup address/i.test(describeError(e));
    writeStderr(
      `error: ${
        e instanceof Deno.errors.AddrInUse
          ? `port ${settings.port} on ${settings.host} is in use: choose another with --port (0 picks a free one)`
          : badHost
          ? `cannot listen on --host '${settings.host}': ${describeError(e)}; give an address ` +
            "of this machine (127.0.0.1, ::1, or 0.0.0.0 for all) or a name that resolves to one"
          : describeError(e)
      }\n`,
    );
    return refused || badHost ? EXIT_INVALID : EXIT_FAILED;
  }
  try {
    // PostgreSQL: registered in the engines table, claiming runs (src/server/cluster.ts)
    await service.ready;
  } catch (e) {
    writeStderr(`error: cannot join the engines of the database: ${describeError(e)}\n`);
    await service.shutdown(0);
    await engine.close();
    cancel.dispose();
    return EXIT_FAILED;
  }
  const cluster = service.server.service.cluster;
  writeStderr(
    JSON.stringify({
      event: "listening",
      url: service.url,
      host: service.hostname,
      port: service.port,
      store: storeText,
      pid: Deno.pid,
      ...(cluster ? { engineId: cluster.engineId, leaseTtlMs: cluster.leaseTtlMs } : {}),
    }) + "\n",
  );
  if (flags.resume !== false && cluster === undefined) {
    // (with PostgreSQL the cluster takes over runs of stopped engines itself: src/server/cluster.ts)
    // in-flight runs survive a restart (issue 12): each is claimed, then continued
    const { resumeInterruptedRuns } = await import("../server/runs_resume.ts");
    try {
      const { resumed, queued, skipped } = await resumeInterruptedRuns(
        service.server.service.runs,
        service.server.service.store,
      );
      if (resumed.length > 0) {
        writeStderr(`resumed ${resumed.length} interrupted run(s): ${resumed.join(", ")}\n`);
      }
      if (queued.length > 0) {
        writeStderr(
          `queued ${queued.length} run(s) a stopped service had queued: ${queued.join(", ")}\n`,
        );
      }
      for (const s of skipped) writeStderr(`not resumed: run ${s.runId}: ${s.reason}\n`);
    } catch (e) {
      writeStderr(`error: cannot look for interrupted runs to resume: ${describeError(e)}\n`);
    }
  }
  await new Promise<void>((resolve) => {
    if (cancel.signal.aborted) resolve();
    cancel.signal.addEventListener("abort", () => resolve(), { once: true });
  });
  const { finished, cancelled, released } = await service.shutdown(settings.shutdownMs);
  await engine.close();
  cancel.dispose();
  writeStderr(
    `stopped: ${finished} run(s) finished, ${
      released === undefined
        ? `${cancelled} cancelled`
        : `${released} released to the other engines`
    } at shutdown; step services closed\n`,
  );
  return EXIT_OK;
}

function readSettings(flags: ServeFlags) {
  const env = (name: string) => {
    try {
      return Deno.env.get(name);
    } catch {
      return undefined;
    }
  };
  const portText = flags.port ?? env("STEPFLOW_PORT") ?? "7840";
  const port = Number(portText);
  if (!/^\d+$/.test(portText.trim()) || port > 65535) {
    throw new UsageError(`--port must be a port number 0-65535, got '${portText}'`);
  }
  const token = flags.token ?? env("STEPFLOW_TOKEN");
  if (token !== undefined && token.trim() === "") {
    throw new UsageError("the token (--token or STEPFLOW_TOKEN) is empty");
  }
  let shutdownMs: number;
  try {
    const t = (flags.shutdownTimeout ?? "30s").trim();
    shutdownMs = parseDuration(/^\d+$/.test(t) ? Number(t) : t, {
      what: "--shutdown-timeout",
      allowZero: true,
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  return {
    port,
    host: flags.host ?? "127.0.0.1",
    configPath: flags.config ?? env("STEPFLOW_CONFIG"),
    store: flags.store === undefined ? undefined : storeOf(flags.store),
    token,
    maxBodyBytes: parseSize(flags.maxBodySize ?? "10MiB", "--max-body-size"),
    maxConcurrentRuns: positiveInt(flags.maxConcurrentRuns ?? "100", "--max-concurrent-runs", 1),
    maxQueuedRuns: positiveInt(flags.maxQueuedRuns ?? "10000", "--max-queued-runs", 0),
    maxEventStreams: positiveInt(flags.maxEventStreams ?? "1000", "--max-event-streams", 1),
    shutdownMs,
    leaseTtl: flags.leaseTtl === undefined ? undefined : leaseTtlOf(flags.leaseTtl),
    advertiseUrl: flags.advertiseUrl === undefined ? undefined : urlOf(flags.advertiseUrl),
    sqliteCommits: commitsOf(flags.sqliteCommits ?? "worker"),
  };
}

/** `--sqlite-commits`: `worker` or `loop`. */
function commitsOf(v: string): "worker" | "loop" {
  if (v === "worker" || v === "loop") return v;
  throw new UsageError(`--sqlite-commits must be 'worker' or 'loop', got '${v}'`);
}

/** `--advertise-url`: an http(s) URL, without a trailing slash. @throws {UsageError} */
function urlOf(text: string): string {
  let u: URL;
  try {
    u = new URL(text.trim());
  } catch {
    throw new UsageError(
      `--advertise-url must be a URL such as http://10.0.0.5:7840, got '${text}'`,
    );
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    throw new UsageError(`--advertise-url must be an http:// or https:// URL, got '${text}'`);
  }
  return u.toString().replace(/\/$/, "");
}

/** `--lease-ttl`: a duration (`2s`, `500ms`, `1m`) of at least 100 ms. @throws {UsageError} */
function leaseTtlOf(text: string): string {
  const t = text.trim();
  let ms: number;
  try {
    ms = parseDuration(/^\d+$/.test(t) ? Number(t) : t, { what: "--lease-ttl" });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (ms < 100) throw new UsageError(`--lease-ttl must be at least 100ms, got '${text}'`);
  return `${ms}ms`;
}

/** `--store`: a file path, `sqlite:<url>`, `postgres://...`, or `memory`. @throws {UsageError} */
function storeOf(text: string): StateStoreConfig {
  let config;
  try {
    config = storeConfigFromUrl(text);
  } catch (e) {
    throw new UsageError(describeError(e));
  }
  checkSqliteStore(config, Deno.cwd(), `--store '${text}'`, false);
  return config;
}

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};

/**
 * A size in bytes from `1048576`, `512KB`, `10MB`, `1MiB` (KB/MB/GB are powers of 1000,
 * KiB/MiB/GiB of 1024).
 * @throws {UsageError} naming `what` for anything else.
 */
export function parseSize(text: string, what: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m ? SIZE_UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new UsageError(`${what} must be a size such as 10MB, 1MiB or 1048576, got '${text}'`);
  }
  const n = Math.floor(Number(m[1]) * unit);
  if (n < 1) throw new UsageError(`${what} must be at least 1 byte, got '${text}'`);
  return n;
}

function positiveInt(text: string, what: string, min: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < min) {
    throw new UsageError(`${what} must be an integer of at least ${min}, got '${text}'`);
  }
  return n;
}
