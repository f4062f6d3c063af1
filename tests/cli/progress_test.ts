/**
 * The progress line (issue 15.2, src/cli/progress.ts): the counting and the text of the line
 * (events in, text out), then `stepflow run` and `stepflow test` as a user sees them — on a
 * terminal through a pseudo-terminal (`script` from util-linux), and in a pipe — with stdout
 * holding only the result.
 * @module
 */
import {
  assert,
  assertEquals,
  assertMatch,
  assertStringIncludes,
  REPO_ROOT,
  runCli,
  withTempDir,
} from "../_assert.ts";
import { formatMs, RunProgress } from "../../src/cli/progress.ts";
import type { FlowResult } from "../../src/core/flow_result.ts";

const OK: FlowResult = { outcome: "success", result: null };

Deno.test("progress counts the top-level run's steps, its nested runs, and names the slowest step", () => {
  let now = 1_000_000;
  const p = new RunProgress({ mode: "tty", write: () => {}, now: () => now, hook: false });
  p.begin({ totalSteps: 4 });
  try {
    p.runStarted({ type: "run_started", runId: "r", flowId: "f", rootRunId: "r", at: now });
    const index: Record<string, number> = { slow: 0, map: 1, skip: 2, a: 3 };
    const started = (stepId: string, at: number, attempt = 1) =>
      p.stepStarted({
        type: "step_started",
        runId: "r",
        stepId,
        stepIndex: index[stepId],
        component: "/c",
        attempt,
        at,
      });
    const finished = (stepId: string, result: FlowResult, runId = "r") =>
      p.stepFinished({
        type: "step_finished",
        runId,
        stepId,
        stepIndex: index[stepId] ?? 0,
        outcome: result.outcome,
        durationMs: 1,
        at: now,
        result,
      });
    started("slow", now);
    started("map", now + 500);
    now += 2_000;
    assertEquals(p.text(), "2.0s | steps 0/4 done, 2 running | slowest: slow 2.0s");
    // a retry keeps the step's first start
    started("slow", now, 2);
    // map items: nested runs, two levels deep, counted as runs (their steps are not counted)
    const nested = (runId: string, parentRunId: string) =>
      p.runStarted({
        type: "run_started",
        runId,
        flowId: "g",
        parentRunId,
        rootRunId: "r",
        runKey: `${parentRunId}/map/0`,
        at: now,
      });
    nested("n1", "r");
    nested("n2", "r");
    nested("n1a", "n1");
    p.stepStarted({
      type: "step_started",
      runId: "n1",
      stepId: "inner",
      stepIndex: 0,
      component: "/c",
      attempt: 1,
      at: now,
    });
    finished("inner", OK, "n1");
    const done = (runId: string, status: "completed" | "failed") =>
      p.runFinished({ type: "run_finished", runId, status, result: OK, at: now });
    done("n1a", "completed");
    done("n2", "failed");
    // another top-level run (not followed) changes nothing
    p.runStarted({ type: "run_started", runId: "other", flowId: "f", rootRunId: "other", at: now });
    p.stepStarted({
      type: "step_started",
      runId: "other",
      stepId: "x",
      stepIndex: 0,
      component: "/c",
      attempt: 1,
      at: now,
    });
    assertEquals(
      p.text(),
      "2.0s | steps 0/4 done, 2 running | nested runs 1 done, 1 running, 1 failed | slowest: slow 2.0s",
    );
    finished("slow", { outcome: "failed", error: { code: 500, message: "no" } });
    finished("skip", { outcome: "skipped" });
    finished("a", OK);
    now += 63_000;
    assertEquals(
      p.text(),
      "1m05s | steps 1/4 done, 1 running, 1 failed, 1 skipped | nested runs 1 done, 1 running, 1 failed | slowest: map 1m04s",
    );
    // the next run (the next test case) starts from zero, with its label
    p.begin({ label: "case b", totalSteps: 1 });
    p.runStarted({ type: "run_started", runId: "r2", flowId: "f", rootRunId: "r2", at: now });
    assertEquals(p.text(), "case b | 0.0s | steps 0/1 done, 0 running");
  } finally {
    p.end();
  }
});

Deno.test("formatMs: tenths of a second, then minutes and hours", () => {
  assertEquals(
    [0, 99, 950, 12_345, 59_999, 60_000, 125_000, 3_600_000, 3_725_000].map(formatMs),
    ["0.0s", "0.0s", "0.9s", "12.3s", "59.9s", "1m00s", "2m05s", "1h00m", "1h02m"],
  );
});

