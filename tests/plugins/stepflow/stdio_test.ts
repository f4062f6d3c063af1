import { assert, assertEquals, assertRejects, assertStringIncludes } from "../../_assert.ts";
import { execCtx, FakeEngine, memLog, startStdio, WORKERS } from "./_helpers.ts";
import { StdioWorker } from "../../../src/plugins/stepflow/stdio.ts";
import { OutputLimitError, ProtocolError } from "../../../src/errors.ts";
import type { FlowFailed, FlowSuccess } from "../../../src/core/flow_result.ts";

const W = "py_worker.py";

Deno.test("stdio plugin: handshake, components/list and execute", async () => {
  const engine = new FakeEngine();
  const p = await startStdio([W], { engine });
  try {
    const list = await p.listComponents();
    assertEquals(list.map((c) => c.component), ["/echo", "/double"]);
    assertEquals(list[0].description, "Returns its input");
    const r = await p.execute("/double", { x: 21 }, execCtx(engine));
    assertEquals(r, { outcome: "success", result: { y: 42 } });
  } finally {
    await p.close();
  }
});

Deno.test("stdio plugin: numbers round-trip exactly through a worker", async () => {
  const engine = new FakeEngine();
  const p = await startStdio([W], { engine });
  try {
    const { parseJson, stringifyJson } = await import("../../../src/json/exact_json.ts");
    const input = parseJson('{"a":9007199254740993,"b":15.0,"c":[1.50,-0.0]}');
    const r = await p.execute("/echo", input, execCtx(engine)) as FlowSuccess;
    // Python prints 1.50 as 1.5: the engine keeps what the worker wrote
    assertEquals(stringifyJson(r.result), '{"a":9007199254740993,"b":15.0,"c":[1.5,-0.0]}');
  } finally {
    await p.close();
  }
});

Deno.test("stdio plugin: a JSON-RPC error becomes a failed result with the worker's code", async () => {
  const engine = new FakeEngine();
  const p = await startStdio([W], { engine });
  try {
    const r = await p.execute("/nope", {}, execCtx(engine));
    assertEquals(r, {
      outcome: "failed",
      error: { code: -32001, message: "Component '/nope' not found" },
    });
  } finally {
    await p.close();
  }
});

Deno.test("stdio plugin: a worker that exits on its second execute is restarted and the call retried with attempt 2", async () => {
  const engine = new FakeEngine();
  const log = memLog();
  const p = await startStdio([W, "--crash-on-second"], { engine, log });
  try {
    assertEquals(await p.execute("/attempt", {}, execCtx(engine)), {
      outcome: "success",
      result: { attempt: 1 },
    });
    assertEquals(await p.execute("/attempt", {}, execCtx(engine)), {
      outcome: "success",
      result: { attempt: 2 },
    });
    const text = log.lines.join("\n");
    assertStringIncludes(
      text,
      "step service 'w' exited with code 3; last stderr: crashing on purpose",
    );
    assertStringIncludes(text, "restarting step service 'w' in 1 ms");
  } finally {
    await p.close();
  }
});

Deno.test("stdio plugin: a worker that keeps crashing gives a clear 'exited with code 3' failure", async () => {
  const engine = new FakeEngine();
  const p = await startStdio([W, "--always-crash"], { engine });
  try {
    const r = await p.execute("/echo", {}, execCtx(engine)) as FlowFailed;
    assertEquals(r.outcome, "failed");
    assertEquals(r.error.code, -32603);
    assertStringIncludes(r.error.message, "step service 'w' exited with code 3");
    assertStringIncludes(r.error.message, "crashing on purpose");
    assert(!r.error.message.includes("\x1b"), "colour codes are stripped from the stderr tail");
    // keeps failing until the restart budget (3) is used up, then fails at once
    for (let i = 0; i < 3; i++) await p.execute("/echo", {}, execCtx(engine));
    const last = await p.execute("/echo", {}, execCtx(engine)) as FlowFailed;
    assertStringIncludes(last.error.message, "exited with code 3");
    assertStringIncludes(last.error.message, "gave up after 3 restarts in a row");
  } finally {
    await p.close();
  }
});

