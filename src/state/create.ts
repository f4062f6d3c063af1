/**
 * Builds the state store a config asks for (§2.4).
 * @module
 */
import type { StateStoreConfig } from "../config/model.ts";
import { MemoryStateStore } from "./memory.ts";
import { isNumber, toNumber } from "../json/exact_json.ts";
import { parseSqliteUrl } from "../config/store_url.ts";
import type { StateStore } from "./store.ts";
import { parsePostgresUrl } from "./postgres_url.ts";
import { DEFAULT_BUSY_TIMEOUT_MS, sqliteHint } from "./sqlite_hint.ts";

/**
 * Where a store config came from, when not from the config file's `stateStore`: the words that
 * name it in an error (`--store 'runs.db'`) and the setting to change (`--store`). Kept beside
 * the config object (not in it: it is no config key).
 */
const origins = new WeakMap<StateStoreConfig, { what: string; setting: string }>();

/**
 * Marks `config` as given by something other than the config file, e.g. serve's default store:
 * an error opening it names `what` and tells to change `setting`, not `stateStore.databaseUrl`.
 * @returns `config`.
 */
export function storeGivenBy<C extends StateStoreConfig>(
  config: C,
  what: string,
  setting: string,
): C {
  origins.set(config, { what, setting });
  return config;
}

/**
 * The store a `--store` value names (an error opening it names the flag): `memory` (or `inMemory`), `sqlite:FILE[?mode=...]`,
 * `sqlite::memory:`, a file path (an SQLite database; created when missing), or
 * `postgres://user:password@host:port/database` (`postgresql://`).
 * @throws {Error} for other URL schemes, or a PostgreSQL URL that is not one (the message never
 * holds the password).
 */
export function storeConfigFromUrl(url: string): StateStoreConfig {
  return storeGivenBy(storeConfigOf(url), `--store '${url}'`, "--store");
}

function storeConfigOf(url: string): StateStoreConfig {
  const text = url.trim();
  if (text === "memory" || text === "inMemory" || text === "in-memory") return { type: "inMemory" };
  if (text.startsWith("sqlite:")) {
    // `sqlite:` or `sqlite://?mode=ro` names no file: a forgotten name, not a wish for memory
    const rest = text.slice("sqlite:".length).replace(/^\/\//, "").replace(/\?.*$/, "");
    if (rest === "" && !/[?&]mode=memory(&|$)/.test(text)) {
      throw new Error(
        `--store '${text}' names no database file: give sqlite:FILE (e.g. sqlite:stepflow.db), ` +
          "or memory for a store that keeps nothing",
      );
    }
    return { type: "sqlite", databaseUrl: text, autoMigrate: true };
  }
  if (/^postgres(ql)?:/i.test(text)) {
    try {
      parsePostgresUrl(text);
    } catch (e) {
      throw new Error(`--store: ${(e as Error).message}`);
    }
    return { type: "postgres", url: text, autoMigrate: true };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    throw new Error(
      `--store '${text}': expected sqlite:FILE, a database file path, postgres://... or memory`,
    );
  }
  if (text === "") throw new Error("--store needs a value: sqlite:FILE, a file path, or memory");
  return { type: "sqlite", databaseUrl: `sqlite:${text}`, autoMigrate: true };
}

/**

 * Opens the store for `config` (`inMemory` by default): {@linkcode createStateStore}, plus the
 * PostgreSQL store, which connects (and migrates) asynchronously. The PostgreSQL client is loaded
 * only here, when the config names it. `options` as {@linkcode createStateStore}'s.
 * @throws {Error} when the database cannot be opened (a PostgreSQL one: a
 * {@linkcode StoreError} naming it without its password).
 */
export async function openStateStore(
  config: StateStoreConfig | undefined,
  workingDirectory: string,
  options: { journal?: boolean } = {},
): Promise<StateStore> {
  if (config?.type === "sqlite") sqliteModule ??= await import("./sqlite.ts");
  if (config?.type !== "postgres") return createStateStore(config, workingDirectory, options);
  const { PostgresStateStore } = await import("./postgres.ts");
  return await PostgresStateStore.open(config.url, {
    autoMigrate: config.autoMigrate ?? true,
    maxConnections: config.maxConnections,
    leaseTtlMs: config.leaseTtl === undefined ? undefined : durationMs(config.leaseTtl),
  });
}

/**
 * src/state/sqlite.ts, loaded by the first {@linkcode openStateStore} of an SQLite store: runs
 * with the in-memory store never load it (cold start, issue 17).
 */
let sqliteModule: typeof import("./sqlite.ts") | undefined;

/**
 * Creates the store for `config` (`inMemory` by default) synchronously; an SQLite store only
 * once {@linkcode openStateStore} has opened one (it loads the SQLite module). Relative SQLite paths
 * resolve against `workingDirectory`. `options.journal` keeps the run journal in an in-memory
 * store too (the service's event streams read it; a database always keeps it).
 * @throws {Error} when an SQLite database cannot be opened, or for `postgres` (and `sqlite`
 * before the first {@linkcode openStateStore} of one), which open asynchronously.
 */
export function createStateStore(
  config: StateStoreConfig | undefined,
  workingDirectory: string,
  options: { journal?: boolean } = {},
): StateStore {
  if (!config) return new MemoryStateStore({ journal: options.journal });
  if (config.type === "postgres") {
    throw new Error("the PostgreSQL store opens asynchronously: use openStateStore()");
  }
  if (config.type === "inMemory") {
    return new MemoryStateStore({
      journal: options.journal,
      maxFinishedRuns: config.maxFinishedRuns,
      maxFinishedSteps: config.maxFinishedSteps,
      maxFlows: config.maxFlows,
      maxFinishedAgeMs: config.maxFinishedAge === undefined
        ? undefined
        : durationMs(config.maxFinishedAge),
    });
  }
  if (sqliteModule === undefined) {
    throw new Error("the SQLite store module loads asynchronously: use openStateStore()");
  }
  try {
    return sqliteModule.SqliteStateStore.open(config.databaseUrl, {
      autoMigrate: config.autoMigrate ?? true,
      workingDirectory,
    });
  } catch (e) {
    // name the setting and the file: SQLite's own text ("file is not a database") names neither
    const message = (e as Error).message;
    if (message.startsWith("stateStore.databaseUrl")) throw e;
    const origin = origins.get(config) ??
      { what: `stateStore.databaseUrl '${config.databaseUrl}'`, setting: "databaseUrl" };
    let file = config.databaseUrl;
    try {
      file = parseSqliteUrl(config.databaseUrl, workingDirectory).path;
    } catch {
      // the URL itself is what is wrong
    }
    throw new Error(
      `${origin.what}: cannot open ${file === config.databaseUrl ? "it" : `'${file}'`}: ${message}${
        /not a database/i.test(message)
          ? ` (point ${origin.setting} at a new file, or at a database written by stepflow)`
          : sqliteHint(message, DEFAULT_BUSY_TIMEOUT_MS)
      }`,
      { cause: e },
    );
  }
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/** A duration the config schema accepted (ms, or `<number><ms|s|m|h>`) in ms. */
function durationMs(value: unknown): number {
  if (typeof value !== "string") return isNumber(value) ? toNumber(value) : Number(value);
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)$/.exec(value.trim());
  return m ? Math.round(Number(m[1]) * UNIT_MS[m[2]]) : Number(value);
}
