import { assert, assertEquals, assertRejects } from "../_assert.ts";
import { checkOutputSize, runWithPolicy } from "../../src/execution/step_policy.ts";
import type { RetryEvent } from "../../src/execution/step_policy.ts";
import { normalizeRetryPolicy } from "../../src/execution/retry_policy.ts";
import { TRANSPORT_FAILED } from "../../src/execution/error_codes.ts";
import { Limiter } from "../../src/execution/limiter.ts";
import { failed, success } from "../../src/flow/flow_result.ts";
import type { FlowResult } from "../../src/flow/flow_result.ts";
import { FakeClock, sequenceRandom } from "./_fake_clock.ts";
import { parseJson } from "../../src/json/exact_json.ts";

/** A component failing with `failures[i]` on attempt i+1 (a code or "ok"), recording attempts. */
function scripted(script: (number | "ok" | "hang")[]) {
  const attempts: number[] = [];
  const fn = (attempt: number, signal: AbortSignal): Promise<FlowResult> => {
    attempts.push(attempt);
    const step = script[Math.min(attempts.length - 1, script.length - 1)];
    if (step === "ok") return Promise.resolve(success({ attempt }));
    if (step === "hang") {
      return new Promise((_, reject) =>
        signal.addEventListener("abort", () => reject(signal.reason))
      );
    }
    return Promise.resolve(failed(step, `failure ${attempts.length}`));
  };
  return { fn, attempts };
}

const policy = (extra: Record<string, unknown> = {}) =>
  normalizeRetryPolicy({ action: "retry", initialDelay: 100, backoffFactor: 2, ...extra });

Deno.test("runWithPolicy() with 2 retries waits the two delays, not three", async () => {
  const clock = new FakeClock();
  const c = scripted([42]);
  const out = await clock.run(runWithPolicy(c.fn, { retry: policy({ maxRetries: 2 }) }, {
    stepId: "s",
    clock,
  }));
  assertEquals(c.attempts, [1, 2, 3]);
  assertEquals(clock.requested, [100, 200]);
  assertEquals(clock.now(), 300);
  assertEquals(out.attempts, 3);
  assertEquals(out.result, {
    outcome: "failed",
    error: {
      code: 42,
      message: "Step 's' failed after 3 attempts: failure 3",
      data: { attempts: 3, error: { code: 42, message: "failure 3" } },
    },
  });
});

Deno.test("runWithPolicy() passes with 2 retries and fails with 1 'after 2 attempts'", async () => {
  const clock = new FakeClock();
  const ok = scripted([7, 7, "ok"]);
  const passed = await clock.run(runWithPolicy(ok.fn, { retry: policy({ maxRetries: 2 }) }, {
    stepId: "flaky",
    clock,
  }));
  assertEquals(passed, { result: success({ attempt: 3 }), attempts: 3 });

  const clock2 = new FakeClock();
  const ko = scripted([7, 7, "ok"]);
  const out = await clock2.run(runWithPolicy(ko.fn, { retry: policy({ maxRetries: 1 }) }, {
    stepId: "flaky",
    clock: clock2,
  }));
  assertEquals(ko.attempts, [1, 2]);
  assert(out.result.outcome === "failed");
  assertEquals(out.result.error.message, "Step 'flaky' failed after 2 attempts: failure 2");
  assertEquals(clock2.requested, [100]);
});

Deno.test("runWithPolicy() without retry runs once and keeps the failure unchanged (stepflow 0.8)", async () => {
  const c = scripted([42]);
  const out = await runWithPolicy(c.fn, {}, { stepId: "s" });
  assertEquals(out, { result: failed(42, "failure 1"), attempts: 1 });
});