Deno.test("progress on a terminal: redrawn in place, cut to the width, cleared at the end; plain lines elsewhere", async () => {
  const tty: string[] = [];
  let drawn!: () => void;
  const twoDraws = new Promise<void>((r) => drawn = r);
  const p = new RunProgress({
    mode: "tty",
    write: (s) => {
      tty.push(s);
      if (tty.length === 2) drawn();
    },
    columns: () => 40,
    color: false,
    redrawMs: 5,
    hook: false,
  });
  // the progress timer does not keep a process alive: this one does, until the test ends
  const alive = setTimeout(() => {}, 60_000);
  p.begin({ label: "case a-rather-long-name-for-a-case", totalSteps: 3 });
  await twoDraws;
  p.end();
  assert(tty.length >= 2);
  for (const frame of tty.slice(0, -1)) {
    assert(frame.endsWith("…\x1b[K"), JSON.stringify(frame));
    assertMatch(frame, /^\r[-\\|/] case a-rather-long-name-for-a-case /);
    assertEquals(Array.from(frame.slice(1, -3)).length, 39, "cut to the width minus one");
  }
  assertEquals(tty.at(-1), "\r\x1b[K", "cleared before the result is printed");

  const plain: string[] = [];
  let printed!: () => void;
  const onePlainLine = new Promise<void>((r) => printed = r);
  const q = new RunProgress({
    mode: "plain",
    write: (s) => {
      plain.push(s);
      printed();
    },
    intervalMs: 5,
    json: false,
  });
  q.begin({ totalSteps: 2 });
  await onePlainLine;
  q.end();
  clearTimeout(alive);
  assertMatch(plain[0], /^progress: \d+\.\ds \| steps 0\/2 done, 0 running\n$/);
});

// ---- the CLI, end to end ----

const WORKER = `${REPO_ROOT}/tests/fixtures/workers/limits/limits_worker.py`;
const MAIN = `${REPO_ROOT}/main.ts`;
const HAS_SCRIPT = (() => {
  try {
    return Deno.statSync("/usr/bin/script").isFile;
  } catch {
    return false;
  }
})();

/** A config with the sleeping step service, and a flow: `a` (ms) then `b` (ms), `side` beside. */
async function setup(dir: string, ms: number): Promise<string> {
  await Deno.writeTextFile(
    `${dir}/stepflow-config.yml`,
    `plugins:
  w: { type: stepflow, command: python3, args: [${JSON.stringify(WORKER)}] }
routes:
  "/w/{component}":
    - plugin: w
`,
  );
  const flow = `${dir}/flow.yaml`;
  await Deno.writeTextFile(
    flow,
    `schema: https://stepflow.org/schemas/v1/flow.json
name: slow
description: three steps of the sleeping step service
steps:
  - id: a
    component: /w/sleep
    input: { ms: ${ms} }
  - id: b
    component: /w/sleep
    input: { ms: ${ms}, after: { $from: { step: a }, path: slept } }
  - id: side
    component: /w/sleep
    input: { ms: ${ms} }
output: { b: { $from: { step: b }, path: slept }, side: { $from: { step: side }, path: slept } }
test:
  cases:
    - name: slow case
      input: {}
      output: { outcome: success, result: { b: ${ms}, side: ${ms} } }
`,
  );
  return flow;
}

const RESULT = (ms: number) => `{"outcome":"success","result":{"b":${ms},"side":${ms}}}\n`;

