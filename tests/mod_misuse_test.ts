/**
 * The library (`mod.ts`) used wrongly from JavaScript, where nothing checks types: each mistake
 * gets an error that says what was expected. Before: `runFlow(null, ...)` threw `TypeError:
 * Cannot use 'in' operator to search for 'file' in null`, a flow object with `steps: 5` threw
 * `TypeError: flow.steps.map is not a function`, a config object (not a LoadedConfig) threw
 * `Cannot read properties of undefined (reading 'plugins')`, and `validateFlow(flowObject)` threw
 * `Cannot read properties of undefined (reading 'name')`; `engine.run(..., {timeoutMs: NaN})` ran
 * without a limit, `timeoutMs: -1` "timed out after -1ms", and `maxConcurrency: 0` threw
 * `Limiter: limit must be a positive integer` (no option named).
 * @module
 */
import { assertEquals, assertRejects, assertStringIncludes, assertThrows } from "./_assert.ts";
import {
  configFromValue,
  Engine,
  FlowLoadError,
  loadFlow,
  parseFlowValue,
  renderFlow,
  runFlow,
  validateFlow,
} from "../mod.ts";

const CONFIG = {
  plugins: { builtin: { type: "builtin" } },
  routes: { "/builtin/{*component}": [{ plugin: "builtin" }] },
};
const FLOW = {
  schema: "https://stepflow.org/schemas/v1/flow.json",
  name: "misuse",
  description: "d",
  steps: [{
    id: "a",
    component: "/builtin/create_messages",
    input: { user_prompt: { $from: { workflow: "input" }, path: "x" } },
  }],
  output: { $from: { step: "a" }, path: "$.messages[0].content" },
};

Deno.test("runFlow: a flow that is neither a path nor an object is a TypeError saying what is expected", async () => {
  for (const bad of [null, 42, [FLOW]]) {
    // deno-lint-ignore no-explicit-any
    const e = await assertRejects(() => runFlow(bad as any, {}), TypeError);
    assertStringIncludes(e.message, "runFlow: flow must be a flow file path");
  }
});

Deno.test("runFlow: a flow object is checked against the flow model (JSON path in the error)", async () => {
  // deno-lint-ignore no-explicit-any
  const bad = { ...FLOW, steps: 5 } as any;
  const e = await assertRejects(() => runFlow(bad, {}, { config: CONFIG }), FlowLoadError);
  assertStringIncludes(e.message, "$.steps");
  // a valid one runs
  // deno-lint-ignore no-explicit-any
  const ok = await runFlow(FLOW as any, { x: "hi" }, { config: CONFIG });
  assertEquals(ok, { outcome: "success", result: "hi" });
});

Deno.test("runFlow: options.config may be a config object as in stepflow-config.yml (validated)", async () => {
  // deno-lint-ignore no-explicit-any
  const r = await runFlow(FLOW as any, { x: "yo" }, { config: CONFIG as any });
  assertEquals(r, { outcome: "success", result: "yo" });
  await assertRejects(
    // deno-lint-ignore no-explicit-any
    () => runFlow(FLOW as any, {}, { config: { plugins: 5 } as any }),
    FlowLoadError,
    "plugins",
  );
});

Deno.test("validateFlow: a flow object gives its diagnostics; one that does not fit the model is a FlowLoadError", () => {
  // deno-lint-ignore no-explicit-any
  const diagnostics = validateFlow(FLOW as any);
  assertEquals(diagnostics.filter((d) => d.level !== "warning"), []);
  // deno-lint-ignore no-explicit-any
  const noRoute = validateFlow({ ...FLOW, steps: [{ ...FLOW.steps[0], component: "x" }] } as any);
  assertEquals(noRoute.some((d) => d.message.includes("must start with '/'")), true);
  assertThrows(
    // deno-lint-ignore no-explicit-any
    () => validateFlow({ ...FLOW, steps: [{ id: 3 }] } as any),
    FlowLoadError,
    "$.steps[0]",
  );
});

