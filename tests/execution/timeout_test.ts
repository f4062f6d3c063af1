import { assertEquals, assertRejects } from "../_assert.ts";
import { callWithTimeout, runTimeoutReason } from "../../src/execution/timeout.ts";
import { success } from "../../src/core/flow_result.ts";
import type { FlowResult } from "../../src/core/flow_result.ts";
import { FakeClock } from "./_fake_clock.ts";

/** A call that never answers until aborted, then rejects (like a cancelled MCP request). */
function hangingCall(seen: { signal?: AbortSignal }) {
  return (signal: AbortSignal) => {
    seen.signal = signal;
    return new Promise<FlowResult>((_, reject) => {
      signal.addEventListener("abort", () => reject(new Error("late rejection")));
    });
  };
}

Deno.test("callWithTimeout() returns the result when the call is in time", async () => {
  const clock = new FakeClock();
  const r = await clock.run(
    callWithTimeout(() => Promise.resolve(success(1)), { stepId: "s", timeoutMs: 100, clock }),
  );
  assertEquals(r, success(1));
  assertEquals(clock.pending, 0);
});

Deno.test("callWithTimeout() fails with a timeout naming the step and the limit, aborting the call", async () => {
  const clock = new FakeClock();
  const seen: { signal?: AbortSignal } = {};
  const r = await clock.run(
    callWithTimeout(hangingCall(seen), { stepId: "slow", timeoutMs: 1500, clock }),
  );
  assertEquals(r, {
    outcome: "failed",
    error: {
      code: 504,
      message: "Step 'slow' timed out after 1.5s (timeout: 1500 ms)",
      data: { kind: "TIMEOUT", step: "slow", timeoutMs: 1500 },
    },
  });
  assertEquals(clock.now(), 1500);
  assertEquals(seen.signal?.aborted, true);
  // The abandoned call's late rejection is handled (the test sanitizer would report it otherwise).
  await new Promise((r) => setTimeout(r, 0));
});

Deno.test("callWithTimeout() stops at the parent's abort: cancelled, or run timeout", async () => {
  const ctrl = new AbortController();
  const seen: { signal?: AbortSignal } = {};
  const p = callWithTimeout(hangingCall(seen), { stepId: "a", signal: ctrl.signal });
  ctrl.abort();
  const r = await p;
  assertEquals(r.outcome === "failed" && r.error.code, 410);
  assertEquals(
    r.outcome === "failed" && r.error.message.startsWith("Step 'a' was cancelled"),
    true,
  );
  assertEquals(seen.signal?.aborted, true);

  const ctrl2 = new AbortController();
  const p2 = callWithTimeout(hangingCall({}), { stepId: "b", signal: ctrl2.signal });
  ctrl2.abort(runTimeoutReason(2000));
  assertEquals(await p2, {
    outcome: "failed",
    error: {
      code: 524,
      message: "Step 'b' was cancelled: The run timed out after 2s (timeout: 2000 ms)",
      data: { kind: "RUN_TIMEOUT", step: "b" },
    },
  });
  // Already aborted: the call is not even made.
  let called = false;
  await callWithTimeout(() => {
    called = true;
    return Promise.resolve(success(1));
  }, { stepId: "c", signal: ctrl2.signal });
  assertEquals(called, false);
  await new Promise((r) => setTimeout(r, 0));
});

Deno.test("callWithTimeout() passes on what the call throws", async () => {
  await assertRejects(
    () =>
      callWithTimeout(() => {
        throw new Error("sync throw");
      }, { stepId: "s", timeoutMs: 1000 }),
    Error,
    "sync throw",
  );
  await assertRejects(
    () => callWithTimeout(() => Promise.reject(new Error("async")), { stepId: "s" }),
    Error,
    "async",
  );
});
