/**
 * A component's say in retries (issue 16): `data.retryAfterMs` (a server's Retry-After)
 * lengthens the backoff delay up to `maxDelay`; `data.retryable` overrides the code's category.
 */
import { assertEquals } from "../_assert.ts";
import { runWithPolicy } from "../../src/execution/step_policy.ts";
import { normalizeRetryPolicy, requestedRetryDelay } from "../../src/execution/retry_policy.ts";
import { categorize } from "../../src/execution/error_codes.ts";
import { failed, type FlowResult, success } from "../../src/flow/flow_result.ts";
import type { JsonValue } from "../../src/json/exact_json.ts";
import { FakeClock } from "./_fake_clock.ts";

function answers(results: FlowResult[]) {
  let i = 0;
  return () => Promise.resolve(results[Math.min(i++, results.length - 1)]);
}

const rateLimited = (retryAfterMs?: number) =>
  failed(429, "rate limited", {
    retryable: true,
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  });

Deno.test("runWithPolicy() waits the longer of the backoff and data.retryAfterMs, at most maxDelay", async () => {
  const clock = new FakeClock();
  const policy = normalizeRetryPolicy({
    action: "retry",
    maxRetries: 4,
    initialDelay: 100,
    backoffFactor: 2,
    maxDelay: 5000,
  });
  const out = await clock.run(runWithPolicy(
    answers([
      rateLimited(1500), // server asks for 1.5 s: longer than the 100 ms backoff
      rateLimited(50), // shorter than the 200 ms backoff: the backoff wins
      rateLimited(60_000), // more than maxDelay: capped at 5 s
      rateLimited(), // no header: plain backoff (800 ms)
      success("ok"),
    ]),
    { retry: policy },
    { stepId: "ask", clock },
  ));
  assertEquals(out.result, success("ok"));
  assertEquals(clock.requested, [1500, 200, 5000, 800]);
});

Deno.test("requestedRetryDelay() reads whole positive ms from data.retryAfterMs only", () => {
  const err = (data?: JsonValue) => failed(429, "x", data).error;
  assertEquals(requestedRetryDelay(err({ retryAfterMs: 1234.2 })), 1235);
  assertEquals(requestedRetryDelay(err({ retryAfterMs: -5 })), 0);
  assertEquals(requestedRetryDelay(err({ retryAfterMs: "10" })), 0);
  assertEquals(requestedRetryDelay(err()), 0);
});

Deno.test("categorize(): data.retryable decides for codes the engine does not own; data.kind still wins", () => {
  const cat = (code: number, data?: JsonValue) => categorize(failed(code, "x", data).error);
  assertEquals(cat(401, { retryable: false }), "invalid");
  assertEquals(cat(429), "component");
  // 524 is the engine's RUN_TIMEOUT code (fatal) unless the component says it is retryable
  assertEquals(cat(524), "fatal");
  assertEquals(cat(524, { retryable: true }), "component");
  assertEquals(cat(504, { kind: "TIMEOUT", retryable: false }), "timeout");
});