Deno.test("stdio plugin: 'Starting...', a response split across writes and a half line at exit", async () => {
  const engine = new FakeEngine();
  const log = memLog();
  const p = await startStdio([W, "--noisy"], { engine, log });
  try {
    const r = await p.execute("/double", { x: 2 }, execCtx(engine));
    assertEquals(r, { outcome: "success", result: { y: 4 } });
  } finally {
    await p.close();
  }
  const text = log.lines.join("\n");
  assertStringIncludes(
    text,
    `[warn] step service 'w': skipped a line that is not JSON: "Starting..."`,
  );
  assertStringIncludes(
    text,
    `step service 'w': skipped an unfinished last line on stdout: "{\\"jsonrpc\\":\\"2.0\\",\\"id\\":\\"half"`,
  );
});

Deno.test("stdio plugin: a response to a notification and an unknown response id are logged and ignored", async () => {
  const engine = new FakeEngine();
  const log = memLog();
  const p = await startStdio([W, "--unknown-id"], { engine, log });
  try {
    assertEquals(await p.execute("/double", { x: 5 }, execCtx(engine)), {
      outcome: "success",
      result: { y: 10 },
    });
  } finally {
    await p.close();
  }
  const text = log.lines.join("\n");
  assertStringIncludes(text, 'ignored a response with unknown id "no-such-request"');
  assertStringIncludes(text, "ignored an invalid message");
});

Deno.test("stdio plugin: a 20 MB output arrives byte-exact", async () => {
  const engine = new FakeEngine();
  const p = await startStdio([W], { engine });
  try {
    const size = 20 * 1024 * 1024;
    const r = await p.execute("/big", { size }, execCtx(engine)) as FlowSuccess;
    const text = (r.result as { text: string }).text;
    const unit = 'abcdefghij\u00e9\u2713"\\\n0123456789';
    const expected = unit.repeat(Math.ceil(size / unit.length)).slice(0, size);
    assertEquals(text.length, size);
    assert(text === expected, "20 MB output differs");
  } finally {
    await p.close();
  }
});

Deno.test("stdio plugin: a worker that closes stdin during a 5 MB request fails that call only", async () => {
  const engine = new FakeEngine();
  const log = memLog();
  const p = await startStdio([W, "--close-stdin"], { engine, log });
  try {
    const big = "x".repeat(5 * 1024 * 1024);
    const r = await p.execute("/echo", { big }, execCtx(engine)) as FlowFailed;
    assertEquals(r.outcome, "failed");
    assertEquals(r.error.code, -32603);
    assertStringIncludes(
      r.error.message,
      "could not send 'components/execute' to step service 'w'",
    );
    assertStringIncludes(r.error.message, "stdin is closed");
    // the engine stopped that process; the next call runs on a fresh one
    assertEquals(await p.execute("/double", { x: 1 }, execCtx(engine)), {
      outcome: "success",
      result: { y: 2 },
    });
  } finally {
    await p.close();
  }
});

Deno.test("stdio plugin: a worker calls blobs/put, blobs/get and flows/evaluate inside an execute", async () => {
  const engine = new FakeEngine();
  const p = await startStdio([W], { engine });
  try {
    const r = await p.execute("/context", { x: 4 }, execCtx(engine)) as FlowSuccess;
    const out = r.result as Record<string, unknown>;
    assertEquals(out.got, { data: { x: 4 }, blob_type: "data" });
    assertEquals(out.evaluated, { outcome: "success", result: { doubled: 8 } });
    assertEquals((out.blob_id as string).length, 64);
    assertEquals(engine.calls, ["putBlob data", "getBlob", "putBlob flow", "evaluateFlow"]);
  } finally {
    await p.close();
  }
});

