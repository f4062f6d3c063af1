/**
 * IdMap (src/core/id_map.ts): values by id, UUIDs kept under the number of their last 7 hex
 * digits; ids sharing those digits, and ids of other shapes, by their text. Reads as a Map.
 */
import { assertEquals, assertStrictEquals } from "../_assert.ts";
import { hexTail, IdMap, slotKey } from "../../src/core/id_map.ts";

interface E {
  id: string;
  n: number;
}

Deno.test("IdMap: get, set, delete and insertion order, as a Map, for UUIDs and other ids", () => {
  const m = new IdMap<E>();
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
  const m = new IdMap<E>();
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

Deno.test("IdMap: random sets and deletes read as a Map does (probe runs, wrap-around, growth and shrinking)", () => {
  // few distinct tails (collisions and long probe runs), ids of other shapes, upper case
  let seed = 7;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const pool: string[] = [];
  for (let i = 0; i < 400; i++) {
    // a few tails at both ends of every table size: long probe runs that wrap around the end
    const t = rand(4);
    const tail = (i % 2 === 0 ? t : 0xfffffff - t).toString(16).padStart(7, "0");
    const head = crypto.randomUUID().slice(0, 29);
    pool.push(i % 7 === 0 ? `run-${i}` : i % 5 === 0 ? (head + tail).toUpperCase() : head + tail);
  }
  const m = new IdMap<E>();
  const model = new Map<string, E>();
  for (let step = 0; step < 20_000; step++) {
    const id = pool[rand(pool.length)];
    // a new string with the same text each time (ids come back from the wire as new strings)
    const key = JSON.parse(JSON.stringify(id)) as string;
    const op = rand(10);
    if (op < 5 && model.size < 300) {
      const e = { id, n: step };
      if (!model.has(id)) model.set(id, e);
      else model.get(id)!.n = step;
      m.set(key, model.get(id)!);
    } else if (op < 9) {
      assertStrictEquals(m.delete(key), model.delete(id), `delete ${id} at step ${step}`);
    } else {
      assertStrictEquals(m.get(key), model.get(id), `get ${id} at step ${step}`);
    }
    assertStrictEquals(m.size, model.size);
  }
  for (const id of pool) assertStrictEquals(m.get(id), model.get(id));
  assertEquals([...m.values()], [...model.values()]);
  // emptied one by one, then used again
  for (const id of [...model.keys()]) assertStrictEquals(m.delete(id), true);
  assertStrictEquals(m.size, 0);
  assertEquals([...m.values()], []);
  m.set(pool[1], { id: pool[1], n: 1 });
  assertStrictEquals(m.get(pool[1])?.n, 1);
});

Deno.test("IdMap: values are listed in the order their ids were first set, a replaced value in its place", () => {
  const m = new IdMap<E>();
  const ids = Array.from(
    { length: 100 },
    (_, i) => i % 3 === 0 ? `other-${i}` : crypto.randomUUID(),
  );
  ids.forEach((id, n) => m.set(id, { id, n }));
  m.set(ids[10], { id: ids[10], n: 10 });
  for (let i = 0; i < 100; i += 2) m.delete(ids[i]);
  assertEquals([...m.values()].map((e) => e.n), ids.map((_, n) => n).filter((n) => n % 2 === 1));
  // a copy: deleting while reading it is safe
  let seen = 0;
  for (const e of m.values()) {
    m.delete(e.id);
    seen++;
  }
  assertStrictEquals(seen, 50);
  assertStrictEquals(m.size, 0);
});

Deno.test("IdMap: deleting where a probe run wraps around the table's end keeps every later id found", () => {
  // 16 slots: ids whose home slots (tail & 15) are 13, 14, 15, 14 (wraps to slot 0) and 0 (slot 1)
  const id = (tail: number) =>
    crypto.randomUUID().slice(0, 29) + tail.toString(16).padStart(7, "0");
  const [a, b, c, d, e] = [0x10d, 0x20e, 0x30f, 0x40e, 0x500].map(id);
  const m = new IdMap<E>();
  [a, b, c, d, e].forEach((x, n) => m.set(x, { id: x, n }));
  assertStrictEquals(m.delete(a), true);
  // d (home 14, in slot 0) must stay put, e (home 0, in slot 1) too
  assertEquals([b, c, d, e].map((x) => m.get(x)?.n), [1, 2, 3, 4]);
  assertStrictEquals(m.delete(c), true);
  assertEquals([b, d, e].map((x) => m.get(x)?.n), [1, 3, 4]);
  assertStrictEquals(m.delete(b), true);
  assertEquals([d, e].map((x) => m.get(x)?.n), [3, 4]);
  assertStrictEquals(m.size, 2);
});

Deno.test("IdMap: a table grown past 1,024 slots shrinks again as ids go, keeping every id found", () => {
  const ids = Array.from({ length: 5000 }, () => crypto.randomUUID());
  const m = new IdMap<E>();
  ids.forEach((id, n) => m.set(id, { id, n }));
  for (let i = 0; i < ids.length; i++) {
    assertStrictEquals(m.delete(ids[i]), true);
    if (i % 97 === 0) {
      for (let j = i + 1; j < ids.length; j += 89) assertStrictEquals(m.get(ids[j])?.n, j);
    }
  }
  assertStrictEquals(m.size, 0);
});

Deno.test("IdMap: ids sharing their last digits (version 1 UUIDs of one host) are placed by all their characters", () => {
  // uuid.uuid1() of one host: the time in front, the MAC address in the last 12 digits. Placed by
  // their tail alone, 40,000 of them probed from one slot (8.6 s to record and read, a Map 56 ms).
  const ids = Array.from(
    { length: 4096 },
    (_, i) => `${i.toString(16).padStart(8, "0")}-1dd2-11b2-8000-0242ac120002`,
  );
  assertStrictEquals(new Set(ids.map(hexTail)).size, 1);
  const keys = ids.map(slotKey);
  assertStrictEquals(new Set(keys).size > 4000, true, `${new Set(keys).size} keys`);
  // spread over a table's slots: no slot of 8192 is the home of more than a few of them
  const perSlot = new Map<number, number>();
  for (const k of keys) perSlot.set(k & 8191, (perSlot.get(k & 8191) ?? 0) + 1);
  assertStrictEquals(Math.max(...perSlot.values()) <= 8, true);
  assertStrictEquals(slotKey("run-1"), -1);
  const m = new IdMap<E>();
  ids.slice(0, 30).forEach((id, n) => m.set(id, { id, n }));
  assertStrictEquals(m.mixed, false, "a few collisions are probed through");
  ids.forEach((id, n) => m.set(id, { id, n }));
  assertStrictEquals(m.mixed, true, "the table turned to slotKey");
  for (const [n, id] of ids.entries()) {
    assertStrictEquals(m.get(JSON.parse(JSON.stringify(id)))?.n, n);
  }
  assertEquals([...m.values()].map((e) => e.n), ids.map((_, n) => n));
  assertStrictEquals(m.get(ids[10].toUpperCase()), undefined);
  for (let i = 0; i < ids.length; i += 2) assertStrictEquals(m.delete(ids[i]), true);
  for (const [n, id] of ids.entries()) {
    assertStrictEquals(m.get(id)?.n, n % 2 === 1 ? n : undefined);
  }
  assertStrictEquals(m.size, 2048);
  m.clear();
  assertStrictEquals(m.mixed, false);
  // random ids never turn it
  for (let i = 0; i < 20_000; i++) m.set(crypto.randomUUID(), { id: "", n: i });
  assertStrictEquals(m.mixed, false);
});

Deno.test("IdMap: ids counting in their last digits, deleted in order, turn the table to slotKey", () => {
  // caller-given ids 00000000-0000-4000-8000-000000000000, ...001, ...: one run of consecutive
  // slots that each delete walked to its end (40,000 deleted in order: 0.8-1.8 s)
  const ids = Array.from(
    { length: 4096 },
    (_, i) => `00000000-0000-4000-8000-${i.toString(16).padStart(12, "0")}`,
  );
  const m = new IdMap<E>();
  ids.forEach((id, n) => m.set(id, { id, n }));
  assertStrictEquals(m.mixed, false, "consecutive tails do not collide");
  for (let i = 0; i < 100; i++) assertStrictEquals(m.delete(ids[i]), true);
  assertStrictEquals(m.mixed, true);
  for (const [n, id] of ids.entries()) assertStrictEquals(m.get(id)?.n, n < 100 ? undefined : n);
  assertEquals([...m.values()].map((e) => e.n), ids.map((_, n) => n).slice(100));
  // the engine's own request ids: 16 open at a time, never
  const calls = new IdMap<E>();
  for (let i = 0; i < 10_000; i++) {
    calls.set(ids[i % 4096].slice(0, 24) + i.toString(16).padStart(12, "0"), { id: "", n: i });
    if (i >= 16) {
      calls.delete(ids[0].slice(0, 24) + (i - 16).toString(16).padStart(12, "0"));
    }
  }
  assertStrictEquals(calls.size, 16);
  assertStrictEquals(calls.mixed, false);
});
