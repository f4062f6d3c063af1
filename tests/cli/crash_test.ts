/**
 * The crash harness (issue 12 acceptance): `stepflow run --store` processes are killed with
 * SIGKILL at seeded random points of a 20-step flow over a stdio step service (and of a flow with
 * a nested map whose items call the service), then resumed. In every trial:
 * - the resumed run's result equals the uncrashed run's;
 * - every step whose result was committed before the kill ran exactly once;
 * - no step ran more than twice, and a step that ran twice did so with another attempt number.
 *
 * The step service (tests/fixtures/workers/journal_worker.ts) appends `<run> <step> <attempt>`
 * to a journal file per trial. A kill point is "after the journal has k lines, plus 0-6 ms".
 * The killed engines are separate processes; resuming happens in this process (one engine, one
 * worker for all trials) except for the first trials, resumed with `stepflow resume`. Seed:
 * `CRASH_SEED` (default 12); trials: `CRASH_TRIALS` (default 50 and 12).
 */
import { assert, assertEquals, assertStrictEquals, REPO_ROOT, withTempDir } from "../_assert.ts";
import { parseJson } from "../../src/json/exact_json.ts";
import { loadConfigFile } from "../../src/config/load.ts";
import { Engine } from "../../src/execution/engine.ts";
import { SqliteStateStore } from "../../src/state/sqlite.ts";
import { RunNotResumableError } from "../../src/errors.ts";
import type { FlowResult } from "../../src/core/flow_result.ts";
import type { JsonValue } from "../../src/json/exact_json.ts";
import type { StateStore } from "../../src/state/store.ts";

const DIR = `${REPO_ROOT}/tests/fixtures/cli/durable`;
const CONFIG = `${DIR}/stepflow-config.yml`;
const MAIN = `${REPO_ROOT}/main.ts`;
const SEED = Number(Deno.env.get("CRASH_SEED") ?? 12);
const TRIALS = Number(Deno.env.get("CRASH_TRIALS") ?? 0);
/** Killed engines running at once. */
const PARALLEL = 3;

/** mulberry32: a small seeded PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Line {
  runId: string;
  stepId: string;
  attempt: number;
}

async function journal(path: string): Promise<Line[]> {
  let text = "";
  try {
    text = await Deno.readTextFile(path);
  } catch {
    return [];
  }
  return text.split("\n").filter((l) => l.trim() !== "").map((l) => {
    const [runId, stepId, attempt] = l.split(" ");
    return { runId, stepId, attempt: Number(attempt) };
  });
}

/** Lines in the file at `path`; reads it only when its size changed since `last`. */
async function lineCount(path: string, last: { size: number; lines: number }): Promise<number> {
  let size: number;
  try {
    size = (await Deno.stat(path)).size;
  } catch {
    return 0;
  }
  if (size === last.size) return last.lines;
  const data = await Deno.readFile(path);
  let n = 0;
  for (const b of data) if (b === 10) n++;
  last.size = data.length;
  last.lines = n;
  return n;
}

/** `(run id, step id)` of every step result committed in the run's tree. */
async function committedSteps(store: StateStore, rootRunId: string): Promise<Set<string>> {
  const out = new Set<string>();
  const runs = [
    rootRunId,
    ...(await store.listRuns({ parentRunId: rootRunId })).map((r) => r.runId),
  ];
  for (const runId of runs) {
    for (const r of await store.getStepResults(runId)) out.add(`${runId} ${r.stepId}`);
  }
  return out;
}

interface Trial {
  index: number;
  /** Lines of the journal to wait for before the kill. */
  k: number;
  extraMs: number;
}

interface Harness {
  flow: string;
  input: (journalPath: string) => JsonValue;
  /** Step executions of one uncrashed run. */
  steps: number;
}

