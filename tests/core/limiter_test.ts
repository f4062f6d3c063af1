import { assertEquals, assertRejects, assertThrows } from "../_assert.ts";
import { Limiter } from "../../src/core/limiter.ts";
import { boundedMap } from "../../src/core/bounded_map.ts";
import { flush } from "../execution/_fake_clock.ts";

Deno.test("Limiter() rejects limits that are not positive integers", () => {
  for (const bad of [0, -1, 1.5, NaN]) {
    assertThrows(() => new Limiter(bad), RangeError, "limit must be a positive integer");
  }
  assertEquals(new Limiter(Infinity).limit, Infinity);
});

Deno.test("Limiter.acquire() grants up to the limit and serves waiters first come first served", async () => {
  const l = new Limiter(2);
  const r1 = await l.acquire();
  const r2 = await l.acquire();
  const order: number[] = [];
  const w3 = l.acquire().then((r) => (order.push(3), r));
  const w4 = l.acquire().then((r) => (order.push(4), r));
  await flush();
  assertEquals([l.active, l.waiting], [2, 2]);
  // A newcomer cannot barge in front of the queue.
  assertEquals(l.tryAcquire(), undefined);
  r2();
  r2(); // a second release is ignored
  const r3 = await w3;
  assertEquals([l.active, l.waiting], [2, 1]);
  r1();
  const r4 = await w4;
  assertEquals(order, [3, 4]);
  r3();
  r4();
  assertEquals([l.active, l.waiting, l.peak], [0, 0, 2]);
});

Deno.test("Limiter.acquire() honours an AbortSignal while waiting", async () => {
  const l = new Limiter(1);
  const r1 = await l.acquire();
  const ctrl = new AbortController();
  const waiting = l.acquire(ctrl.signal);
  const after = l.acquire();
  ctrl.abort(new Error("stop"));
  await assertRejects(() => waiting, Error, "stop");
  assertEquals(l.waiting, 1);
  r1();
  const r2 = await after; // the aborted waiter was skipped
  assertEquals(l.active, 1);
  r2();
  await assertRejects(() => l.acquire(AbortSignal.abort(new Error("already"))), Error, "already");
});

Deno.test("Limiter.run() releases on success and on failure", async () => {
  const l = new Limiter(1);
  assertEquals(await l.run(() => Promise.resolve(7)), 7);
  await assertRejects(() => l.run(() => Promise.reject(new Error("bad"))), Error, "bad");
  assertEquals(l.active, 0);
});

Deno.test("Limiter.run() keeps at most `limit` of 10,000 tasks in flight", async () => {
  const l = new Limiter(4);
  let inFlight = 0;
  let peak = 0;
  const tasks = Array.from({ length: 10_000 }, (_, i) =>
    l.run(async () => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await Promise.resolve();
      inFlight--;
      return i;
    }));
  const out = await Promise.all(tasks);
  assertEquals(out[9_999], 9_999);
  assertEquals(peak, 4);
  assertEquals(l.peak, 4);
});

Deno.test("boundedMap() keeps order, never exceeds the limit, starts items lazily", async () => {
  let inFlight = 0;
  let peak = 0;
  let started = 0;
  const items = Array.from({ length: 10_000 }, (_, i) => i);
  const out = await boundedMap(items, async (x) => {
    started++;
    inFlight++;
    peak = Math.max(peak, inFlight);
    await Promise.resolve();
    inFlight--;
    return x * 2;
  }, { concurrency: 4 });
  assertEquals(peak, 4);
  assertEquals(out.length, 10_000);
  assertEquals(out[1234], 2468);
  assertEquals(await boundedMap([], () => Promise.resolve(1), { concurrency: 3 }), []);
  await assertRejects(
    () => boundedMap([1], () => Promise.resolve(1), { concurrency: 0 }),
    RangeError,
    "concurrency must be a positive integer, got 0",
  );
});

Deno.test("boundedMap() stops starting items after an error or an abort", async () => {
  let calls = 0;
  await assertRejects(
    () =>
      boundedMap([1, 2, 3, 4, 5, 6], (x) => {
        calls++;
        return x === 2 ? Promise.reject(new Error("item 2")) : Promise.resolve(x);
      }, { concurrency: 1 }),
    Error,
    "item 2",
  );
  assertEquals(calls, 2);
  const ctrl = new AbortController();
  calls = 0;
  await assertRejects(
    () =>
      boundedMap([1, 2, 3], (x) => {
        calls++;
        ctrl.abort(new Error("cancelled"));
        return Promise.resolve(x);
      }, { concurrency: 1, signal: ctrl.signal }),
    Error,
    "cancelled",
  );
  assertEquals(calls, 1);
});
