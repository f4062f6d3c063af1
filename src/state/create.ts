/**
 * Builds the state store a config asks for (§2.4).
 * @module
 */
import type { StateStoreConfig } from "../config/model.ts";
import { MemoryStateStore } from "./memory.ts";
import { SqliteStateStore } from "./sqlite.ts";
import type { StateStore } from "./store.ts";

/**
 * Creates the store for `config` (`inMemory` by default). Relative SQLite paths resolve against
 * `workingDirectory`.
 * @throws {Error} when an SQLite database cannot be opened.
 */
export function createStateStore(
  config: StateStoreConfig | undefined,
  workingDirectory: string,
): StateStore {
  if (!config || config.type === "inMemory") return new MemoryStateStore();
  return SqliteStateStore.open(config.databaseUrl, {
    autoMigrate: config.autoMigrate ?? true,
    workingDirectory,
  });
}
