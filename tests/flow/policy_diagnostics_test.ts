import { assertEquals } from "../_assert.ts";
import { policyDiagnostics } from "../../src/flow/policy_diagnostics.ts";
import { configPolicyDiagnostics } from "../../src/config/validate.ts";
import type { Config } from "../../src/config/model.ts";
import type { Flow } from "../../src/flow/model.ts";
import { FlowSchema } from "../../src/flow/model.ts";

const flow = (steps: unknown[]): Flow =>
  ({ schema: "https://stepflow.org/schemas/v1/flow.json", steps }) as unknown as Flow;

Deno.test("policyDiagnostics() accepts valid settings and 0.8 flows", () => {
  assertEquals(
    policyDiagnostics(flow([
      { id: "a", component: "/x", onError: { action: "retry" } },
      {
        id: "b",
        component: "/x",
        timeout: "30s",
        onError: { action: "retry", maxRetries: 2, initialDelay: 0, retryOn: ["transport", 429] },
      },
      { id: "c", component: "/builtin/map", input: { items: [], max_concurrency: 2 } },
      { id: "d", component: "/x", onError: { action: "skip" } },
    ])),
    [],
  );
});

Deno.test("policyDiagnostics() reports invalid limits with paths", () => {
  const ds = policyDiagnostics(flow([
    { id: "a", component: "/x", timeout: "0s" },
    { id: "b", component: "/x", onError: { action: "retry", initialDelay: "9s", maxDelay: "1s" } },
    { id: "c", component: "/builtin/map", input: { items: [], max_concurrency: 0 } },
    { id: "d", component: "/x", onError: { action: "retry", retryOn: ["component", "bogus"] } },
    // found by a fresh user: a string passed validation, then failed at run time
    { id: "e", component: "/builtin/map", input: { items: [], max_concurrency: "4" } },
    { id: "f", component: "/builtin/map", input: { items: [], max_concurrency: null } },
    { id: "g", component: "/builtin/map", input: { items: [], max_concurrency: { $from: {} } } },
  ]));
  assertEquals(ds.map((d) => [d.path, d.code, d.message]), [
    [
      "$.steps[0].timeout",
      "invalid_timeout",
      "Step 'a': timeout must be greater than zero, got \"0s\"",
    ],
    [
      "$.steps[1].onError.maxDelay",
      "invalid_retry",
      "Step 'b': maxDelay (1000 ms) must not be less than initialDelay (9000 ms)",
    ],
    [
      "$.steps[2].input.max_concurrency",
      "invalid_limit",
      "Step 'c': max_concurrency must be a positive integer, got 0",
    ],
    [
      "$.steps[3].onError.retryOn[1]",
      "invalid_retry",
      "Step 'd': retryOn entries must be one of component, transport, timeout, invalid or an integer error code, got \"bogus\"",
    ],
    [
      "$.steps[4].input.max_concurrency",
      "invalid_limit",
      "Step 'e': max_concurrency must be a positive integer, got \"4\"",
    ],
  ]);
});

Deno.test("FlowSchema accepts every retry setting and rejects a zero timeout number", () => {
  const ok = FlowSchema.safeParse({
    schema: "https://stepflow.org/schemas/v1/flow.json",
    steps: [{
      id: "a",
      component: "/x",
      timeout: 5000,
      onError: {
        action: "retry",
        maxRetries: 2,
        maxTransportRetries: 1,
        initialDelay: "100ms",
        backoffFactor: 1.5,
        maxDelay: "10s",
        jitter: "full",
        retryOn: ["component", 503],
        fallback: { action: "useDefault", defaultValue: null },
      },
    }],
  });
  assertEquals(ok.success, true);
  const bad = FlowSchema.safeParse({
    schema: "https://stepflow.org/schemas/v1/flow.json",
    steps: [{ id: "a", component: "/x", timeout: 0 }],
  });
  assertEquals(bad.success, false);
});

Deno.test("configPolicyDiagnostics() reports zero or invalid plugin timeouts and runTimeout", () => {
  const ds = configPolicyDiagnostics({
    plugins: {
      a: { type: "stepflow", timeout: "0s" },
      b: { type: "stepflow", timeout: "30s" },
    },
    routes: {},
    runTimeout: "0ms",
  } as unknown as Config);
  assertEquals(ds.map((d) => [d.path, d.message]), [
    ["$.runTimeout", 'runTimeout must be greater than zero, got "0ms"'],
    ["$.plugins.a.timeout", 'plugins.a.timeout must be greater than zero, got "0s"'],
  ]);
});
