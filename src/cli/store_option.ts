/**
 * The state store of the commands that read or change stored runs (`runs`, `signal`): the one
 * `--store` names, else the `stateStore` of the config (`--config`, or discovered in the current
 * directory as `run` discovers it).
 * @module
 */
import { dirname, resolve } from "node:path";
import { loadConfigForFlow } from "../config/load_file.ts";
import type { LoadedConfig, StateStoreConfig } from "../config/model.ts";
import { parseSqliteUrl } from "../config/store_url.ts";
import { openStateStore, storeConfigFromUrl } from "../state/create.ts";
import type { StateStore } from "../state/store.ts";
import { describeError, UsageError } from "../errors.ts";
import { permissionHint } from "../core/permission_hint.ts";
import { EXIT_FAILED, EXIT_INVALID, EXIT_PERMISSION } from "./exit_codes.ts";
import { writeStderr } from "./output.ts";

/** Flags naming a store. */
export interface StoreFlags {
  store?: string;
  config?: string;
}

/**
 * Opens the persistent store the flags name.
 * @throws {UsageError} when no persistent store is named (the in-memory store keeps nothing
 * between processes) or the `--store` value is not a store.
 * @throws {Error} when the database cannot be opened (naming it).
 */
export async function openStoreFromFlags(flags: StoreFlags): Promise<StateStore> {
  if (flags.store !== undefined) {
    let config;
    try {
      config = storeConfigFromUrl(flags.store);
    } catch (e) {
      throw new UsageError(describeError(e));
    }
    if (config.type === "inMemory") {
      throw new UsageError(
        "--store memory keeps nothing between processes: give the database the runs were " +
          "recorded in (--store sqlite:runs.db or --store postgres://...)",
      );
    }
    checkSqliteStore(config, Deno.cwd(), `--store '${flags.store}'`, true);
    return await openStateStore(config, Deno.cwd());
  }
  const loaded = await loadConfigForFlow({ configPath: flags.config });
  const config = loaded.config.stateStore;
  if (!config || config.type === "inMemory") {
    const where = loaded.source?.file
      ? `the config ${loaded.source.file} uses the in-memory store`
      : "no config with a stateStore was found";
    throw new UsageError(
      `no run history: ${where}; give the database with --store sqlite:FILE (as given to ` +
        "'stepflow run --store'), or set stateStore: {type: sqlite, databaseUrl: ...} in the config",
    );
  }
  checkSqliteStore(
    config,
    loaded.workingDirectory,
    `stateStore.databaseUrl of ${loaded.source?.file ?? "the config"}`,
    true,
  );
  return await openStateStore(config, loaded.workingDirectory);
}

/**
 * Checks the file of an SQLite store before anything opens it, so that a mistyped path is a usage
 * error that names where the path came from (`what`, e.g. `--store 'runs.db'`) instead of an
 * SQLite error, a diagnostic blamed on the config file, or — for the commands that only read the
 * run history — a new empty database that looks like an empty history. Other stores, `:memory:`,
 * and paths that cannot be inspected (no read permission) pass unchecked.
 * @param workingDirectory what a relative path is relative to.
 * @param mustExist `true` for commands that read stored runs (`runs`, `signal`): a missing file is
 * an error, never created.
 * @throws {UsageError} when the URL is malformed, the path is a directory, its directory does not
 * exist, or the file is missing and will not (or must not) be created.
 */
export function checkSqliteStore(
  config: StateStoreConfig,
  workingDirectory: string,
  what: string,
  mustExist: boolean,
): void {
  if (config.type !== "sqlite") return;
  let parsed;
  try {
    parsed = parseSqliteUrl(config.databaseUrl, workingDirectory);
  } catch (e) {
    throw new UsageError(`${what}: ${describeError(e)}`);
  }
  if (parsed.path === ":memory:") return;
  const path = resolve(parsed.path);
  const file = pathKind(path);
  if (file === "dir") {
    throw new UsageError(
      `${what}: '${path}' is a directory; give a database file, e.g. ${path}/stepflow.db`,
    );
  }
  if (file !== "missing") return;
  if (mustExist) {
    throw new UsageError(
      `${what}: no database at '${path}'; check the path (runs are recorded there by ` +
        "'stepflow run --store FILE' or 'stepflow serve --store FILE')",
    );
  }
  if (parsed.mode !== "rwc") {
    throw new UsageError(
      `${what}: no database at '${path}' and mode=${parsed.mode} does not create one; check the ` +
        `path, or drop '?mode=${parsed.mode}' to create it`,
    );
  }
  const dir = dirname(path);
  if (pathKind(dir) === "missing") {
    throw new UsageError(
      `${what}: cannot create '${path}': directory '${dir}' does not exist; create it first ` +
        "or give another path",
    );
  }
}

/** What is at `path`: a directory, something else, nothing, or unknown (e.g. no permission). */
function pathKind(path: string): "dir" | "file" | "missing" | "unknown" {
  try {
    return Deno.statSync(path).isDirectory ? "dir" : "file";
  } catch (e) {
    return e instanceof Deno.errors.NotFound ? "missing" : "unknown";
  }
}

/**
 * `config` with its `stateStore` replaced by the one `--store` names (unchanged without the flag).
 * A relative database path is relative to the current directory, as other file flags.
 * @param mustExist `true` for commands that continue a stored run (`resume`): a missing SQLite
 * file is a usage error instead of a new empty database ({@linkcode checkSqliteStore}).
 * @throws {UsageError} when the value is not a store, or its SQLite path cannot be one.
 */
export function applyStoreFlag<C extends LoadedConfig>(
  config: C,
  store: string | undefined,
  mustExist = false,
): C {
  if (store === undefined) return config;
  let stateStore;
  try {
    stateStore = storeConfigFromUrl(store);
  } catch (e) {
    throw new UsageError(describeError(e));
  }
  checkSqliteStore(stateStore, Deno.cwd(), `--store '${store}'`, mustExist);
  if (stateStore.type === "sqlite") {
    // relative to the current directory, as other file flags (also `sqlite://runs.db`, which
    // the config's rules would read from the config's directory)
    const { path, mode } = parseSqliteUrl(stateStore.databaseUrl, Deno.cwd());
    if (path !== ":memory:") {
      stateStore.databaseUrl = `sqlite:${resolve(path)}${mode === "rwc" ? "" : `?mode=${mode}`}`;
    }
  }
  return { ...config, config: { ...config.config, stateStore } };
}

/**
 * Runs a command of this kind and returns its exit code: its errors become one line on stderr
 * and exit 2 (usage), 3 (a missing permission, with the flag to add) or 1 (anything else).
 */
export async function guarded(fn: () => Promise<number>): Promise<number> {
  try {
    return await fn();
  } catch (e) {
    const hint = permissionHint(e);
    if (hint) {
      writeStderr(`error: ${hint}\n`);
      return EXIT_PERMISSION;
    }
    writeStderr(`error: ${describeError(e)}\n`);
    return e instanceof UsageError ? EXIT_INVALID : EXIT_FAILED;
  }
}
