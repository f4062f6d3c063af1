/**
 * The runs of services that died, on an SQLite database shared by several services (issue 13,
 * wave 6). A service killed with `kill -9` (or crashed) leaves its runs `running` with nobody to
 * finish them; opening the database marks such runs interrupted, but a service that keeps
 * running never opens it again, so it showed them `running` for ever. Now every service checks
 * the database's `engines` every `everyMs` (one read; an engine on this machine is dead as soon
 * as its process is gone, one elsewhere once its heartbeat is older than the stale limit), marks
 * the running runs of dead ones interrupted, and resumes them (and their paused runs) as a
 * starting service does (`--no-resume`: only marks them). When several services survive, each
 * run is claimed by one (`claimRun`). A PostgreSQL store does this with leases instead
 * (src/server/cluster.ts).
 * @module
 */
import type { EngineRecord } from "../state/store.ts";
import { describeError } from "../errors.ts";
import { logger } from "../log.ts";
import type { RunService } from "./runs.ts";

const log = logger("serve");

/** A store that can recover the runs of dead engines (the SQLite store). */
export interface DeadEngineRecovery {
  recoverDeadEngines(): Promise<{ engines: EngineRecord[]; runs: string[] }>;
}

/** Settings of an {@linkcode OrphanWatch}. */
export interface OrphanOptions {
  /** Resume the runs of dead engines here (else only mark them interrupted). @default true */
  resume?: boolean;
  /** How often the engines are checked, ms. @default 2000 */
  everyMs?: number;
}

/** Checks for dead engines on the service's database, and takes their runs over. */
export class OrphanWatch {
  readonly #store: DeadEngineRecovery;
  readonly #runs: RunService;
  readonly #resume: boolean;
  readonly #everyMs: number;
  #timer: ReturnType<typeof setInterval> | undefined;
  #checking: Promise<string[]> | undefined;

  constructor(store: DeadEngineRecovery, runs: RunService, options: OrphanOptions = {}) {
    this.#store = store;
    this.#runs = runs;
    this.#resume = options.resume ?? true;
    this.#everyMs = options.everyMs ?? 2_000;
    if (!Number.isSafeInteger(this.#everyMs) || this.#everyMs < 1) {
      throw new RangeError(
        `the orphan check interval must be a positive integer, got ${this.#everyMs}`,
      );
    }
  }

  /** Checks every `everyMs` from now on (the timer does not keep the process alive). */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => void this.check(), this.#everyMs);
    Deno.unrefTimer(this.#timer as unknown as number);
  }

  /** Stops checking (the service shuts down). */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /**
   * Checks now (one check at a time): marks the running runs of dead engines interrupted and
   * resumes them. Never rejects (failures are logged).
   * @returns the runs resumed here.
   */
  check(): Promise<string[]> {
    return this.#checking ??= this.#check().finally(() => this.#checking = undefined);
  }

  async #check(): Promise<string[]> {
    let found: { engines: EngineRecord[]; runs: string[] };
    try {
      found = await this.#store.recoverDeadEngines();
    } catch (e) {
      log.warn(`cannot look for the runs of stopped services: ${describeError(e)}`);
      return [];
    }
    if (found.engines.length === 0) return [];
    const who = found.engines.map((e) =>
      `${e.engineId} (pid ${e.pid ?? "?"}${e.host ? ` on ${e.host}` : ""})`
    ).join(", ");
    if (found.runs.length === 0) {
      log.info(`engine ${who} stopped; it left no unfinished runs`);
      return [];
    }
    if (!this.#resume || !this.#runs.accepting) {
      log.warn(
        `engine ${who} stopped before finishing ${found.runs.length} run(s), marked ` +
          `interrupted (not resumed here: --no-resume or stopping): ${found.runs.join(", ")}`,
      );
      return [];
    }
    const resumed: string[] = [];
    for (const runId of found.runs) {
      try {
        await this.#runs.resume(runId);
        resumed.push(runId);
      } catch (e) {
        // another service took it first, or it cannot be resumed: it stays as stored
        log.info(`run ${runId} of stopped engine ${who} not resumed here: ${describeError(e)}`);
      }
    }
    if (resumed.length > 0) {
      log.warn(
        `engine ${who} stopped before finishing its runs; resumed ${resumed.length} here: ` +
          resumed.join(", "),
      );
    }
    return resumed;
  }
}