Deno.test("engine.run: timeoutMs and maxConcurrency that cannot be used are RangeErrors naming the option", async () => {
  const engine = await Engine.create(configFromValue(CONFIG));
  try {
    for (const timeoutMs of [NaN, -1, 0, Infinity, 3e9]) {
      await assertRejects(
        // deno-lint-ignore no-explicit-any
        async () => await engine.run(FLOW as any, { x: "a" }, { timeoutMs }),
        RangeError,
        "RunOptions.timeoutMs must be a number of ms greater than 0",
      );
    }
    for (const maxConcurrency of [0, 1.5, -2]) {
      await assertRejects(
        // deno-lint-ignore no-explicit-any
        async () => await engine.run(FLOW as any, { x: "a" }, { maxConcurrency }),
        RangeError,
        "RunOptions.maxConcurrency must be a positive integer",
      );
    }
    await assertRejects(
      // deno-lint-ignore no-explicit-any
      async () => await engine.run(FLOW as any, { x: "a" }, { signal: 5 as any }),
      TypeError,
      "RunOptions.signal must be an AbortSignal",
    );
    // deno-lint-ignore no-explicit-any
    const ok = await engine.run(FLOW as any, { x: "a" }, { timeoutMs: 60_000, maxConcurrency: 2 });
    assertEquals(ok, { outcome: "success", result: "a" });
  } finally {
    await engine.close();
  }
});

Deno.test("engine.run: a flow that is not a flow, maxNestedRuns/maxRunSteps that are not positive integers and variables that are not an object are errors naming them", async () => {
  // Before: `engine.run(null)` threw "Cannot use 'in' operator to search for 'schema' in null",
  // `{steps: 5}` "flow.steps.map is not a function", `maxRunSteps: NaN` stopped the run with
  // "started more than NaN steps", `maxNestedRuns: -1` was no limit, `variables: 5` was ignored.
  const engine = await Engine.create(configFromValue(CONFIG));
  try {
    const bad: [unknown, string][] = [
      [null, "got null"],
      [{ schema: FLOW.schema }, "$.steps is missing"],
      [{ ...FLOW, steps: 5 }, "$.steps is a number"],
      [{ ...FLOW, steps: [FLOW.steps[0], "b"] }, "$.steps[1] is a string"],
      [{ flow: 7 }, "its .flow is a number"],
    ];
    for (const [flow, says] of bad) {
      // deno-lint-ignore no-explicit-any
      const e = await assertRejects(() => engine.run(flow as any, {}), TypeError);
      assertStringIncludes(e.message, "flow must be a Flow");
      assertStringIncludes(e.message, says);
    }
    for (const key of ["maxNestedRuns", "maxRunSteps"]) {
      for (const v of [NaN, -1, 0, 2.5]) {
        await assertRejects(
          // deno-lint-ignore no-explicit-any
          () => engine.run(FLOW as any, { x: "a" }, { [key]: v }),
          RangeError,
          `RunOptions.${key} must be a positive integer`,
        );
      }
    }
    for (const variables of [5, "x", [1]]) {
      await assertRejects(
        // deno-lint-ignore no-explicit-any
        () => engine.run(FLOW as any, { x: "a" }, { variables: variables as any }),
        TypeError,
        "RunOptions.variables must be an object",
      );
    }
    // deno-lint-ignore no-explicit-any
    const ok = await engine.run(FLOW as any, { x: "b" }, { variables: new Map(), maxRunSteps: 5 });
    assertEquals(ok, { outcome: "success", result: "b" });
  } finally {
    await engine.close();
  }
});

Deno.test("the library's entry points given the wrong kind of argument say what they take", async () => {
  // Before: Engine.create(config object) threw "Cannot read properties of undefined (reading
  // 'plugins')", validateFlow(null) and renderFlow(null) "Cannot use 'in' operator to search for
  // 'flow' in null", loadFlow(undefined, {text: true}) "... (reading 'charCodeAt')", and
  // engine.observe(null) was accepted, then warned on every event of every run.
  await assertRejects(
    // deno-lint-ignore no-explicit-any
    () => Engine.create(CONFIG as any),
    TypeError,
    "got a config object as in stepflow-config.yml: pass configFromValue(it)",
  );
  // deno-lint-ignore no-explicit-any
  await assertRejects(() => Engine.create(null as any), TypeError, "takes a loaded config");
  // deno-lint-ignore no-explicit-any
  assertThrows(() => validateFlow(null as any), FlowLoadError, "A flow must be a mapping");
  // deno-lint-ignore no-explicit-any
  assertThrows(() => renderFlow(null as any), TypeError, "a flow to draw must be a Flow");
  await assertRejects(
    // deno-lint-ignore no-explicit-any
    () => loadFlow(undefined as any, { text: true }),
    TypeError,
    "loadFlow: source must be a file path",
  );
  const engine = await Engine.create(configFromValue(CONFIG));
  try {
    // deno-lint-ignore no-explicit-any
    assertThrows(() => engine.observe(null as any), TypeError, "an observer must be an object");
  } finally {
    await engine.close();
  }
});