/** Runs `command` (a shell command line) on a pseudo-terminal; returns what the terminal got. */
async function onTerminal(
  command: string,
  cwd: string,
  env: Record<string, string> = {},
): Promise<{ code: number; screen: string }> {
  const out = await new Deno.Command("script", {
    args: ["-qfec", command, "/dev/null"],
    cwd,
    // the caller's NO_COLOR (CI sets it) must not decide whether colours are tested
    env: { ...withoutNoColor(), TERM: "xterm", ...env },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, screen: new TextDecoder().decode(out.stdout) };
}

function withoutNoColor(): Record<string, string> {
  const env = Deno.env.toObject();
  delete env.NO_COLOR;
  return env;
}

const deno = (args: string) => `'${Deno.execPath()}' run -A --quiet '${MAIN}' ${args}`;

Deno.test({
  name:
    "stepflow run on a terminal: a live line with counts and the slowest step, cleared before the result; stdout only the result",
  ignore: !HAS_SCRIPT,
  fn: () =>
    withTempDir(async (dir) => {
      await setup(dir, 400);
      // stdout to a file, stderr on the terminal (colours allowed)
      const r1 = await onTerminal(deno(`run --flow flow.yaml --input-json '{}' > out.json`), dir);
      assertEquals(r1.code, 0, r1.screen);
      assertEquals(await Deno.readTextFile(`${dir}/out.json`), RESULT(400));
      const frames = r1.screen.split("\r").filter((f) => f.includes("steps"));
      assert(frames.length >= 3, `redrawn several times: ${JSON.stringify(r1.screen)}`);
      assertStringIncludes(r1.screen, "steps 0/3 done, 2 running");
      assertStringIncludes(r1.screen, "steps 2/3 done, 1 running");
      assertMatch(r1.screen, /slowest: (a|side) \d\.\ds/);
      assertStringIncludes(r1.screen, "\x1b[2m", "the clock is dim");
      assert(!r1.screen.includes("\n- ") && !r1.screen.includes("progress:"), "one line");
      assert(r1.screen.endsWith("\r\x1b[K"), `cleared at the end: ${JSON.stringify(r1.screen)}`);

      // both on the terminal, NO_COLOR: no colour, and the result starts on a clean line
      const r2 = await onTerminal(deno(`run --flow flow.yaml --input-json '{}'`), dir, {
        NO_COLOR: "1",
      });
      assertEquals(r2.code, 0, r2.screen);
      assert(!r2.screen.includes("\x1b[2m") && !r2.screen.includes("\x1b[31m"), "no colour");
      assertStringIncludes(r2.screen, "steps 0/3 done");
      assertStringIncludes(r2.screen, `\r\x1b[K${RESULT(400).trimEnd()}\r\n`);
    }),
});

Deno.test({
  name: "stepflow test on a terminal: the case's line is cleared before each report line",
  ignore: !HAS_SCRIPT,
  fn: () =>
    withTempDir(async (dir) => {
      await setup(dir, 300);
      const r = await onTerminal(deno(`test flow.yaml`), dir, { NO_COLOR: "1" });
      assertEquals(r.code, 0, r.screen);
      assertMatch(r.screen, /\r[-\\|/] case slow case \| \d\.\ds \| steps \d\/3 done/);
      assertStringIncludes(r.screen, "\r\x1b[Kflow.yaml: 1/1 passed\r\n");
      assert(r.screen.endsWith("1 passed, 0 failed\r\n"), r.screen);
    }),
});

Deno.test("stepflow run in a pipe: a plain line every STEPFLOW_PROGRESS_INTERVAL, stdout only the result; --quiet: none", async () => {
  await withTempDir(async (dir) => {
    await setup(dir, 500);
    const r = await runCli(["run", "--flow", "flow.yaml", "--input-json", "{}"], {
      cwd: dir,
      env: { STEPFLOW_PROGRESS_INTERVAL: "300ms" },
    });
    assertEquals(r.code, 0, r.stderr);
    assertEquals(r.stdout, RESULT(500));
    const lines = r.stderr.split("\n").filter((l) => l.startsWith("progress: "));
    assert(lines.length >= 2, r.stderr);
    assertMatch(lines[0], /^progress: 0\.\ds \| steps 0\/3 done, 2 running \| slowest: (a|side) /);
    assert(!r.stderr.includes("\r") && !r.stderr.includes("\x1b"), "no terminal codes");
    // --quiet: none
    const quiet = await runCli(["run", "--quiet", "--flow", "flow.yaml", "--input-json", "{}"], {
      cwd: dir,
      env: { STEPFLOW_PROGRESS_INTERVAL: "300ms" },
    });
    assertEquals(quiet.stdout, RESULT(500));
    assertEquals(quiet.stderr, "");
  });
});

Deno.test("run-batch in a pipe: no count line at the start, one a STEPFLOW_PROGRESS_INTERVAL, the final counts", async () => {
  await withTempDir(async (dir) => {
    await setup(dir, 400);
    await Deno.writeTextFile(`${dir}/in.jsonl`, "{}\n{}\n");
    // before: a line '0/2 runs: ..., 1 running' at once whatever the interval, which the
    // variable did not set (5 s always)
    const quick = await runCli(
      ["run-batch", "--flow", "flow.yaml", "--inputs", "in.jsonl", "--max-concurrent", "1"],
      { cwd: dir, env: { STEPFLOW_PROGRESS_INTERVAL: "1h" } },
    );
    assertEquals(quick.code, 0, quick.stderr);
    const lines = quick.stderr.split("\n").filter((l) => l.startsWith("progress: "));
    assertEquals(lines, [
      "progress: [==============================] 2/2 runs: 2 completed, 0 failed, 0 running",
    ]);
    const often = await runCli(
      ["run-batch", "--flow", "flow.yaml", "--inputs", "in.jsonl", "--max-concurrent", "1"],
      { cwd: dir, env: { STEPFLOW_PROGRESS_INTERVAL: "100ms" } },
    );
    assertEquals(often.code, 0, often.stderr);
    const counts = often.stderr.split("\n").filter((l) => l.startsWith("progress: "));
    // the first input's end (800 ms in) is past the interval: a line before the final one
    assert(counts.length >= 2, often.stderr);
    assert(counts.some((l) => /\] 1\/2 runs: 1 completed/.test(l)), often.stderr);
  });
});
