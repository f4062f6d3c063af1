/**
 * The engine's request ids and its table of open calls (src/protocol/pending_calls.ts): ids are
 * UUID strings (stepflow 0.8), unique, and an answer's id finds its call only when it is the
 * whole id; ids of other shapes work too.
 */
import { assert, assertStrictEquals } from "../_assert.ts";
import { newRequestId, PendingCalls } from "../../src/protocol/pending_calls.ts";
import { hexTail } from "../../src/core/id_map.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

Deno.test("request ids are distinct UUID strings with a counter in their last 12 hex digits", () => {
  const ids = Array.from({ length: 1000 }, newRequestId);
  assertStrictEquals(new Set(ids).size, 1000);
  for (const id of ids) assert(UUID.test(id), id);
  assertStrictEquals(hexTail(ids[1]) - hexTail(ids[0]), 1);
  assertStrictEquals(hexTail("not-a-uuid"), -1);
  assertStrictEquals(hexTail("0193a1b2-0000-7000-8000-00000000002A"), 42);
  assertStrictEquals(hexTail("0193a1b2-0000-7000-8000-00000000002g"), -1);
});

Deno.test("PendingCalls: an answer's id (a new string) finds its call only when the whole id matches", () => {
  const t = new PendingCalls<{ id: string | number; n: number }>();
  const id = newRequestId();
  t.add({ id, n: 1 });
  const parsed = JSON.parse(JSON.stringify(id)) as string; // another string, same text
  assertStrictEquals(t.get(parsed)?.n, 1);
  // same counter, other prefix: not ours
  const other = "ffffffff-ffff-4fff-bfff-" + id.slice(24);
  assertStrictEquals(t.get(other), undefined);
  assertStrictEquals(t.delete(other), false);
  assertStrictEquals(t.size, 1);
  // ids of other shapes: by string
  t.add({ id: "req-7", n: 2 });
  t.add({ id: 7, n: 3 });
  assertStrictEquals(t.get("req-7")?.n, 2);
  assertStrictEquals(t.get(7)?.n, 3);
  assertStrictEquals(t.size, 3);
  assertStrictEquals(t.values().length, 3);
  assertStrictEquals(t.delete(parsed), true);
  assertStrictEquals(t.has(id), false);
  t.clear();
  assertStrictEquals(t.size, 0);
});