Deno.test("stdio plugin: worker requests go to the engine of the execute call they belong to", async () => {
  const plugin = new FakeEngine();
  const e1 = new FakeEngine();
  const e2 = new FakeEngine();
  const p = await startStdio([W], { engine: plugin });
  try {
    const [a, b] = await Promise.all([
      p.execute("/context", { x: 1 }, { ...execCtx(e1, "a"), runId: "run-1" }),
      p.execute("/context", { x: 2 }, { ...execCtx(e2, "b"), runId: "run-2" }),
    ]);
    assertEquals([a.outcome, b.outcome], ["success", "success"]);
    assertEquals(e1.calls.length, 4);
    assertEquals(e2.calls.length, 4);
    assertEquals(plugin.calls.length, 0);
  } finally {
    await p.close();
  }
});

Deno.test("stdio plugin: 100 concurrent executes on one worker", async () => {
  const engine = new FakeEngine();
  const p = await startStdio([W], { engine });
  try {
    const rs = await Promise.all(
      Array.from({ length: 100 }, (_, i) => p.execute("/double", { x: i }, execCtx(engine))),
    );
    assertEquals(
      rs,
      Array.from({ length: 100 }, (_, i) => ({ outcome: "success", result: { y: 2 * i } })),
    );
  } finally {
    await p.close();
  }
});

Deno.test("stdio plugin: close() stops a worker that ignores stdin closing, and its children", async () => {
  const engine = new FakeEngine();
  const log = memLog();
  const p = await startStdio([
    "-c",
    `
import os, subprocess, sys, json
child = subprocess.Popen(["sleep", "60"])
for line in sys.stdin:
    m = json.loads(line)
    if "id" in m:
        print(json.dumps({"jsonrpc": "2.0", "id": m["id"], "result": {"server_protocol_version": 1}}), flush=True)
        sys.stderr.write(f"child {child.pid}\\n"); sys.stderr.flush()
import time
while True: time.sleep(1)
`,
  ], { engine, log, extra: { closeGrace: 200, env: { PATH: Deno.env.get("PATH")! } } });
  const t0 = performance.now();
  await p.close();
  assert(performance.now() - t0 < 3000, "close took too long");
  const pid = /child (\d+)/.exec(log.lines.join("\n"))?.[1];
  assert(pid, `the worker did not report its child: ${log.lines.join("\n")}`);
  // the child (in the worker's process group) is gone: no /proc entry, or a zombie at most
  let state = "gone";
  try {
    state = (await Deno.readTextFile(`/proc/${pid}/stat`)).split(") ")[1]?.[0] ?? "gone";
  } catch {
    // no such process
  }
  assert(state === "gone" || state === "Z", `child ${pid} still running (state ${state})`);
});

Deno.test("stdio transport: an answer longer than maxLineBytes fails its call with OutputLimitError; the worker stays", async () => {
  const log = memLog();
  const w = new StdioWorker({
    name: "w",
    command: "/usr/bin/env",
    args: ["python3", "hostile_worker.py"],
    env: { PATH: Deno.env.get("PATH")! },
    cwd: `${WORKERS}/hostile`,
    log,
    onRequest: () => Promise.reject(new ProtocolError(-32601, "no")),
    restart: { initialDelayMs: 1, maxDelayMs: 1, maxRestarts: 3 },
    maxLineBytes: 4096,
    closeGraceMs: 500,
  });
  await w.start();
  try {
    const exec = (component: string, input: unknown) =>
      w.request("components/execute", { component, input, attempt: 1, observability: {} });
    const err = await assertRejects(() => exec("/big", { n: 10_000 }), OutputLimitError);
    assertStringIncludes(
      err.message,
      "step service 'w' sent an answer to 'components/execute' of more than ",
    );
    assertEquals((err as OutputLimitError).limit, {
      limitBytes: 4096,
      sizeBytes: (err as OutputLimitError & { limit: { sizeBytes: number } }).limit.sizeBytes,
    });
    // the same process serves the next call (its call count goes on)
    assertEquals(await exec("/calls", {}), { output: 2 });
    // a long line that answers nothing still stops the worker (memory stays bounded)
    const gone = await assertRejects(() => exec("/garbage", { n: 10_000 }));
    assertStringIncludes(gone.message, "wrote a line longer than 4096 bytes on stdout");
    assertEquals(await exec("/calls", {}), { output: 1 }); // a fresh process
  } finally {
    await w.close();
  }
});