async function runHarness(h: Harness, trials: number, seed: number): Promise<void> {
  await withTempDir(async (dir) => {
    const db = `${dir}/runs.db`;
    const config = await loadConfigFile(CONFIG);
    const store = SqliteStateStore.open(`sqlite:${db}`);
    const engine = await Engine.create(config, { store });
    const { loadFlowFile } = await import("../../src/flow/load.ts");
    const flow = await loadFlowFile(`${DIR}/${h.flow}`);
    try {
      // the uncrashed run
      const expected = await engine.run(flow, h.input(`${dir}/uncrashed.txt`));
      assertStrictEquals(expected.outcome, "success", JSON.stringify(expected));
      assertStrictEquals((await journal(`${dir}/uncrashed.txt`)).length, h.steps);

      const random = prng(seed);
      const plan: Trial[] = Array.from({ length: trials }, (_, index) => ({
        index,
        k: 1 + Math.floor(random() * (h.steps - 1)),
        extraMs: Math.floor(random() * 7),
      }));
      let killed = 0;
      const trial = async (t: Trial) => {
        const jpath = `${dir}/journal-${t.index}.txt`;
        const child = new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            "--quiet",
            MAIN,
            "run",
            "--flow",
            `${DIR}/${h.flow}`,
            "--config",
            CONFIG,
            "--store",
            db,
            "--input-json",
            JSON.stringify(h.input(jpath)),
          ],
          env: { NO_COLOR: "1" },
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        // stderr as it comes: the run id is printed before the run starts
        let stderr = "";
        const readErr = (async () => {
          const dec = new TextDecoder();
          for await (const chunk of child.stderr) stderr += dec.decode(chunk, { stream: true });
        })();
        const stdout = new Response(child.stdout).text();
        let exited = false;
        const status = child.status;
        status.then(() => exited = true, () => exited = true);
        const seen = { size: -1, lines: 0 };
        while (!exited && await lineCount(jpath, seen) < t.k) {
          await new Promise((r) => setTimeout(r, 2));
        }
        if (!exited) {
          if (t.extraMs > 0) await new Promise((r) => setTimeout(r, t.extraMs));
          try {
            child.kill("SIGKILL");
            killed++;
          } catch {
            // it finished first
          }
        }
        await status;
        await readErr;
        await stdout;
        const m = /run_id: ([0-9a-f-]{36})/.exec(stderr);
        assert(m, `trial ${t.index}: no run id on stderr: ${stderr}`);
        const runId = m[1];
        const committed = await committedSteps(store, runId);
        let result: FlowResult;
        if (t.index < 2) {
          // the user's way
          const r = await new Deno.Command(Deno.execPath(), {
            args: [
              "run",
              "-A",
              "--quiet",
              MAIN,
              "resume",
              runId,
              "--config",
              CONFIG,
              "--store",
              db,
            ],
            env: { NO_COLOR: "1" },
            stdin: "null",
          }).output();
          const text = new TextDecoder().decode(r.stdout).trim();
          if (text === "") {
            // the run had completed before the kill
            result = (await store.getRun(runId))!.result!;
          } else {
            result = parseJson(text) as unknown as FlowResult;
          }
        } else {
          try {
            result = await (await engine.resume(runId)).result;
          } catch (e) {
            if (!(e instanceof RunNotResumableError) || e.reason !== "completed") throw e;
            result = (await store.getRun(runId))!.result!;
          }
        }
        assertEquals(result, expected, `trial ${t.index} (k=${t.k}): result`);
        return { t, runId, jpath, committed };
      };
      const done: Awaited<ReturnType<typeof trial>>[] = [];
      let next = 0;
      await Promise.all(Array.from({ length: PARALLEL }, async () => {
        while (next < plan.length) done.push(await trial(plan[next++]));
      }));
      // workers of killed engines may finish a call after the kill: give them a moment
      await new Promise((r) => setTimeout(r, 300));
      let reran = 0;
      for (const { t, jpath, committed } of done) {
        const lines = await journal(jpath);
        const byStep = new Map<string, number[]>();
        for (const l of lines) {
          const key = `${l.runId} ${l.stepId}`;
          byStep.set(key, [...byStep.get(key) ?? [], l.attempt]);
        }
        assertStrictEquals(
          new Set([...byStep.keys()].map((k) => k.split(" ")[1])).size,
          new Set(
            (await journal(`${dir}/uncrashed.txt`)).map((l) => l.stepId),
          ).size,
          `trial ${t.index}: every step ran`,
        );
        for (const [key, attempts] of byStep) {
          assert(attempts.length <= 2, `trial ${t.index}: ${key} ran ${attempts.length} times`);
          if (committed.has(key)) {
            assertStrictEquals(attempts.length, 1, `trial ${t.index}: committed ${key} ran again`);
          }
          if (attempts.length === 2) {
            reran++;
            // distinct attempt numbers (the lines may come in either order: the killed
            // engine's worker can finish its call after the resumed run's call did)
            assert(
              attempts[0] !== attempts[1],
              `trial ${t.index}: ${key} ran twice with attempt ${attempts[0]}`,
            );
          }
        }
      }
      // the harness did crash runs in the middle
      assert(killed >= trials * 0.8, `only ${killed} of ${trials} engines were killed`);
      assert(reran > 0, "no step was caught in flight: the kill points miss the calls");
    } finally {
      await engine.close();
    }
  });
}

Deno.test({
  name: "crash harness: a 20-step flow over a step service, killed at 50 points and resumed",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    runHarness(
      {
        flow: "crash.yaml",
        input: (journal) => ({ value: 1, delay_ms: 3, journal }),
        steps: 20,
      },
      TRIALS || 50,
      SEED,
    ),
});

Deno.test({
  name: "crash harness: a map of nested runs calling the step service, killed at 12 points",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    runHarness(
      {
        flow: "crash_map.yaml",
        input: (journal) => ({
          value: 1,
          delay_ms: 3,
          journal,
          items: Array.from({ length: 6 }, (_, i) => ({ value: i * 10, delay_ms: 3, journal })),
        }),
        steps: 14,
      },
      TRIALS || 20,
      SEED + 1,
    ),
});