Deno.test("runWithPolicy() charges worker crashes to the transport budget", async () => {
  const clock = new FakeClock();
  // Two crashes, then a component failure, then success: maxRetries 1 is enough for the component.
  const c = scripted([TRANSPORT_FAILED, TRANSPORT_FAILED, 9, "ok"]);
  const events: RetryEvent[] = [];
  const out = await clock.run(runWithPolicy(
    c.fn,
    { retry: policy({ maxRetries: 1, maxTransportRetries: 2 }) },
    { stepId: "w", clock, onRetry: (e) => events.push(e) },
  ));
  assertEquals(out.result, success({ attempt: 4 }));
  assertEquals(events.map((e) => [e.attempt, e.category, e.delayMs]), [
    [1, "transport", 100],
    [2, "transport", 200],
    [3, "component", 400],
  ]);
});

Deno.test("runWithPolicy() with full jitter waits random delays within bounds", async () => {
  const clock = new FakeClock();
  const c = scripted([1]);
  const delays: number[] = [];
  await clock.run(runWithPolicy(c.fn, { retry: policy({ maxRetries: 3, jitter: "full" }) }, {
    stepId: "j",
    clock,
    random: sequenceRandom([0.5, 0, 0.999]),
    onRetry: (e) => delays.push(e.delayMs),
  }));
  assertEquals(delays, [50, 0, 400]);
  assertEquals(clock.now(), 450);
});

Deno.test("runWithPolicy() times out an attempt and retries it with the next attempt number", async () => {
  const clock = new FakeClock();
  const c = scripted(["hang", "ok"]);
  const out = await clock.run(runWithPolicy(c.fn, {
    retry: policy({ maxRetries: 1 }),
    timeoutMs: 1000,
  }, { stepId: "slow", clock }));
  assertEquals(c.attempts, [1, 2]);
  assertEquals(out, { result: success({ attempt: 2 }), attempts: 2 });
  assertEquals(clock.now(), 1100);
  await new Promise((r) => setTimeout(r, 0));
});

Deno.test("runWithPolicy() reports a timeout without retry as the step's failure", async () => {
  const clock = new FakeClock();
  const c = scripted(["hang"]);
  const out = await clock.run(runWithPolicy(c.fn, { timeoutMs: 250 }, { stepId: "slow", clock }));
  assert(out.result.outcome === "failed");
  assertEquals(out.result.error.code, 504);
  assertEquals(out.result.error.message, "Step 'slow' timed out after 250ms (timeout: 250 ms)");
  await new Promise((r) => setTimeout(r, 0));
});

Deno.test("runWithPolicy() applies the fallback after the last attempt", async () => {
  const clock = new FakeClock();
  const skip = await clock.run(runWithPolicy(scripted([5]).fn, {
    retry: policy({ maxRetries: 1, fallback: { action: "skip" } }),
  }, { stepId: "s", clock }));
  assertEquals(skip, { result: { outcome: "skipped" }, attempts: 2, fallback: "skip" });
  const dflt = await clock.run(runWithPolicy(scripted([5]).fn, {
    retry: policy({ maxRetries: 0, fallback: { action: "useDefault", defaultValue: { v: 1 } } }),
  }, { stepId: "s", clock, resolveDefault: (t) => success({ resolved: t ?? null }) }));
  assertEquals(dflt, {
    result: success({ resolved: { v: 1 } }),
    attempts: 1,
    fallback: "useDefault",
  });
  const noValue = await clock.run(runWithPolicy(scripted([5]).fn, {
    retry: policy({ maxRetries: 0, fallback: { action: "useDefault" } }),
  }, { stepId: "s", clock }));
  assertEquals(noValue.result, success(null));
});

Deno.test("runWithPolicy() does not retry non-retryable failures and keeps them unchanged", async () => {
  const c = scripted([-32001]);
  const out = await runWithPolicy(c.fn, { retry: policy() }, { stepId: "s" });
  assertEquals(out, { result: failed(-32001, "failure 1"), attempts: 1 });
});

