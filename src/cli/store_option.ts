/**
 * The state store of the commands that read or change stored runs (`runs`, `signal`): the one
 * `--store` names, else the `stateStore` of the config (`--config`, or discovered in the current
 * directory as `run` discovers it).
 * @module
 */
import { loadConfigForFlow } from "../config/load.ts";
import { createStateStore, storeConfigFromUrl } from "../state/create.ts";
import type { StateStore } from "../state/store.ts";
import { describeError, UsageError } from "../errors.ts";

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
          "recorded in (--store sqlite:runs.db)",
      );
    }
    return createStateStore(config, Deno.cwd());
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
  return createStateStore(config, loaded.workingDirectory);
}
