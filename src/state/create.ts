/**
 * Builds the state store a config asks for (§2.4).
 * @module
 */
import type { StateStoreConfig } from "../config/model.ts";
import { MemoryStateStore } from "./memory.ts";
import { parseSqliteUrl, SqliteStateStore } from "./sqlite.ts";
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
  try {
    return SqliteStateStore.open(config.databaseUrl, {
      autoMigrate: config.autoMigrate ?? true,
      workingDirectory,
    });
  } catch (e) {
    // name the setting and the file: SQLite's own text ("file is not a database") names neither
    const message = (e as Error).message;
    if (message.startsWith("stateStore.databaseUrl")) throw e;
    let file = config.databaseUrl;
    try {
      file = parseSqliteUrl(config.databaseUrl, workingDirectory).path;
    } catch {
      // the URL itself is what is wrong
    }
    throw new Error(
      `stateStore.databaseUrl '${config.databaseUrl}': cannot open ${
        file === config.databaseUrl ? "it" : `'${file}'`
      }: ${message}${
        /not a database|malformed/i.test(message)
          ? " (point databaseUrl at a new file, or at a database written by stepflow)"
          : ""
      }`,
      { cause: e },
    );
  }
}
