/**
 * `stepflow run-batch --flow F --inputs FILE.jsonl [--max-concurrent N] [--output FILE]
 * [--config C] [variables] [overrides]`: runs a flow locally on every input of a JSONL file
 * (stepflow 0.8 §6), at most `--max-concurrent` runs at once (default: all, as 0.8), with a
 * progress line on stderr. Writes one JSONL line `{index, status, result}` per input, in input
 * order, to `--output` or stdout — failed runs included, with their failed result (0.8 wrote
 * only successful results). Overrides are applied (0.8 accepted and ignored them).
 *
 * Ctrl-C / SIGTERM cancels the runs in progress (their lines say `cancelled`), closes the step
 * services and exits 130.
 * Exit codes: 0 when every run succeeded; 1 when some failed or were skipped, or the engine
 * could not start; 2 bad usage or an invalid flow/config; 130 cancelled.
 * @module
 */
import type { Command } from "commander";
import type { SetExit } from "./output.ts";
import { EXIT_CANCELLED, EXIT_FAILED, EXIT_INVALID, EXIT_OK } from "./exit_codes.ts";
import { writeStderr } from "./output.ts";
import {
  overrideOptions,
  readVariablesAndOverrides,
  type VariableAndOverrideFlags,
  variableOptions,
} from "./value_flags.ts";
import {
  batchCommand,
  OrderedJsonlWriter,
  parseMaxConcurrent,
  ProgressLine,
  readJsonlInputs,
} from "./batch_io.ts";
import { onCancelSignals } from "./signals.ts";
import { startFailure } from "./run.ts";
import { loadFlowFile } from "../flow/load.ts";
import { fileExcerpt } from "../flow/excerpt.ts";
import { validateConfig, validateFlow } from "../config/preflight.ts";
import { formatDiagnostic, hasErrors } from "../core/diagnostics.ts";
import { loadConfigForFlow } from "../config/load.ts";
import { Engine } from "../execution/engine.ts";
import type { JsonValue } from "../json/exact_json.ts";
import { describeError, FlowLoadError } from "../errors.ts";

interface RunBatchFlags extends VariableAndOverrideFlags {
  flow: string;
  inputs: string;
  config?: string;
  maxConcurrent?: string;
  output?: string;
  verbose?: boolean;
  quiet?: boolean;
}

/** Adds `run-batch` to `program`. */
export function register(program: Command, setExit: SetExit): void {
  const cmd = batchCommand(
    program,
    "run-batch",
    "Run a flow locally on every line of a JSONL file; JSONL results on stdout",
    "runs at once (default: all, as stepflow 0.8)",
  ).option("--config <file>", "config file (default: discovered next to the flow, then in cwd)");
  overrideOptions(variableOptions(cmd, "every run's"))
    .option("--verbose", "print every validation warning")
    .action(async (flags: RunBatchFlags) => {
      setExit(await runBatchCommand(flags));
    });
}

/** Runs `stepflow run-batch`; returns the exit code. Never throws. */
export async function runBatchCommand(flags: RunBatchFlags): Promise<number> {
  let loaded, config, inputs: JsonValue[], limit: number, variables, overrides;
  try {
    loaded = await loadFlowFile(flags.flow);
    config = await loadConfigForFlow({ configPath: flags.config, flowPath: flags.flow });
    inputs = await readJsonlInputs(flags.inputs);
    limit = Math.min(parseMaxConcurrent(flags.maxConcurrent) ?? inputs.length, inputs.length);
    ({ variables, overrides } = await readVariablesAndOverrides(flags, loaded.flow.variables));
  } catch (e) {
    const where = e instanceof FlowLoadError ? fileExcerpt(e.position) : "";
    writeStderr(`error: ${describeError(e)}\n${where}`);
    return EXIT_INVALID;
  }
  const diagnostics = [...validateConfig(config), ...validateFlow(loaded, config)];
  for (const d of diagnostics) {
    if (d.level !== "warning" || flags.verbose) writeStderr(formatDiagnostic(d) + "\n");
  }
  if (hasErrors(diagnostics)) {
    writeStderr(`error: ${flags.flow} is not valid; nothing was run\n`);
    return EXIT_INVALID;
  }
  let writer: OrderedJsonlWriter;
  try {
    writer = await OrderedJsonlWriter.open(flags.output);
  } catch (e) {
    writeStderr(`error: ${describeError(e)}\n`);
    return EXIT_INVALID;
  }
  const cancel = onCancelSignals((sig) =>
    writeStderr(`\n${sig}: cancelling the runs in progress (again to exit at once)\n`)
  );
  let engine: Engine;
  try {
    engine = await Engine.create(config, { signal: cancel.signal });
  } catch (e) {
    cancel.dispose();
    writer.close();
    if (cancel.signal.aborted) return EXIT_CANCELLED;
    writeStderr(
      `error: cannot start the engine: ${startFailure(e, config.source)}\n`,
    );
    return EXIT_FAILED;
  }
  const progress = new ProgressLine(inputs.length, "runs", flags.quiet);
  const counts = { completed: 0, failed: 0, running: 0, cancelled: 0 };
  let next = 0;
  // a failed write of the results stops the batch: later results could not be written either
  const stop = AbortSignal.any([cancel.signal, writer.failed]);
  const worker = async () => {
    while (next < inputs.length && !stop.aborted) {
      const index = next++;
      counts.running++;
      progress.update(counts);
      const result = await engine.run(loaded.flow, inputs[index], {
        signal: stop,
        variables,
        overrides,
      });
      counts.running--;
      let status: string;
      if (result.outcome === "success") {
        status = "completed";
        counts.completed++;
      } else if (stop.aborted) {
        status = "cancelled";
        counts.cancelled++;
      } else {
        status = "failed";
        counts.failed++;
      }
      writer.add({ index, status, result: result as unknown as JsonValue });
      progress.update(counts);
    }
  };
  try {
    await Promise.all(Array.from({ length: limit }, worker));
    // inputs never started (cancelled): their lines too, so the output has one per input
    for (let i = next; i < inputs.length; i++) {
      writer.add({ index: i, status: "cancelled", result: null });
    }
  } finally {
    await engine.close();
    cancel.dispose();
    progress.update(counts, true);
    progress.end();
    writer.close();
  }
  if (writer.error !== undefined) {
    writeStderr(
      `error: ${writer.error}; the batch was stopped: ${
        inputs.length - writer.written
      } of ${inputs.length} results are not written (${
        writer.readerGone
          ? "the runs not started were not run"
          : "free space, or give --output a writable file"
      })\n`,
    );
    return EXIT_FAILED;
  }
  if (cancel.signal.aborted) {
    writeStderr(
      `run-batch cancelled: ${counts.completed} completed, ${counts.failed} failed, ${counts.cancelled} cancelled, ${
        inputs.length - counts.completed - counts.failed - counts.cancelled
      } not started; step services stopped\n`,
    );
    return EXIT_CANCELLED;
  }
  return counts.failed > 0 ? EXIT_FAILED : EXIT_OK;
}
