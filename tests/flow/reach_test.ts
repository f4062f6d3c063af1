import { StepReach } from "../../src/flow/reach.ts";
import { assertStrictEquals } from "../_assert.ts";

Deno.test("StepReach answers as a walk of the edges: chains, diamonds, unknown steps, cycles", () => {
  const deps = new Map<string, string[]>([
    ["a", []],
    ["b", ["a"]],
    ["c", ["a"]],
    ["d", ["b", "c"]],
    ["e", ["x"]], // a step that is not in the map (a later or unknown step)
  ]);
  const r = new StepReach(deps);
  for (
    const [from, to, want] of [
      ["d", "a", true],
      ["d", "b", true],
      ["b", "c", false],
      ["a", "d", false],
      ["e", "x", true],
      ["e", "a", false],
      ["d", "d", false],
      ["c", "a", true],
    ] as const
  ) assertStrictEquals(r.dependsOn(from, to), want, `${from} -> ${to}`);
  const cyclic = new StepReach(
    new Map([["p", ["q"]], ["q", ["p", "r"]], ["r", []], ["s", ["p"]]]),
  );
  assertStrictEquals(cyclic.dependsOn("s", "r"), true);
  assertStrictEquals(cyclic.dependsOn("p", "p"), true);
  assertStrictEquals(cyclic.dependsOn("r", "p"), false);
});

Deno.test("StepReach walks a chain of 50,000 steps without a recursion per step", () => {
  // the validator's walk per onError.defaultValue reading step 0 was quadratic in such a chain
  // (8,000 steps: 3.5 s; bench/validate_scaling.ts SHAPES=default measures it)
  const n = 50_000;
  const deps = new Map<string, string[]>();
  for (let i = 0; i < n; i++) deps.set(`s${i}`, i === 0 ? [] : [`s${i - 1}`]);
  const r = new StepReach(deps);
  for (let i = 1; i < n; i++) {
    if (!r.dependsOn(`s${i}`, "s0")) throw new Error(`s${i} should depend on s0`);
  }
  assertStrictEquals(r.dependsOn("s0", `s${n - 1}`), false);
  assertStrictEquals(r.dependsOn(`s${n - 1}`, `s${n - 2}`), true);
});