Deno.test("runWithPolicy() stops waiting when the run is cancelled during a backoff", async () => {
  const clock = new FakeClock();
  const ctrl = new AbortController();
  const c = scripted([1]);
  const p = runWithPolicy(c.fn, { retry: policy({ maxRetries: 5, initialDelay: "1h" }) }, {
    stepId: "s",
    clock,
    signal: ctrl.signal,
    onRetry: () => queueMicrotask(() => ctrl.abort()),
  });
  const out = await p;
  assertEquals(c.attempts, [1]);
  assert(out.result.outcome === "failed");
  assertEquals(out.result.error.code, 410);
  assertEquals(clock.pending, 0);
});

Deno.test("runWithPolicy() fails an oversized output without retrying it", async () => {
  let calls = 0;
  const out = await runWithPolicy(
    () => {
      calls++;
      return Promise.resolve(success("x".repeat(100)));
    },
    { retry: policy(), maxOutputBytes: 50 },
    { stepId: "big" },
  );
  assertEquals(calls, 1);
  assertEquals(out.result, {
    outcome: "failed",
    error: {
      code: 413,
      message:
        "Step 'big' output is 102 bytes, over the limit of 50 bytes (raise maxOutputSize or make the component return less, e.g. a blob id)",
      data: { kind: "OUTPUT_TOO_LARGE", step: "big", sizeBytes: 102, limitBytes: 50 },
    },
  });
  assertEquals(checkOutputSize("s", "é".repeat(10), 22), undefined);
  assertEquals(checkOutputSize("s", "é".repeat(10), 21)?.error.code, 413);
});

Deno.test("runWithPolicy() holds a limiter permit per attempt, released on timeout", async () => {
  const clock = new FakeClock();
  const limiter = new Limiter(1);
  const c = scripted(["hang", "ok"]);
  const out = await clock.run(runWithPolicy(c.fn, {
    retry: policy({ maxRetries: 1 }),
    timeoutMs: 10,
  }, { stepId: "s", clock, acquire: (s) => limiter.acquire(s) }));
  assertEquals(out.result, success({ attempt: 2 }));
  assertEquals([limiter.active, limiter.peak], [0, 1]);
  await new Promise((r) => setTimeout(r, 0));
});

Deno.test("runWithPolicy() passes on a thrown plugin error (the run aborts, stepflow 0.8)", async () => {
  await assertRejects(
    () =>
      runWithPolicy(() => Promise.reject(new Error("plugin broke")), { retry: policy() }, {
        stepId: "s",
      }),
    Error,
    "plugin broke",
  );
});

Deno.test("checkOutputSize() is exact at the limit for nested values, keys and raw numbers", () => {
  const value = parseJson('{"a":[1,2.50,{"b":"x"}],"é":null}');
  const size = new TextEncoder().encode(JSON.stringify(value)).length;
  assertEquals(checkOutputSize("s", value, size), undefined);
  const r = checkOutputSize("s", value, size - 1);
  assertEquals(r?.error.code, 413);
});

Deno.test("checkOutputSize() refuses an output nested more than 512 levels; boundFailure() drops deep error data", async () => {
  const { checkOutputSize, boundFailure } = await import("../../src/execution/step_policy.ts");
  const { failed } = await import("../../src/flow/flow_result.ts");
  let deep: unknown = [];
  for (let i = 0; i < 600; i++) deep = [deep];
  const r = checkOutputSize("s", deep as never, 1 << 30);
  assertEquals(r?.error.code, 413);
  assertEquals((r?.error.data as { limitDepth: number }).limitDepth, 512);
  // also when the output is over the size limit too (no JSON.stringify of a deep value)
  assertEquals(checkOutputSize("s", deep as never, 10)?.error.data, {
    kind: "OUTPUT_TOO_LARGE",
    step: "s",
    limitDepth: 512,
  });
  const f = boundFailure(failed(7, "boom", deep as never));
  assertEquals(f.error, {
    code: 7,
    message: "boom (error data left out: nested more than 512 levels deep)",
  });
  const shallow = failed(7, "boom", { a: 1 });
  assertEquals(boundFailure(shallow), shallow);
});
