import { assertEquals, assertRejects, assertStrictEquals } from "../_assert.ts";
import { BatchManager, MAX_FINISHED_BATCHES_IN_MEMORY } from "../../src/execution/batch.ts";
import { MemoryStateStore } from "../../src/state/memory.ts";
import type { JsonValue } from "../../src/json/exact_json.ts";
import { failed, type FlowResult, success } from "../../src/core/flow_result.ts";

/** A runner that records its runs in `store` as the engine does: odd inputs fail. */
function runner(store: MemoryStateStore, inFlight: { now: number; max: number }) {
  return async (input: JsonValue, runId: string): Promise<FlowResult> => {
    store.createRun({ runId, flowId: "f", status: "running", input, createdAt: "t" });
    inFlight.now++;
    inFlight.max = Math.max(inFlight.max, inFlight.now);
    await Promise.resolve();
    inFlight.now--;
    const r = (input as number) % 2 === 1 ? failed(7, "odd") : success((input as number) * 10);
    store.completeRun(runId, r.outcome === "success" ? "completed" : "failed", r);
    return r;
  };
}

Deno.test("BatchManager runs items with at most maxConcurrency in flight and reports them in order", async () => {
  const store = new MemoryStateStore();
  const m = new BatchManager(store);
  const flight = { now: 0, max: 0 };
  const { batch_id, total_runs } = m.submit("f", "name", [0, 1, 2, 3, 4], runner(store, flight), {
    maxConcurrency: 2,
  });
  assertStrictEquals(total_runs, 5);
  const { details, outputs } = await m.get(batch_id, { wait: true, includeResults: true });
  assertStrictEquals(flight.max, 2);
  assertStrictEquals(details.completed_runs, 3);
  assertStrictEquals(details.failed_runs, 2);
  assertStrictEquals(details.running_runs, 0);
  assertEquals(outputs?.map((o) => [o.batch_input_index, o.status, o.result ?? null]), [
    [0, "completed", success(0)],
    [1, "failed", null],
    [2, "completed", success(20)],
    [3, "failed", null],
    [4, "completed", success(40)],
  ]);
  await assertRejects(() => m.get("nope"), Error, "Not found: batch with ID 'nope'");
});

Deno.test("BatchManager answers old finished batches from the state store", async () => {
  const store = new MemoryStateStore();
  const m = new BatchManager(store);
  const flight = { now: 0, max: 0 };
  const first = m.submit("f", undefined, [2, 3], runner(store, flight));
  const inMemory = await m.get(first.batch_id, { wait: true, includeResults: true });
  for (let i = 0; i < MAX_FINISHED_BATCHES_IN_MEMORY; i++) {
    const b = m.submit("f", undefined, [i], runner(store, flight));
    await m.get(b.batch_id, { wait: true });
  }
  const fromStore = await m.get(first.batch_id, { includeResults: true });
  assertEquals(fromStore.outputs, inMemory.outputs);
  assertStrictEquals(fromStore.details.completed_runs, 1);
  assertStrictEquals(fromStore.details.failed_runs, 1);
  assertStrictEquals(fromStore.details.total_runs, 2);
});
