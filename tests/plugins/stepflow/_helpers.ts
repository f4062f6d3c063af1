/**
 * Test helpers for the stepflow plugin: an in-memory EngineServices double, a log that
 * records lines, and a plugin factory with fast restarts.
 * @module
 */
import type { Blob, EngineServices, ExecuteContext } from "../../../src/plugins/plugin.ts";
import type { Logger } from "../../../src/log.ts";
import type { JsonValue } from "../../../src/json/exact_json.ts";
import { success } from "../../../src/core/flow_result.ts";
import { StepflowPlugin } from "../../../src/plugins/stepflow/plugin.ts";
import type { StepflowPluginConfig } from "../../../src/config/model.ts";
import { REPO_ROOT } from "../../_assert.ts";
import { recordingLogger, testExecuteContext } from "../../_log.ts";
import { blobId } from "../../../src/state/blob_id.ts";

/** Directory of the worker fixtures. */
export const WORKERS = `${REPO_ROOT}/tests/fixtures/workers`;

/** Logger capturing lines (the tests' one recording logger). */
export const memLog = recordingLogger;

/**
 * An in-memory EngineServices: real content-addressed blobs; `evaluateFlow` "runs" a flow blob
 * whose data is `{double: true}` by doubling `input.x`, and records calls.
 */
export class FakeEngine implements EngineServices {
  blobs = new Map<string, Blob>();
  calls: string[] = [];
  putBlob(data: JsonValue, blobType: "data" | "flow"): Promise<string> {
    const id = blobId(data);
    this.blobs.set(id, { data, blobType });
    this.calls.push(`putBlob ${blobType}`);
    return Promise.resolve(id);
  }
  getBlob(blobId: string): Promise<Blob> {
    this.calls.push("getBlob");
    const b = this.blobs.get(blobId);
    return b ? Promise.resolve(b) : Promise.reject(new Error(`Blob not found: ${blobId}`));
  }
  evaluateFlow(flowId: string, input: JsonValue) {
    this.calls.push("evaluateFlow");
    const b = this.blobs.get(flowId);
    if (!b || b.blobType !== "flow") {
      return Promise.reject(new Error(`Not found: flow with ID '${flowId}'`));
    }
    const x = (input as { x: number }).x;
    return Promise.resolve(success({ doubled: x * 2 }));
  }
  getMetadata(_flowId: string, stepId?: string) {
    this.calls.push("getMetadata");
    return Promise.resolve({
      flow_metadata: { name: "fake" },
      step_metadata: stepId ? { step: stepId } : null,
    });
  }
  submitBatch(_flowId: string, inputs: JsonValue[]) {
    this.calls.push("submitBatch");
    return Promise.resolve({
      batch_id: "00000000-0000-4000-8000-000000000001",
      total_runs: inputs.length,
    });
  }
  getBatch(batchId: string) {
    this.calls.push("getBatch");
    return Promise.resolve({
      details: {
        batch_id: batchId,
        flow_id: "f",
        total_runs: 1,
        status: "running" as const,
        created_at: "2025-01-01T00:00:00Z",
        completed_runs: 1,
        running_runs: 0,
        failed_runs: 0,
        cancelled_runs: 0,
        paused_runs: 0,
      },
      outputs: [],
    });
  }
}

/** An ExecuteContext for tests (tests/_log.ts) with `engine`, step `stepId`, `attempt`. */
export function execCtx(engine: EngineServices, stepId = "s1", attempt = 1): ExecuteContext {
  return testExecuteContext({
    runId: "00000000-0000-4000-8000-0000000000aa",
    flowId: "f".repeat(64),
    engine,
    stepId,
    attempt,
  });
}

/** Environment a Deno worker needs when spawned with only the configured env. */
export const DENO_ENV = {
  HOME: Deno.env.get("HOME") ?? "/root",
  ...(Deno.env.get("DENO_DIR") ? { DENO_DIR: Deno.env.get("DENO_DIR")! } : {}),
  NO_COLOR: "1",
};

/** Starts a stdio plugin on a worker fixture. Restarts are fast (1 ms doubling, at most 3). */
export async function startStdio(
  args: string[],
  options: { command?: string; log?: Logger; engine?: EngineServices; extra?: object } = {},
): Promise<StepflowPlugin> {
  const config = {
    type: "stepflow",
    transport: "stdio",
    // "deno" means this Deno binary: CI runs Deno through npx, without `deno` on PATH
    command: options.command === "deno" ? Deno.execPath() : options.command ?? "python3",
    args,
    env: options.command === "deno" ? DENO_ENV : { PYTHONUNBUFFERED: "1" },
    restartDelay: 1,
    maxRestartDelay: 4,
    maxRestarts: 3,
    closeGrace: 1000,
    ...options.extra,
  } as StepflowPluginConfig;
  const plugin = new StepflowPlugin("w", config);
  await plugin.init({
    name: "w",
    workingDirectory: WORKERS,
    engine: options.engine ?? new FakeEngine(),
    log: options.log ?? memLog(),
  });
  return plugin;
}

/** A worker process serving HTTP; `url` is where it listens. */
export interface HttpWorkerProcess {
  url: string;
  child: Deno.ChildProcess;
  stop(): Promise<void>;
}

/**
 * Spawns `deno run <permissions> <script> --http --port 0` (in `cwd`, default the worker
 * fixtures) and waits for its `listening on http://H:P` line on stderr (the rest is drained).
 */
export async function spawnHttpWorker(
  script: string,
  options: { cwd?: string; permissions?: string[] } = {},
): Promise<HttpWorkerProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", ...(options.permissions ?? ["-A"]), script, "--http", "--port", "0"],
    cwd: options.cwd ?? WORKERS,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  let url: string | undefined;
  while (url === undefined) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`worker exited before listening: ${seen}`);
    seen += value;
    url = /listening on (http:\/\/\S+)/.exec(seen)?.[1];
  }
  const drained = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (Deno.env.get("STEPFLOW_TEST_VERBOSE")) console.error(value);
    }
  })();
  return {
    url: url + "/",
    child,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch {
        // already exited
      }
      await child.status;
      await drained;
    },
  };
}

/** Starts an HTTP plugin on `url`. */
export async function startHttp(
  url: string,
  options: { log?: Logger; engine?: EngineServices } = {},
): Promise<StepflowPlugin> {
  const plugin = new StepflowPlugin("h", {
    type: "stepflow",
    transport: "http",
    url,
    args: [],
    env: {},
  } as StepflowPluginConfig);
  await plugin.init({
    name: "h",
    workingDirectory: WORKERS,
    engine: options.engine ?? new FakeEngine(),
    log: options.log ?? memLog(),
  });
  return plugin;
}
