import { assert, assertEquals, assertThrows } from "../_assert.ts";
import {
  backoffDelay,
  checkRetrySettings,
  normalizeRetryPolicy,
  retryDecision,
} from "../../src/flow/retry_policy.ts";
import {
  CANCELLED,
  categorize,
  OUTPUT_TOO_LARGE,
  TIMEOUT,
  TRANSPORT_FAILED,
} from "../../src/core/error_codes.ts";

Deno.test("normalizeRetryPolicy() applies documented defaults", () => {
  const p = normalizeRetryPolicy({ action: "retry" });
  assertEquals(p.maxRetries, 3);
  assertEquals(p.maxTransportRetries, 3);
  assertEquals(p.initialDelayMs, 1000);
  assertEquals(p.backoffFactor, 2);
  assertEquals(p.maxDelayMs, 30000);
  assertEquals(p.jitter, "none");
  assertEquals([...p.retryOnCategories], ["component", "transport", "timeout"]);
  assertEquals(p.fallback, { action: "fail" });
});

Deno.test("normalizeRetryPolicy() reads every setting", () => {
  const p = normalizeRetryPolicy({
    action: "retry",
    maxRetries: 5,
    maxTransportRetries: 1,
    initialDelay: "200ms",
    backoffFactor: 3,
    maxDelay: "2s",
    jitter: "full",
    retryOn: ["transport", 429],
    fallback: { action: "useDefault", defaultValue: { x: 1 } },
  });
  assertEquals(p.maxRetries, 5);
  assertEquals(p.maxTransportRetries, 1);
  assertEquals(p.initialDelayMs, 200);
  assertEquals(p.backoffFactor, 3);
  assertEquals(p.maxDelayMs, 2000);
  assertEquals(p.jitter, "full");
  assertEquals([...p.retryOnCategories], ["transport"]);
  assertEquals([...p.retryOnCodes], [429]);
  assertEquals(p.fallback, { action: "useDefault", defaultValue: { x: 1 } });
});

Deno.test("checkRetrySettings() reports every invalid setting by key", () => {
  const problems = checkRetrySettings({
    action: "retry",
    maxRetries: -1,
    initialDelay: "soon",
    backoffFactor: 0.5,
    jitter: "half",
    retryOn: ["component", "fatal", "nope"],
    fallback: { action: "explode" },
  });
  assertEquals(problems.map((p) => p.key), [
    "maxRetries",
    "initialDelay",
    "backoffFactor",
    "jitter",
    "retryOn[1]",
    "retryOn[2]",
    "fallback",
  ]);
  assertEquals(
    checkRetrySettings({ action: "retry", initialDelay: "5s", maxDelay: "1s" })[0].message,
    "maxDelay (1000 ms) must not be less than initialDelay (5000 ms)",
  );
  assertThrows(
    () => normalizeRetryPolicy({ action: "retry", maxRetries: 2.5 }),
    RangeError,
    "Invalid onError.maxRetries: maxRetries must be an integer from 0 to 1000, got 2.5",
  );
});

Deno.test("backoffDelay() grows exponentially and is capped", () => {
  const p = normalizeRetryPolicy({
    action: "retry",
    initialDelay: 100,
    backoffFactor: 2,
    maxDelay: 500,
  });
  assertEquals([1, 2, 3, 4, 5, 60].map((r) => backoffDelay(p, r)), [100, 200, 400, 500, 500, 500]);
  const zero = normalizeRetryPolicy({ action: "retry", initialDelay: 0 });
  assertEquals(backoffDelay(zero, 3), 0);
  assertThrows(() => backoffDelay(p, 0), RangeError, "retry must be a positive integer");
});

Deno.test("backoffDelay() with full jitter stays within [0, delay]", () => {
  const p = normalizeRetryPolicy({
    action: "retry",
    initialDelay: 100,
    backoffFactor: 2,
    maxDelay: 1000,
    jitter: "full",
  });
  assertEquals(backoffDelay(p, 1, () => 0), 0);
  assertEquals(backoffDelay(p, 1, () => 0.999999), 100);
  assertEquals(backoffDelay(p, 2, () => 0.5), 100);
  // A broken random source cannot push the delay out of bounds.
  assertEquals(backoffDelay(p, 3, () => 7), 400);
  assertEquals(backoffDelay(p, 3, () => -1), 0);
  for (let retry = 1; retry <= 8; retry++) {
    const cap = Math.min(1000, 100 * 2 ** (retry - 1));
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(p, retry);
      assert(d >= 0 && d <= cap && Number.isInteger(d), `retry ${retry}: ${d} not in [0, ${cap}]`);
    }
  }
});

Deno.test("categorize() classifies by data.kind, then code; unknown codes are component", () => {
  assertEquals(categorize({ code: TRANSPORT_FAILED, message: "crash" }), "transport");
  assertEquals(categorize({ code: TIMEOUT, message: "t", data: { kind: "TIMEOUT" } }), "timeout");
  assertEquals(categorize({ code: CANCELLED, message: "c" }), "fatal");
  assertEquals(categorize({ code: OUTPUT_TOO_LARGE, message: "big" }), "fatal");
  assertEquals(categorize({ code: -32002, message: "bad input" }), "invalid");
  assertEquals(categorize({ code: 42, message: "business" }), "component");
  assertEquals(categorize({ code: 500, message: "x", data: { kind: "CANCELLED" } }), "fatal");
});

Deno.test("retryDecision() charges transport failures to their own budget", () => {
  const p = normalizeRetryPolicy({ action: "retry", maxRetries: 1, maxTransportRetries: 2 });
  const component = { code: 42, message: "boom" };
  const crash = { code: TRANSPORT_FAILED, message: "Process crashed" };
  assertEquals(retryDecision(p, crash, { component: 0, transport: 0 }), {
    retry: true,
    budget: "transport",
    category: "transport",
  });
  // Two crashes used: the component budget is untouched.
  assertEquals(retryDecision(p, component, { component: 0, transport: 2 }).retry, true);
  assertEquals(retryDecision(p, crash, { component: 0, transport: 2 }), {
    retry: false,
    reason: "budget_exhausted",
    category: "transport",
  });
  assertEquals(retryDecision(p, component, { component: 1, transport: 0 }).retry, false);
});

Deno.test("retryDecision() follows retryOn and never retries fatal failures", () => {
  const p = normalizeRetryPolicy({ action: "retry", retryOn: ["transport", 429, CANCELLED] });
  const used = { component: 0, transport: 0 };
  assertEquals(retryDecision(p, { code: 42, message: "x" }, used).retry, false);
  assertEquals(retryDecision(p, { code: 429, message: "slow down" }, used).retry, true);
  assertEquals(retryDecision(p, { code: CANCELLED, message: "c" }, used).retry, false);
  const dflt = normalizeRetryPolicy({ action: "retry" });
  assertEquals(retryDecision(dflt, { code: -32001, message: "no such component" }, used), {
    retry: false,
    reason: "not_retryable",
    category: "invalid",
  });
  assertEquals(retryDecision(dflt, { code: OUTPUT_TOO_LARGE, message: "big" }, used).retry, false);
});
