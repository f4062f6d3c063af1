/**
 * src/core/turn.ts: once busy work has been found to starve the event loop, a deadline or an
 * interrupt that comes while the burst of work in flight goes on runs at the next clock read, in
 * that burst, not after it. The failing case: a 100,000-item map went on for 10,000+ checks and
 * 200-850 ms of CPU after the loop was found starved, and SIGTERM waited for all of it (handled
 * more than 1 s late on a loaded machine: tests/cli/responsiveness_test.ts).
 */
import { assertStrictEquals } from "../_assert.ts";
import {
  nextTurn,
  setDeadline,
  TURN_SLICE_MS,
  turnDue,
  watchInterrupt,
} from "../../src/core/turn.ts";

/** Calls turnDue as busy work does (without letting the loop turn) until it says the loop is due. */
function starve(): void {
  const start = performance.now();
  while (!turnDue()) {
    if (performance.now() - start > 20 * TURN_SLICE_MS) throw new Error("never found starved");
  }
}

Deno.test("turn: an interrupt during a starved burst runs within the burst", async () => {
  await nextTurn();
  const flag = new Int32Array(new SharedArrayBuffer(4));
  let ran = 0;
  const stop = watchInterrupt(flag, () => ran++);
  try {
    starve();
    Atomics.add(flag, 0, 1); // as the CLI's signal watcher does from its thread
    for (let i = 0; i < 64 && ran === 0; i++) turnDue();
    assertStrictEquals(ran, 1);
    for (let i = 0; i < 256; i++) turnDue();
    assertStrictEquals(ran, 1, "each change is seen once");
  } finally {
    stop();
    await nextTurn();
  }
});

Deno.test("turn: a deadline passing during a starved burst fires within the burst", async () => {
  await nextTurn();
  let fired = 0;
  const cancel = setDeadline(TURN_SLICE_MS * 2, () => fired++);
  try {
    starve();
    const start = performance.now();
    while (fired === 0 && performance.now() - start < 20 * TURN_SLICE_MS) turnDue();
    assertStrictEquals(fired, 1);
  } finally {
    cancel();
    await nextTurn();
  }
});
