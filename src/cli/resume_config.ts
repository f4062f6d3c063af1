/**
 * What `stepflow resume` continues a run with: the database the run is in, and the config and
 * limits it was started with (`RunRecord.runOptions`, stored by the engine with every top-level
 * run), unless flags say otherwise.
 *
 * The config, in order:
 * 1. `--config FILE`: always wins (a note says so when the run was started with another file, or
 *    the same file changed since);
 * 2. the config file stored with the run, when it is still there and unchanged (same SHA-256);
 *    a file that is **gone or changed** stops the resume before anything runs (exit 2): a changed
 *    config may route the run's components to other plugins, so resuming with it is the user's
 *    explicit choice (`--config FILE`);
 * 3. a run started without a config file: the default config, in the directory the run had;
 * 4. a run recorded before run options were stored (older databases, runs queued by a service):
 *    as before, the config discovered in the current directory, with a note naming it, or a
 *    warning when there is none.
 * @module
 */
import { loadConfigForFlow, type LoadedConfigWithSource } from "../config/load.ts";
import { defaultConfig } from "../config/load.ts";
import type { StateStoreConfig } from "../config/model.ts";
import { sha256OfBytes } from "../execution/resume.ts";
import { readFileBounded } from "../core/read_bounded.ts";
import { openStateStore } from "../state/create.ts";
import type { RunRecord, StateStore } from "../state/store.ts";
import { UsageError } from "../errors.ts";
import { applyStoreFlag, checkSqliteStore } from "./store_option.ts";
import { parseRunLimits, type RunLimitFlags } from "./value_flags.ts";

/** The flags of `stepflow resume` that choose the store, the config and the limits. */
export interface ResumeSetupFlags {
  store?: string;
  config?: string;
  timeout?: string;
  maxConcurrency?: string;
}

/** What a resume runs with. */
export interface ResumeSetup {
  /** The config to start the engine with; its `stateStore` is the database the run is in. */
  config: LoadedConfigWithSource;
  /** That database, open (the engine takes it over and closes it). */
  store: StateStore;
  /** Lines for stderr before the run continues (which config, and why). */
  notes: string[];
  /** `--timeout` and `--max-concurrency`, when given. */
  limits: RunLimitFlags;
}

/** `--timeout` (ms) and `--max-concurrency` as numbers. */

/**
 * Opens the database run `runId` is in and chooses the config it continues with (see the module
 * docs).
 * @throws {UsageError} for bad flags, no database, or a stored config file that is gone or
 * changed; other errors when a file or the database cannot be read.
 */
export async function prepareResume(runId: string, flags: ResumeSetupFlags): Promise<ResumeSetup> {
  const limits = parseRunLimits(flags);
  const cwd = Deno.cwd();
  const explicit = flags.config !== undefined
    ? await loadConfigForFlow({ configPath: flags.config })
    : undefined;
  // the database: --store, else the stateStore of the config given or found in cwd
  let storeConfig: StateStoreConfig | undefined;
  let storeDir = cwd;
  let discovered: LoadedConfigWithSource | undefined;
  if (flags.store !== undefined) {
    // the run must be in that database: a mistyped path is an error, not a new empty file
    storeConfig = applyStoreFlag(defaultConfig(cwd), flags.store, true).config.stateStore;
  } else {
    discovered = explicit ?? await loadConfigForFlow({});
    storeConfig = discovered.config.stateStore;
    storeDir = discovered.workingDirectory;
    if (storeConfig !== undefined && storeConfig.type !== "inMemory") {
      checkSqliteStore(
        storeConfig,
        storeDir,
        `stateStore.databaseUrl of ${discovered.source?.file ?? "the config"}`,
        true,
      );
    }
  }
  if (storeConfig === undefined || storeConfig.type === "inMemory") {
    throw new UsageError(
      "resume needs the database the run was recorded in: --store sqlite:runs.db (as given " +
        "to 'stepflow run --store') or a config whose stateStore is a database",
    );
  }
  const store = await openStateStore(storeConfig, storeDir);
  try {
    const notes: string[] = [];
    const record = await store.getRun(runId);
    const chosen = await chooseConfig(runId, record, explicit, discovered, notes);
    const config = { ...chosen, config: { ...chosen.config, stateStore: storeConfig } };
    return { config, store, notes, limits };
  } catch (e) {
    await store.close();
    throw e;
  }
}

/** The config run `record` continues with (module docs), adding what to say to `notes`. */
async function chooseConfig(
  runId: string,
  record: RunRecord | undefined,
  explicit: LoadedConfigWithSource | undefined,
  discovered: LoadedConfigWithSource | undefined,
  notes: string[],
): Promise<LoadedConfigWithSource> {
  const stored = record?.runOptions;
  if (explicit !== undefined) {
    if (stored?.configPath !== undefined && stored.configPath !== explicit.path) {
      notes.push(
        `note: resuming with --config ${explicit.path}; run ${runId} was started with ${stored.configPath}`,
      );
    } else if (stored?.configSha256 !== undefined && explicit.path !== undefined) {
      const now = await fileSha256(explicit.path);
      if (now !== stored.configSha256) {
        notes.push(
          `note: ${explicit.path} changed since run ${runId} started; resuming with it as it is now (--config)`,
        );
      }
    }
    return explicit;
  }
  // an unknown or nested run: the engine says so (no config is read for it)
  if (record === undefined || record.parentRunId !== undefined) return defaultConfig();
  if (stored === undefined) {
    // recorded before run options were stored: as before, the config found in cwd
    const found = discovered ?? await loadConfigForFlow({});
    notes.push(
      found.path !== undefined
        ? `note: run ${runId} has no config stored with it (recorded by an older stepflow, or ` +
          `queued by a service): using ${found.path}, found in the current directory; give ` +
          "--config FILE if the run was started with another"
        : `warning: run ${runId} has no config stored with it (recorded by an older stepflow, ` +
          "or queued by a service) and no config was found in the current directory: resuming " +
          "with the default config (built-in components only); give --config FILE, the config " +
          "the run was started with",
    );
    return found;
  }
  if (stored.configPath === undefined) {
    // started without a config file: the default config, where the run had it
    return defaultConfig(stored.workingDirectory ?? Deno.cwd());
  }
  const path = stored.configPath;
  let now: string;
  try {
    now = await fileSha256(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    throw new UsageError(
      `run ${runId} was started with the config ${path}, which is gone; give --config FILE to ` +
        "resume it with another config (its plugins and routes must serve the run's components)",
    );
  }
  if (stored.configSha256 !== undefined && now !== stored.configSha256) {
    throw new UsageError(
      `the config ${path} changed since run ${runId} started (SHA-256 ${
        stored.configSha256.slice(0, 12)
      }… then, ${now.slice(0, 12)}… now): its plugins or routes may differ. Nothing was run. ` +
        `To resume with the file as it is now, give --config ${path}; or restore it`,
    );
  }
  return await loadConfigForFlow({ configPath: path });
}

/** SHA-256 (hex) of the file at `path`. */
async function fileSha256(path: string): Promise<string> {
  return sha256OfBytes(await readFileBounded(path));
}
