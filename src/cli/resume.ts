/**
 * `stepflow resume RUN_ID [--store URL] [--config C] [--from interrupted|failed]`: continues a
 * run recorded in a database (issue 12) and prints its FlowResult as one JSON line on stdout,
 * as `stepflow run` does.
 *
 * - A run whose engine stopped (killed, crashed, closed: `running`, `paused`, or failed with
 *   code 503 `RUN_INTERRUPTED`) continues where it was: steps with a committed result are not
 *   executed again; steps that started but did not finish run again with `attempt + 1`.
 * - A run that failed or was cancelled is re-driven from its failed steps (and the steps
 *   depending on them); its successful results are kept. `--from interrupted` keeps the failed
 *   results too (only unfinished steps run); `--from failed` re-runs failures of an interrupted
 *   run as well.
 *
 * The flow, input, variables and overrides are read from the store, and so are the config file,
 * run timeout and `--max-concurrency` the run was started with (src/cli/resume_config.ts): the run
 * continues as it was started. `--config`, `--timeout` and `--max-concurrency` override them. A
 * stored config file that is gone or changed stops the resume (exit 2) unless `--config` is given.
 * Exit codes as `run`: 0 success, 1 failed (or the run cannot be resumed: unknown, completed,
 * executed by another live engine), 2 bad usage, 130 cancelled.
 * @module
 */
import type { Command } from "commander";
import type { SetExit } from "./output.ts";
import { EXIT_CANCELLED, EXIT_FAILED, EXIT_INVALID, EXIT_OK } from "./exit_codes.ts";
import { writeStderr, writeStdout } from "./output.ts";
import { progressMode, QUIET_HELP, RunProgress } from "./progress.ts";
import { onCancelSignals } from "./signals.ts";
import { prepareResume, type ResumeSetupFlags } from "./resume_config.ts";
import { formatFailure, startFailure } from "./run.ts";
import { RUN_TIMEOUT } from "../core/error_codes.ts";
import { Engine, type RunHandle } from "../execution/engine.ts";
import type { ResumeMode } from "../execution/resume.ts";
import { permissionHint } from "../core/permission_hint.ts";
import { stringifyJson } from "../json/exact_json.ts";
import type { FlowResult } from "../core/flow_result.ts";
import { describeError, RunNotResumableError, UsageError } from "../errors.ts";

/** Options of `stepflow resume`. */
interface ResumeFlags extends ResumeSetupFlags {
  from?: string;
  quiet?: boolean;
}

/** Adds `resume` to `program`. */
export function register(program: Command, setExit: SetExit): void {
  program.command("resume")
    .description(
      "Continue a run recorded in a database after a crash, a stop or a failure, as it was started (its config, timeout and limits), and print its result",
    )
    .argument(
      "<run-id>",
      "the run (printed as run_id by 'stepflow run --store', see 'stepflow runs list')",
    )
    .option(
      "--store <url>",
      "the database the run was recorded in: sqlite:FILE, a file path or postgres://... (default: the config's)",
    )
    .option(
      "--config <file>",
      "config with the plugins and routes (default: the one the run was started with, stored with it; for runs recorded before stepflow stored it: discovered in cwd)",
    )
    .option(
      "--from <what>",
      "interrupted: run only unfinished steps; failed: run failed steps (and their dependents) again (default: what the run's status needs)",
    )
    .option(
      "--timeout <duration>",
      'a new limit on the resumed run, e.g. "5m" or 300000 (ms) (default: the run\'s own: what is left of it after a crash, all of it again for a failed run)',
    )
    .option(
      "--max-concurrency <n>",
      "most steps in flight at once (default: the run's own, as it was started)",
    )
    .option("-q, --quiet", QUIET_HELP)
    .action(async (runId: string, flags: ResumeFlags) => {
      setExit(await resumeCommand(runId, flags));
    });
}

/** Runs `stepflow resume`; returns the exit code. Never throws. */
export async function resumeCommand(runId: string, flags: ResumeFlags): Promise<number> {
  let setup;
  let from: ResumeMode | undefined;
  try {
    if (flags.from !== undefined && flags.from !== "failed" && flags.from !== "interrupted") {
      throw new UsageError(`--from must be 'failed' or 'interrupted', got '${flags.from}'`);
    }
    from = flags.from as ResumeMode | undefined;
    setup = await prepareResume(runId, flags);
  } catch (e) {
    const hint = permissionHint(e);
    writeStderr(`error: ${hint ?? describeError(e)}\n`);
    return EXIT_INVALID;
  }
  const { config, limits } = setup;
  for (const note of setup.notes) writeStderr(note + "\n");
  let handle: RunHandle | undefined;
  const cancel = onCancelSignals((signal) => {
    const running = handle?.inFlight().map((s) => s.stepId) ?? [];
    writeStderr(
      `${signal}: cancelling the run${
        running.length > 0 ? `; steps cancelled: ${running.join(", ")}` : ""
      } (again to exit at once)\n`,
    );
  });
  let engine: Engine;
  try {
    engine = await Engine.create(config, { signal: cancel.signal, store: setup.store });
  } catch (e) {
    await setup.store.close(); // closed by the engine when it started; closing twice is safe
    cancel.dispose();
    if (cancel.signal.aborted) return EXIT_CANCELLED;
    writeStderr(`error: cannot start the engine: ${startFailure(e, config.source)}\n`);
    return EXIT_FAILED;
  }
  let result: FlowResult;
  // the progress line (src/cli/progress.ts): steps run again, not those already committed
  const progress = new RunProgress({ mode: progressMode(flags.quiet) });
  const unobserve = progress.mode === "off" ? undefined : engine.observe(progress);
  progress.begin({ label: "resumed" });
  try {
    try {
      handle = await engine.resume(runId, { from, signal: cancel.signal, ...limits });
    } catch (e) {
      writeStderr(`error: ${describeError(e)}\n`);
      if (!(e instanceof RunNotResumableError)) writeStderr("  (the run was not changed)\n");
      return EXIT_FAILED;
    }
    writeStderr(`run_id: ${runId} (resumed)\n`);
    result = await handle.result;
  } finally {
    progress.end();
    unobserve?.();
    await engine.close();
    cancel.dispose();
  }
  writeStdout(stringifyJson(result) + "\n");
  if (cancel.signal.aborted) {
    writeStderr("run cancelled; step services stopped\n");
    return EXIT_CANCELLED;
  }
  if (result.outcome === "failed") {
    writeStderr(formatFailure(result));
    if (result.error.code === RUN_TIMEOUT && limits.timeoutMs === undefined) {
      writeStderr(
        "  the run keeps the timeout it was started with (after a crash, what was left of it): " +
          "give --timeout DURATION to resume it with a new limit\n",
      );
    }
    if (
      flags.config === undefined && /routing component|No matching rule/.test(stringifyJson(result))
    ) {
      writeStderr(
        "  the run's components are routed by the config: give the one the run was started with (--config FILE)\n",
      );
    }
  }
  return result.outcome === "success" ? EXIT_OK : EXIT_FAILED;
}
