import { assert, assertEquals, assertRejects, assertStrictEquals } from "../_assert.ts";
import { GroupCommit } from "../../src/state/group_commit.ts";

/** A store queue whose commits are recorded (and may be made to fail or to be slow). */
function fakeStore(commitFn?: (batch: number[]) => void | Promise<void>) {
  let queue: number[] = [];
  const commits: number[][] = [];
  const gc = new GroupCommit(() => {
    const batch = queue;
    queue = [];
    commits.push(batch);
    return commitFn?.(batch);
  });
  const write = (n: number) => {
    queue.push(n);
    return gc.queued();
  };
  return { gc, write, commits };
}

Deno.test("GroupCommit: writes of one turn share one commit and one promise", async () => {
  const { write, commits } = fakeStore();
  const a = write(1);
  const b = write(2);
  assertStrictEquals(a, b);
  assertEquals(commits, []);
  await a;
  assertEquals(commits, [[1, 2]]);
  const c = write(3);
  assert(c !== a);
  await c;
  assertEquals(commits, [[1, 2], [3]]);
});

Deno.test("GroupCommit: soon() commits at the end of the microtask burst", async () => {
  const { gc, write, commits } = fakeStore();
  queueMicrotask(() => write(2)); // a microtask queued before soon()'s: joins
  write(1);
  const f = gc.soon();
  write(3); // the same synchronous code: joins
  queueMicrotask(() => write(4)); // after soon()'s microtask: the next commit
  await f;
  assertEquals(commits, [[1, 3, 2]]);
  await gc.soon();
  assertEquals(commits, [[1, 3, 2], [4]]);
  await gc.soon(); // nothing queued
  assertEquals(commits.length, 2);
});

Deno.test("GroupCommit: a failed commit rejects its writers only; a dropped promise is not unhandled", async () => {
  let fail = true;
  const { write, commits } = fakeStore(() => {
    if (fail) throw new Error("disk full");
  });
  write(1); // dropped: must not become an unhandled rejection
  const p = write(2);
  await assertRejects(() => p, Error, "disk full");
  fail = false;
  await write(3);
  assertEquals(commits, [[1, 2], [3]]);
});

Deno.test("GroupCommit: while an async commit is in flight, new writes gather into the next", async () => {
  const gates: (() => void)[] = [];
  const { gc, write, commits } = fakeStore(() => new Promise<void>((r) => gates.push(r)));
  const first = write(1);
  await new Promise((r) => setTimeout(r, 0)); // let the first commit start
  assertEquals(commits, [[1]]);
  const second = write(2);
  const third = write(3);
  assertStrictEquals(second, third);
  gc.now(); // does not start a second commit while one is in flight
  assertEquals(commits, [[1]]);
  gates.shift()!();
  await first;
  await new Promise((r) => setTimeout(r, 0));
  assertEquals(commits, [[1], [2, 3]]);
  gates.shift()!();
  await second;
  await gc.drain();
});

Deno.test("GroupCommit: failedSince(mark) names a commit that failed after the mark, also one already in flight or done when soon() is asked (soon() then resolved: a caller was told its writes were stored)", async () => {
  const slow = Promise.withResolvers<void>();
  const { gc, write } = fakeStore((batch) => {
    if (batch.includes(1)) return slow.promise; // in flight until rejected below
  });
  const before = gc.mark();
  write(0);
  await gc.soon(); // stored
  assertStrictEquals(gc.failedSince(before), undefined);
  const mark = gc.mark();
  const w = write(1);
  await new Promise((ok) => setTimeout(ok, 0)); // its commit is in flight
  const f = gc.soon(); // nothing open: waits for the one in flight
  slow.reject(new Error("disk full"));
  await assertRejects(() => w, Error, "disk full");
  await f; // (resolves: it waits for the commit, not for its success)
  assertStrictEquals((gc.failedSince(mark) as Error).message, "disk full");
  const later = gc.mark();
  await write(2);
  assertStrictEquals(gc.failedSince(later), undefined);
  assertStrictEquals((gc.failedSince(mark) as Error).message, "disk full");
});
