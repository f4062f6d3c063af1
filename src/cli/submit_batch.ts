/**
 * `stepflow submit-batch --url URL --flow F --inputs FILE.jsonl [--max-concurrent N]
 * [--output FILE]`: runs a flow on every input of a JSONL file on a running service (stepflow
 * 0.8 §6): stores the flow, `POST /api/v1/batches`, follows `GET /api/v1/batches/{id}` with a
 * progress line on stderr, then writes one JSONL line `{index, status, result}` per input, in
 * input order, to `--output` or stdout.
 *
 * Ctrl-C / SIGTERM cancels the batch on the service (its runs are cancelled) and exits 130.
 * Exit codes: 0 when every run completed; 1 when some failed or were cancelled, or the service
 * refused or could not be reached; 2 bad usage or an invalid flow.
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
import { serviceOf } from "./submit.ts";
import { lostWhileWaiting, ServiceError } from "./service_client.ts";
import { onCancelSignals } from "./signals.ts";
import { loadFlowFile } from "../flow/load.ts";
import { fileExcerpt } from "../flow/excerpt.ts";
import { isJsonObject, type JsonValue } from "../json/exact_json.ts";
import { describeError, FlowLoadError } from "../errors.ts";

interface SubmitBatchFlags extends VariableAndOverrideFlags {
  url?: string;
  flow: string;
  inputs: string;
  token?: string;
  maxConcurrent?: string;
  output?: string;
  verbose?: boolean;
  quiet?: boolean;
}

/** Adds `submit-batch` to `program`. */
export function register(program: Command, setExit: SetExit): void {
  const cmd = batchCommand(
    program,
    "submit-batch",
    "Run a flow on every line of a JSONL file on a Stepflow service",
    "runs of the batch at once on the service (default: all)",
  )
    .option("--url <url>", "the service (default: $STEPFLOW_URL, else http://localhost:7837)")
    .option("--token <token>", "the service's token (default: $STEPFLOW_TOKEN)");
  overrideOptions(variableOptions(cmd, "every run's"))
    .option("--verbose", "print every validation warning and the batch id")
    .action(async (flags: SubmitBatchFlags) => {
      setExit(await submitBatchCommand(flags));
    });
}

/** Polling interval: fast at first, then every 500 ms (as 0.8). */
function pollDelay(n: number): number {
  return Math.min(500, 50 * 2 ** n);
}

