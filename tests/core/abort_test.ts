import { assert, assertStrictEquals } from "../_assert.ts";
import { childSignal } from "../../src/core/abort.ts";
import { Engine } from "../../src/execution/engine.ts";
import { success } from "../../src/core/flow_result.ts";
import { flow, testConfig } from "../execution/_engine_helpers.ts";

Deno.test("childSignal() aborts every live child with the parent's reason, and not disposed ones", () => {
  const parent = new AbortController();
  const a = childSignal(parent.signal);
  const b = childSignal(parent.signal);
  b.dispose();
  parent.abort("stop");
  assertStrictEquals(a.signal.aborted, true);
  assertStrictEquals(a.signal.reason, "stop");
  assertStrictEquals(b.signal.aborted, false);
  const late = childSignal(parent.signal);
  assertStrictEquals(late.signal.aborted, true);
  assertStrictEquals(childSignal(undefined).signal.aborted, false);
});

Deno.test("Engine.run() with an aborted signal stops every in-flight step and fails the run", async () => {
  let aborted = 0;
  let started = 0;
  let allStarted!: () => void;
  const ready = new Promise<void>((r) => allStarted = r);
  const engine = await Engine.create(testConfig(), {
    stepRunner: (_step, run) =>
      new Promise((resolve) => {
        if (++started === 3) allStarted();
        run.signal.addEventListener("abort", () => {
          aborted++;
          resolve(success(null));
        });
      }),
  });
  const f = flow(`
steps:
  - { id: a, component: /x }
  - { id: b, component: /x }
  - { id: c, component: /x }
output: [{ $from: { step: a } }, { $from: { step: b } }, { $from: { step: c } }]
`);
  try {
    const ctrl = new AbortController();
    const p = engine.run(f, {}, { signal: ctrl.signal });
    await ready;
    ctrl.abort(new Error("user pressed Ctrl-C"));
    const r = await p;
    assert(r.outcome === "failed", JSON.stringify(r));
    assertStrictEquals(aborted, 3);
  } finally {
    await engine.close();
  }
});

Deno.test("childSignal: disposed children are not aborted, their slots are reused, and disposing after the abort is harmless", () => {
  const parent = new AbortController();
  const kids = Array.from({ length: 10 }, () => childSignal(parent.signal));
  for (let i = 0; i < 10; i += 2) kids[i].dispose();
  kids[0].dispose(); // twice: nothing more
  const again = Array.from({ length: 5 }, () => childSignal(parent.signal)); // the freed slots
  parent.abort("stop");
  for (let i = 0; i < 10; i++) assertStrictEquals(kids[i].signal.aborted, i % 2 === 1, `kid ${i}`);
  for (const k of again) assertStrictEquals(k.signal.reason, "stop");
  for (const k of [...kids, ...again]) k.dispose();
  // a child of an aborted parent is aborted at once
  assertStrictEquals(childSignal(parent.signal).signal.aborted, true);
});