Deno.test("stdio transport: an answer over maxOutputBytes fails at once with OutputLimitError, not read to its end", async () => {
  const w = new StdioWorker({
    name: "w",
    command: "/usr/bin/env",
    args: ["python3", "hostile_worker.py"],
    env: { PATH: Deno.env.get("PATH")! },
    cwd: `${WORKERS}/hostile`,
    log: memLog(),
    onRequest: () => Promise.reject(new ProtocolError(-32601, "no")),
    maxOutputBytes: 1000,
    closeGraceMs: 500,
  });
  await w.start();
  try {
    const exec = (component: string, input: unknown) =>
      w.request("components/execute", { component, input, attempt: 1, observability: {} });
    const err = await assertRejects(() => exec("/big", { n: 5_000_000 }), OutputLimitError);
    const limit = (err as OutputLimitError).limit as { limitBytes: number; sizeBytes: number };
    assertEquals(limit.limitBytes, 1000);
    assert(limit.sizeBytes > 1000 + 65536 && limit.sizeBytes < 5_000_000, String(limit.sizeBytes));
    // the rest of the line is skipped: the next answer is read normally
    assertEquals(await exec("/echo", { a: 1 }), { output: { a: 1 } });
    // an answer without its newline is taken once stdout is quiet
    assertEquals(await exec("/no_newline", {}), { output: { ok: true } });
  } finally {
    await w.close();
  }
});

Deno.test("stdio plugin: a worker that closes stdout but keeps running fails the call (no hang) and is stopped", async () => {
  const engine = new FakeEngine();
  const log = memLog();
  const p = await startStdio([W, "--close-stdout"], { engine, log });
  try {
    const t0 = performance.now();
    const r = await p.execute("/echo", {}, execCtx(engine)) as FlowFailed;
    assertEquals(r.outcome, "failed");
    assertEquals(r.error.code, -32603);
    assertStringIncludes(
      r.error.message,
      "step service 'w' was stopped because it closed its stdout but kept running",
    );
    assert(performance.now() - t0 < 15_000);
  } finally {
    await p.close();
  }
});

Deno.test("stdio plugin: components/list is bounded by the plugin timeout, and malformed entries are skipped", async () => {
  const log = memLog();
  const p = await startStdio([W, "--list-never"], { log, extra: { timeout: "300ms" } });
  try {
    const t0 = performance.now();
    const err = await p.listComponents().then(() => undefined, (e: Error) => e);
    assert(err, "listComponents must fail");
    assertEquals(
      err.message,
      "step service 'w' did not answer 'components/list' within 300 ms",
    );
    assert(performance.now() - t0 < 5_000);
  } finally {
    await p.close();
  }
  const p2 = await startStdio([W, "--list-bad"], { log });
  try {
    assertEquals(await p2.listComponents(), [{ component: "/echo" }]);
    assertStringIncludes(
      log.lines.join("\n"),
      "ignored 3 entries of components/list without a string 'component'",
    );
  } finally {
    await p2.close();
  }
});

