/**
 * `stepflow submit [--url URL] --flow F [input] [variables] [overrides] [--output FILE]`: runs a
 * flow on a running service (stepflow 0.8 §6): stores the flow (`POST /api/v1/flows`, its
 * diagnostics printed on stderr at the flow file's positions), runs it (`POST /api/v1/runs`,
 * waiting for the result, with the variables — 0.8 dropped them) and prints the FlowResult as
 * one JSON line on stdout (or writes `--output`, JSON or YAML by extension). The run id goes to
 * stderr.
 *
 * `--url` defaults to `$STEPFLOW_URL`, else `http://localhost:7837` (0.8's default; `stepflow
 * serve` listens on 7840). `--token` (or `$STEPFLOW_TOKEN`) is sent as `Authorization: Bearer`.
 *
 * Ctrl-C / SIGTERM cancels the run on the service (`POST /runs/{id}/cancel`), says so with its id
 * and exits 130: the run is started with `wait: false` and an `Idempotency-Key`, then waited for
 * with the same key, so its id is known while it runs. (A service that answers the first request
 * with the result, as 0.8's does, is waited for in that request.) What the signal's line says
 * follows the phase ({@linkcode onSignal}): while the flow is stored no run exists and none is
 * started; while `POST /api/v1/runs` is answered the run is cancelled once its id comes.
 *
 * Exit codes: 0 success; 1 failed or skipped outcome, or the service refused or could not be
 * reached; 2 bad usage or a flow the service found a fatal problem in; 130 cancelled.
 * @module
 */
import type { Command } from "commander";
import type { SetExit } from "./output.ts";
import { EXIT_CANCELLED, EXIT_FAILED, EXIT_INVALID, EXIT_OK } from "./exit_codes.ts";
import { onCancelSignals } from "./signals.ts";
import { checkOutputPath } from "./output_path.ts";
import { writeStderr, writeStdout } from "./output.ts";
import { type InputFlags, readRunInput, readStdin } from "./input.ts";
import {
  overrideOptions,
  readVariablesAndOverrides,
  type VariableAndOverrideFlags,
  variableOptions,
} from "./value_flags.ts";
import { toYaml } from "./yaml_output.ts";
import {
  DEFAULT_SUBMIT_URL,
  lostWhileWaiting,
  ServiceClient,
  ServiceError,
} from "./service_client.ts";
import { loadFlowFile } from "../flow/load.ts";
import { isJsonObject, type JsonValue, stringifyJson } from "../json/exact_json.ts";
import { describeError, FlowLoadError } from "../errors.ts";
import { fileExcerpt } from "../flow/excerpt.ts";
import type { FlowResult } from "../core/flow_result.ts";

interface SubmitFlags extends InputFlags, VariableAndOverrideFlags {
  url?: string;
  flow: string;
  token?: string;
  output?: string;
  verbose?: boolean;
}

/** Adds `submit` to `program`. */
export function register(program: Command, setExit: SetExit): void {
  const cmd = program.command("submit")
    .description("Run a flow on a Stepflow service (stepflow serve) and print its result")
    .option("--url <url>", `the service (default: $STEPFLOW_URL, else ${DEFAULT_SUBMIT_URL})`)
    .requiredOption("--flow <file>", "the flow file (.yaml, .yml, .json, .jsonc)")
    .option("--token <token>", "the service's token (default: $STEPFLOW_TOKEN)")
    .option("--input <file>", "run input from a JSON or YAML file")
    .option("--input-json <json>", "run input as JSON text")
    .option("--input-yaml <yaml>", "run input as YAML text")
    .option("--stdin-format <format>", "format of input read from stdin: json or yaml", "json");
  overrideOptions(variableOptions(cmd))
    .option("--output <file>", "write the result to this file (JSON, or YAML for .yaml/.yml)")
    .option("--verbose", "print every validation warning and the run id")
    .action(async (flags: SubmitFlags) => {
      setExit(await submitCommand(flags));
    });
}

/**
 * What the first Ctrl-C / SIGTERM does, for the line `stepflow submit` prints: before `POST
 * /api/v1/runs` no run exists (was: "cancelling the run on the service" even then); while it is
 * answered the run may be starting and is cancelled once its id is known; then it is cancelled.
 */
export function onSignal(phase: "store" | "start" | "wait", runId: string | undefined): string {
  if (phase === "store") return "stopping; no run was started on the service";
  if (phase === "start") {
    return "stopping; the run being started is cancelled on the service as soon as it answers " +
      "with its id";
  }
  return runId === undefined
    ? "stopping; the service gave no run id, so the run cannot be cancelled from here"
    : `cancelling run ${runId} on the service`;
}

/** The URL and token from flags and the environment. */
export function serviceOf(flags: { url?: string; token?: string }): ServiceClient {
  const env = (name: string) => {
    try {
      return Deno.env.get(name);
    } catch {
      return undefined;
    }
  };
  return new ServiceClient(
    flags.url ?? env("STEPFLOW_URL") ?? DEFAULT_SUBMIT_URL,
    flags.token ?? env("STEPFLOW_TOKEN"),
  );
}

