/**
 * IdMap (src/core/id_map.ts): values by id, UUIDs kept under the number of their last 7 hex
 * digits; ids sharing those digits, and ids of other shapes, by their text. Reads as a Map.
 */
import { assertEquals, assertStrictEquals } from "../_assert.ts";
import { hexTail, IdMap } from "../../src/core/id_map.ts";

interface E {
  id: string;
  n: number;
}

Deno.test("IdMap: get, set, delete and insertion order, as a Map, for UUIDs and other ids", () => {
  const m = new IdMap<E>((e) => e.id);
  const ids = [
    crypto.randomUUID(),
    "run-1",
    crypto.randomUUID().toUpperCase(),
    crypto.randomUUID(),
  ];
  ids.forEach((id, n) => m.set(id, { id, n }));
  assertStrictEquals(m.size, 4);
  assertEquals([...m.values()].map((e) => e.n), [0, 1, 2, 3]);
  // a new string with the same text finds it
  for (const [n, id] of ids.entries()) {
    assertStrictEquals(m.get(JSON.parse(JSON.stringify(id)))?.n, n);
  }
  m.set(ids[0], { id: ids[0], n: 9 }); // replaced in place
  assertStrictEquals(m.get(ids[0])?.n, 9);
  assertStrictEquals(m.size, 4);
  assertStrictEquals(m.delete(ids[1]), true);
  assertStrictEquals(m.delete(ids[1]), false);
  assertStrictEquals(m.get(crypto.randomUUID()), undefined);
  assertStrictEquals(m.size, 3);
});

Deno.test("IdMap: two ids with the same last 7 hex digits are both kept, found and deleted", () => {
  const m = new IdMap<E>((e) => e.id);
  const tail = "0000000000ff";
  const a = `aaaaaaaa-aaaa-4aaa-8aaa-${tail}`;
  const b = `bbbbbbbb-bbbb-4bbb-8bbb-${tail}`;
  assertStrictEquals(hexTail(a), 255);
  m.set(a, { id: a, n: 1 });
  m.set(b, { id: b, n: 2 });
  assertStrictEquals(m.get(a)?.n, 1);
  assertStrictEquals(m.get(b)?.n, 2);
  assertStrictEquals(m.size, 2);
  // the first goes; the second is still found, updated in place, and deleted
  assertStrictEquals(m.delete(a), true);
  assertStrictEquals(m.get(a), undefined);
  assertStrictEquals(m.get(b)?.n, 2);
  m.set(b, { id: b, n: 3 });
  assertStrictEquals(m.size, 1);
  assertStrictEquals(m.get(b)?.n, 3);
  assertStrictEquals(m.delete(b), true);
  assertStrictEquals(m.size, 0);
  // a third id with that tail now takes the number again
  m.set(a, { id: a, n: 4 });
  assertStrictEquals(m.get(a)?.n, 4);
  assertStrictEquals(m.get(b), undefined);
  m.clear();
  assertStrictEquals(m.size, 0);
});