Deno.test("engine.run: an input or variable that is not JSON is a TypeError naming its path, and other runs are not hurt", async () => {
  // Before (SQLite store): `undefined`, a function or a Symbol failed the store's group commit
  // ("Provided value cannot be bound to SQLite parameter 5"): 507 for every run of the engine in
  // that commit; a cycle threw "Converting circular structure to JSON"; NaN was stored as null.
  const dir = await Deno.makeTempDir();
  const engine = await Engine.create(configFromValue({
    ...CONFIG,
    stateStore: { type: "sqlite", databaseUrl: `sqlite:${dir}/runs.db` },
  }));
  try {
    const cyc: Record<string, unknown> = { x: "a" };
    cyc.self = cyc;
    const bad: [unknown, string][] = [
      [undefined, "input: undefined (use null)"],
      [{ x: [1, 5n] }, "input.x[1]: a bigint"],
      [{ "a b": () => 1 }, 'input["a b"]: a function'],
      [{ x: NaN }, "input.x: the number NaN"],
      [{ x: new Map() }, "input.x: a Map (not a plain object)"],
      [cyc, "nested too deep"],
    ];
    for (const [input, says] of bad) {
      const e = await assertRejects(
        // deno-lint-ignore no-explicit-any
        () => engine.run(FLOW as any, input as any),
        TypeError,
        "the input must be a JSON value",
      );
      assertStringIncludes(e.message, says);
      assertEquals(e.message.length < 400, true, e.message);
    }
    await assertRejects(
      // deno-lint-ignore no-explicit-any
      () => engine.run(FLOW as any, { x: "a" }, { variables: { k: Symbol("s") as any } }),
      TypeError,
      "variable 'k': a symbol",
    );
    // deno-lint-ignore no-explicit-any
    const ok = await engine.run(FLOW as any, { x: "fine", skipped: undefined } as any);
    assertEquals(ok, { outcome: "success", result: "fine" });
  } finally {
    await engine.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a flow built as an object and a run's input are refused lone UTF-16 surrogates, naming the JSON path", async () => {
  // Before: accepted; a SQLite store kept the flow name and step id as U+FFFD ("bad\ufffdname",
  // "a\ufffd"), so what was read back differed from the flow that ran (parsed flows, inputs
  // and REST bodies were refused them already).
  const dir = await Deno.makeTempDir();
  const engine = await Engine.create(configFromValue({
    ...CONFIG,
    stateStore: { type: "sqlite", databaseUrl: `sqlite:${dir}/runs.db` },
  }));
  try {
    const cases: [unknown, string][] = [
      [{ ...FLOW, name: "bad\ud800name" }, "$.name holds a lone UTF-16 surrogate"],
      [
        { ...FLOW, steps: [{ ...FLOW.steps[0], id: "a\udc00" }] },
        "$.steps[0].id holds a lone UTF-16 surrogate",
      ],
      [
        { ...FLOW, steps: [{ ...FLOW.steps[0], input: { ["k\ud83d"]: "v" } }] },
        "key in $.steps[0].input holds",
      ],
    ];
    for (const [flow, says] of cases) {
      // deno-lint-ignore no-explicit-any
      const e = await assertRejects(() => engine.run(flow as any, { x: "a" }), TypeError);
      assertStringIncludes(e.message, "engine.run/start: the flow's ");
      assertStringIncludes(e.message, says);
      assertStringIncludes(e.message, "both halves of its surrogate pair");
      // parseFlowValue (the library's check of a flow object) says the same
      assertThrows(
        // deno-lint-ignore no-explicit-any
        () => parseFlowValue(flow as any),
        FlowLoadError,
        says.replace("key in ", "a key of "),
      );
    }
    // the input and variables: the path of the string, or of the key
    for (
      const [input, says] of [
        [{ x: "x\ud800y" }, "input.x: a string holding a lone UTF-16 surrogate"],
        [{ x: ["ok", { ["\udfff"]: 1 }] }, "input.x[1]"],
      ] as [unknown, string][]
    ) {
      const e = await assertRejects(
        // deno-lint-ignore no-explicit-any
        () => engine.run(FLOW as any, input as any),
        TypeError,
        "the input must be a JSON value",
      );
      assertStringIncludes(e.message, says);
    }
    await assertRejects(
      // deno-lint-ignore no-explicit-any
      () => engine.run(FLOW as any, { x: "a" }, { variables: { v: "\ud800" } }),
      TypeError,
      "variable 'v': a string holding a lone UTF-16 surrogate",
    );
    // a pair is text: it runs, and reads back the same
    // deno-lint-ignore no-explicit-any
    const ok = await engine.run({ ...FLOW, name: "ok \ud83d\ude00" } as any, { x: "\ud83d\ude00" });
    assertEquals(ok, { outcome: "success", result: "\u{1F600}" });
  } finally {
    await engine.close();
    await Deno.remove(dir, { recursive: true });
  }
});