/** Runs `stepflow submit`; returns the exit code. Never throws. */
export async function submitCommand(flags: SubmitFlags): Promise<number> {
  let client: ServiceClient;
  let loaded, input: JsonValue, variables: Record<string, JsonValue> | undefined, overrides;
  try {
    client = serviceOf(flags);
    loaded = await loadFlowFile(flags.flow);
    input = await readRunInput(
      flags,
      () => Deno.stdin.isTerminal() ? Promise.resolve("") : readStdin(),
    );
    ({ variables, overrides } = await readVariablesAndOverrides(flags, loaded.flow.variables));
    // before the run: a result that cannot be written would be produced for nothing
    if (flags.output !== undefined) await checkOutputPath(flags.output);
  } catch (e) {
    const where = e instanceof FlowLoadError ? fileExcerpt(e.position) : "";
    writeStderr(`error: ${describeError(e)}\n${where}`);
    return EXIT_INVALID;
  }
  let result: FlowResult;
  let runId: string | undefined;
  // what a signal does depends on how far we got: no run yet, one being started, one running
  let phase: "store" | "start" | "wait" = "store";
  const cancel = onCancelSignals((sig) =>
    writeStderr(`\n${sig}: ${onSignal(phase, runId)} (again to exit at once)\n`)
  );
  // a service that does not answer once we are told to stop does not keep us
  client.giveUpAfter(cancel.signal);
  try {
    const flowId = await client.storeFlow(loaded, flags.verbose, cancel.signal);
    if (flowId === undefined) {
      writeStderr(`error: the service found ${flags.flow} invalid (above); nothing was run\n`);
      return EXIT_INVALID;
    }
    const body: Record<string, JsonValue> = { flowId, input };
    if (overrides !== undefined) body.overrides = overrides;
    if (variables !== undefined) body.variables = variables;
    if (cancel.signal.aborted) return await cancelled(undefined);
    phase = "start";
    // started without waiting, so that its id is known while it runs (a Ctrl-C cancels it);
    // then waited for with the same key. Not abandoned midway: a run the service starts has an id.
    const key = { "Idempotency-Key": `stepflow-submit-${crypto.randomUUID()}` };
    let answer = await client.call("POST", "/api/v1/runs", { ...body, wait: false }, {
      headers: key,
    }).catch((e) => {
      // the service answered POST /flows: one that goes now went away, wherever --url points
      throw lostWhileWaiting(
        client.base,
        "the answer to POST /api/v1/runs (the run may have started)",
        loaded.flow.name
          ? `GET /api/v1/runs?flowName=${encodeURIComponent(loaded.flow.name)}`
          : "GET /api/v1/runs",
        e,
      );
    });
    if (isJsonObject(answer) && typeof answer.runId === "string") runId = answer.runId;
    phase = "wait";
    if (runId !== undefined && flags.verbose) writeStderr(`run_id: ${runId}\n`);
    // a service that answered with the result (0.8) has no run left to cancel: it is printed
    if (cancel.signal.aborted && !(isJsonObject(answer) && isJsonObject(answer.result))) {
      return await cancelled(runId);
    }
    if (isJsonObject(answer) && !isJsonObject(answer.result)) {
      try {
        answer = await client.call("POST", "/api/v1/runs", body, {
          headers: key,
          signal: cancel.signal,
        });
      } catch (e) {
        if (cancel.signal.aborted) return await cancelled(runId);
        // was: the service killed while waiting read 'connection refused ... pass --url'
        throw runId === undefined
          ? e
          : lostWhileWaiting(client.base, `run ${runId}`, `GET /api/v1/runs/${runId}`, e);
      }
    }
    if (!isJsonObject(answer) || !isJsonObject(answer.result)) {
      throw new ServiceError(`POST /api/v1/runs: unexpected answer ${stringifyJson(answer)}`);
    }
    result = answer.result as unknown as FlowResult;
  } catch (e) {
    if (cancel.signal.aborted && e === cancel.signal.reason) {
      writeStderr("cancelled before the run was started on the service\n");
      return EXIT_CANCELLED;
    }
    writeStderr(`error: ${describeError(e)}\n`);
    if (cancel.signal.aborted) return EXIT_CANCELLED;
    return e instanceof ServiceError && e.status === 400 ? EXIT_INVALID : EXIT_FAILED;
  } finally {
    cancel.dispose();
  }

  /** Cancels the run on the service (when it was started) and says so; returns 130. */
  async function cancelled(id: string | undefined): Promise<number> {
    if (id === undefined) {
      writeStderr(
        phase === "store"
          ? "cancelled before the run was started on the service\n"
          : "stopped; the service gave no run id, so a run it started cannot be cancelled from " +
            "here (GET /api/v1/runs lists the runs)\n",
      );
      return EXIT_CANCELLED;
    }
    try {
      await client.call("POST", `/api/v1/runs/${id}/cancel`);
      writeStderr(`run ${id} cancelled on the service\n`);
    } catch (e) {
      writeStderr(
        `error: could not cancel run ${id} on the service: ${describeError(e)}; it may still be ` +
          `running (POST /api/v1/runs/${id}/cancel cancels it)\n`,
      );
    }
    return EXIT_CANCELLED;
  }
  const text = flags.output && /\.ya?ml$/i.test(flags.output)
    ? toYaml(result)
    : stringifyJson(result) + "\n";
  if (flags.output) {
    try {
      await Deno.writeTextFile(flags.output, text);
    } catch (e) {
      writeStderr(
        `error: cannot write ${flags.output}: ${describeError(e)}; printed on stdout instead\n`,
      );
      writeStdout(stringifyJson(result) + "\n");
      return EXIT_FAILED;
    }
  } else writeStdout(text);
  if (result.outcome === "failed") {
    writeStderr(`run failed (code ${result.error.code}): ${result.error.message}\n`);
  } else if (result.outcome === "skipped") writeStderr("run skipped\n");
  return result.outcome === "success" ? EXIT_OK : EXIT_FAILED;
}
