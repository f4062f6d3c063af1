/**
 * `stepflow signal RUN_ID NAME [--data-json JSON | --data-yaml YAML | --data FILE]`: sends a
 * signal to a run waiting for it (human in the loop, issue 12): the signal is committed to the
 * run's state store, where the run's `/builtin/wait_for` step with that name takes it as its
 * output. Signals with the same name queue up, each taken by one waiting step.
 *
 * Prints the stored signal as one JSON line on stdout: `{"id":1,"runId":...,"name":...,
 * "data":...,"createdAt":...}`.
 *
 * Exit codes: 0 once the signal is stored; 1 when the run is unknown or finished, or the store
 * cannot be written; 2 for bad usage.
 * @module
 */
import type { Command } from "commander";
import type { SetExit } from "./commands.ts";
import { EXIT_FAILED, EXIT_OK } from "./exit_codes.ts";
import { writeStderr, writeStdout } from "./main.ts";
import { guarded, openStoreFromFlags, type StoreFlags } from "./store_option.ts";
import { readValueFlags } from "./input.ts";
import { UsageError } from "../errors.ts";
import { stringifyJson } from "../json/exact_json.ts";
import { isFinished } from "../state/store.ts";

/** Options of `stepflow signal`. */
interface SignalFlags extends StoreFlags {
  data?: string;
  dataJson?: string;
  dataYaml?: string;
}

/** Adds `signal` to `program`. */
export function register(program: Command, setExit: SetExit): void {
  program.command("signal")
    .description("Send a signal (with data) to a run waiting for it in /builtin/wait_for")
    .argument("<run-id>", "the run")
    .argument("<name>", "the signal name the run waits for")
    .option("--data <file>", "the signal's data from a JSON or YAML file")
    .option("--data-json <json>", "the signal's data as JSON text")
    .option("--data-yaml <yaml>", "the signal's data as YAML text")
    .option(
      "--store <url>",
      "the database: sqlite:FILE, a file path or postgres://... (default: the config's)",
    )
    .option("--config <file>", "config whose stateStore to use (default: discovered in cwd)")
    .action(async (runId: string, name: string, flags: SignalFlags) => {
      setExit(await signalCommand(runId, name, flags));
    });
}

/** Runs `stepflow signal`; returns the exit code. Never throws. */
export function signalCommand(runId: string, name: string, flags: SignalFlags): Promise<number> {
  return guarded(async () => {
    if (name.trim() === "") throw new UsageError("the signal name must not be empty");
    const data = (await readValueFlags("data", flags.data, flags.dataJson, flags.dataYaml)) ??
      null;
    const store = await openStoreFromFlags(flags);
    try {
      const run = await store.getRun(runId);
      if (!run) {
        writeStderr(`error: no run '${runId}' in this store (see 'stepflow runs list')\n`);
        return EXIT_FAILED;
      }
      if (isFinished(run.status)) {
        writeStderr(
          `error: run '${runId}' is ${run.status}; a signal cannot change it (resume it first ` +
            `with 'stepflow resume ${runId}' if a step should run again)\n`,
        );
        return EXIT_FAILED;
      }
      const signal = await store.putSignal({ runId, name, data });
      writeStdout(stringifyJson(signal) + "\n");
      writeStderr(
        `signal '${name}' stored for run ${runId} (${run.status}); a step waiting for it takes ` +
          "it when its engine next looks, or when the run is resumed\n",
      );
      return EXIT_OK;
    } finally {
      await store.close();
    }
  });
}