/** True if `pid` runs (a zombie waiting for a non-reaping init counts as gone). */
function running(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

Deno.test({
  name:
    "stdio plugin: a child that a worker left behind (ignoring SIGTERM) does not outlive close()",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const engine = new FakeEngine();
    const p = await startStdio([W, "--orphan"], { engine, extra: { closeGrace: 300 } });
    let child = 0;
    try {
      const r = await p.execute("/echo", {}, execCtx(engine)) as FlowSuccess;
      child = (r.result as { child: number }).child;
      assert(child > 0 && running(child), "the orphan runs");
    } finally {
      await p.close();
    }
    // SIGKILL was sent before close() returned; give the kernel a moment to deliver it
    for (let i = 0; i < 20 && running(child); i++) await new Promise((r) => setTimeout(r, 50));
    assert(!running(child), `process ${child} is left behind`);
  },
});

Deno.test("stdio plugin: a flows/evaluate without observability while two runs have calls open is refused, naming what to send", async () => {
  const plugin = new FakeEngine();
  const e1 = new FakeEngine();
  const e2 = new FakeEngine();
  const p = await startStdio(["unattributed_worker.py"], { engine: plugin });
  try {
    const reply = (r: unknown) =>
      ((r as FlowSuccess).result as { reply: Record<string, unknown> }).reply;
    // one run open: its request is that run's
    const one = await p.execute("/evaluate", {}, { ...execCtx(e1, "a"), runId: "run-1" });
    assertEquals((reply(one).result as { result: { outcome: string } }).result.outcome, "success");
    // two runs open, no observability: before, the plugin's own services ran the nested flow, a
    // run of no run (not cancelled with the step, outside the nesting depth and run budget)
    const [a, b] = await Promise.all([
      p.execute("/evaluate", {}, { ...execCtx(e1, "a"), runId: "run-1" }),
      p.execute("/evaluate", {}, { ...execCtx(e2, "b"), runId: "run-2" }),
    ]);
    for (const r of [a, b]) {
      const error = reply(r).error as { code: number; message: string };
      assertEquals(error.code, -32602);
      assertStringIncludes(error.message, "flows/evaluate: cannot tell which run it belongs to");
      assertStringIncludes(error.message, "no params.observability.run_id, and 2 runs");
      assertStringIncludes(error.message, "Send the 'observability' params");
    }
    assertEquals(plugin.calls.filter((c) => c === "evaluateFlow"), []);
    // with observability each goes to its own run
    const [c, d] = await Promise.all([
      p.execute("/evaluate", { obs: true }, { ...execCtx(e1, "a"), runId: "run-1" }),
      p.execute("/evaluate", { obs: true }, { ...execCtx(e2, "b"), runId: "run-2" }),
    ]);
    assertEquals([reply(c).result !== undefined, reply(d).result !== undefined], [true, true]);
  } finally {
    await p.close();
  }
});

Deno.test("stdio plugin: closing with calls and worker requests in flight: no retry, one warning for the lost answers", async () => {
  const log = memLog();
  let release!: () => void;
  const released = new Promise<void>((r) => release = r);
  const engine = new FakeEngine();
  // the engine's answers come after the worker was stopped: every one of them is lost
  engine.getBlob = () => {
    engine.calls.push("getBlob");
    return released.then(() => ({ data: 1, blobType: "data" as const }));
  };
  const p = await startStdio(["unattributed_worker.py"], { engine, log });
  const call = p.execute("/ask_and_hang", { n: 20 }, execCtx(engine));
  const deadline = Date.now() + 30_000;
  while (engine.calls.length < 20 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  await p.close();
  const r = await call;
  assertEquals(r.outcome, "failed");
  release();
  await new Promise((r) => setTimeout(r, 200));
  // before: 'retrying step ... once' per call in flight, and a warning per lost answer
  assertEquals(log.lines.filter((l) => l.includes("retrying step")), []);
  const lost = log.lines.filter((l) => l.startsWith("[warn]") && l.includes("could not send"));
  assertEquals(lost.length, 1, log.lines.join("\n"));
  assertStringIncludes(lost[0], "logged at debug level");
  assertEquals(log.lines.filter((l) => l.includes("could not send")).length, 20);
});
