/**
 * The state store of the commands that read or change stored runs (`runs`, `signal`): the one
 * `--store` names, else the `stateStore` of the config (`--config`, or discovered in the current
 * directory as `run` discovers it).
 * @module
 */
import { resolve } from "node:path";
import { loadConfigForFlow } from "../config/load.ts";
import type { LoadedConfig } from "../config/model.ts";
import { openStateStore, storeConfigFromUrl } from "../state/create.ts";
import type { StateStore } from "../state/store.ts";
import { describeError, UsageError } from "../errors.ts";
import { permissionHint } from "../permissions/hint.ts";
import { EXIT_FAILED, EXIT_INVALID, EXIT_PERMISSION } from "./exit_codes.ts";
import { writeStderr } from "./main.ts";

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
  return await openStateStore(config, loaded.workingDirectory);
}

/**
 * `config` with its `stateStore` replaced by the one `--store` names (unchanged without the flag).
 * A relative database path is relative to the current directory, as other file flags.
 * @throws {UsageError} when the value is not a store.
 */
export function applyStoreFlag<C extends LoadedConfig>(config: C, store: string | undefined): C {
  if (store === undefined) return config;
  let stateStore;
  try {
    stateStore = storeConfigFromUrl(store);
  } catch (e) {
    throw new UsageError(describeError(e));
  }
  if (stateStore.type === "sqlite" && !/^sqlite:(\/|:memory:)/.test(stateStore.databaseUrl)) {
    stateStore.databaseUrl = `sqlite:${resolve(stateStore.databaseUrl.slice("sqlite:".length))}`;
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