/** Runs `stepflow submit-batch`; returns the exit code. Never throws. */
export async function submitBatchCommand(flags: SubmitBatchFlags): Promise<number> {
  let client, loaded, inputs: JsonValue[], maxConcurrent: number | undefined, overrides, variables;
  try {
    client = serviceOf(flags);
    loaded = await loadFlowFile(flags.flow);
    inputs = await readJsonlInputs(flags.inputs);
    maxConcurrent = parseMaxConcurrent(flags.maxConcurrent);
    ({ variables, overrides } = await readVariablesAndOverrides(flags, loaded.flow.variables));
  } catch (e) {
    const where = e instanceof FlowLoadError ? fileExcerpt(e.position) : "";
    writeStderr(`error: ${describeError(e)}\n${where}`);
    return EXIT_INVALID;
  }
  let writer: OrderedJsonlWriter;
  try {
    writer = await OrderedJsonlWriter.open(flags.output);
  } catch (e) {
    writeStderr(`error: ${describeError(e)}\n`);
    return EXIT_INVALID;
  }
  let batchId: string | undefined;
  const cancel = onCancelSignals((sig) =>
    writeStderr(`\n${sig}: cancelling the batch on the service (again to exit at once)\n`)
  );
  // a service that does not answer once we are told to stop does not keep us
  client.giveUpAfter(cancel.signal);
  try {
    const flowId = await client.storeFlow(loaded, flags.verbose, cancel.signal);
    if (flowId === undefined) {
      writeStderr(`error: the service found ${flags.flow} invalid (above); nothing was run\n`);
      return EXIT_INVALID;
    }
    const body: Record<string, JsonValue> = { flowId, inputs };
    if (maxConcurrent !== undefined) body.maxConcurrency = maxConcurrent;
    if (overrides !== undefined) body.overrides = overrides;
    if (variables !== undefined) body.variables = variables;
    const created = await client.call("POST", "/api/v1/batches", body).catch((e) => {
      // the service answered POST /flows: one that goes now went away, wherever --url points
      throw lostWhileWaiting(
        client.base,
        "the answer to POST /api/v1/batches (the batch may have started)",
        "GET /api/v1/batches",
        e,
      );
    });
    if (!isJsonObject(created) || typeof created.batchId !== "string") {
      throw new ServiceError("POST /api/v1/batches: unexpected answer");
    }
    batchId = created.batchId;
    if (flags.verbose) writeStderr(`batch_id: ${batchId}\n`);
    const progress = new ProgressLine(inputs.length, "runs", flags.quiet);
    const aborted = new Promise<void>((resolve) => {
      if (cancel.signal.aborted) resolve();
      cancel.signal.addEventListener("abort", () => resolve(), { once: true });
    });
    for (let n = 0;; n++) {
      const d = await client.call("GET", `/api/v1/batches/${batchId}`);
      if (!isJsonObject(d)) throw new ServiceError("GET batch: unexpected answer");
      const counts = {
        completed: Number(d.completedRuns),
        failed: Number(d.failedRuns),
        cancelled: Number(d.cancelledRuns),
        running: Number(d.runningRuns),
      };
      const finished = d.completedAt !== null && d.completedAt !== undefined;
      progress.update(counts, finished);
      if (finished) break;
      if (cancel.signal.aborted) {
        await client.call("POST", `/api/v1/batches/${batchId}/cancel`).catch(() => {});
        progress.end();
        writeStderr(`batch ${batchId} cancelled on the service\n`);
        return EXIT_CANCELLED;
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([aborted, new Promise((r) => timer = setTimeout(r, pollDelay(n)))]);
      clearTimeout(timer);
    }
    progress.end();
    const out = await client.call("GET", `/api/v1/batches/${batchId}/outputs`);
    const outputs = isJsonObject(out) && Array.isArray(out.outputs) ? out.outputs : [];
    let ok = true;
    for (const o of outputs) {
      if (!isJsonObject(o)) continue;
      const status = String(o.status);
      if (status !== "completed") ok = false;
      writer.add({ index: Number(o.batchInputIndex), status, result: o.result ?? null });
    }
    if (writer.error !== undefined) {
      writeStderr(
        `error: ${writer.error}; the results stay on the service: ` +
          `GET /api/v1/batches/${batchId}/outputs\n`,
      );
      return EXIT_FAILED;
    }
    const failed = outputs.filter((o) => isJsonObject(o) && o.status !== "completed").length;
    writeStderr(
      `batch ${batchId}: ${outputs.length - failed} completed, ${failed} failed or cancelled\n`,
    );
    return ok ? EXIT_OK : EXIT_FAILED;
  } catch (e) {
    if (cancel.signal.aborted && e === cancel.signal.reason) {
      writeStderr("\ncancelled before the batch was started on the service\n");
      return EXIT_CANCELLED;
    }
    // the service went away while the batch ran: not a wrong --url
    const err = batchId === undefined
      ? e
      : lostWhileWaiting(client.base, `batch ${batchId}`, `GET /api/v1/batches/${batchId}`, e);
    writeStderr(`\nerror: ${describeError(err)}\n`);
    if (cancel.signal.aborted) return EXIT_CANCELLED;
    return err instanceof ServiceError && err.status === 400 ? EXIT_INVALID : EXIT_FAILED;
  } finally {
    writer.close();
    cancel.dispose();
  }
}
