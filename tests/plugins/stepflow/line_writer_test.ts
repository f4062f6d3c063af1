/**
 * The stdio transport's coalesced writes (src/plugins/stepflow/line_writer.ts) encode each batch
 * into one buffer reused from write to write (issue 17): every byte written must be what the
 * lines say, for multi-byte text, batches larger than the buffer, and batches larger than the
 * largest buffer kept.
 */
import { assertEquals, assertStrictEquals } from "../../_assert.ts";
import { LineWriter } from "../../../src/plugins/stepflow/line_writer.ts";

Deno.test("LineWriter writes exactly the lines of each batch through its reused buffer", async () => {
  const written: string[] = [];
  const dec = new TextDecoder();
  // the bytes are read at once: the writer may reuse its buffer once the write resolved
  const w = new LineWriter((bytes) => {
    written.push(dec.decode(bytes));
    return new Promise((r) => setTimeout(r, 1));
  }, (e) => e);
  const sent: string[] = [];
  const send = (text: string) => {
    sent.push(text);
    return w.send(text);
  };
  const batches: string[][] = [
    ['{"a":1}', '{"é✓":"日本語 🎉"}'],
    Array.from({ length: 200 }, (_, i) => JSON.stringify({ i, t: "x".repeat(i * 7) })), // > 16 KiB
    ['{"big":"' + "ü".repeat(600_000) + '"}'], // > 1 MiB encoded: a buffer of its own
    ['{"after":"🎉"}', "{}"],
  ];
  for (const b of batches) await Promise.all(b.map(send));
  assertEquals(written.join(""), sent.map((t) => t + "\n").join(""));
  assertStrictEquals(written.length >= batches.length, true);
});

Deno.test("LineWriter: a failed write fails every message of its batch and those queued meanwhile, once each", async () => {
  let fail = false;
  let release: (() => void) | undefined;
  const writes: string[] = [];
  const dec = new TextDecoder();
  const w = new LineWriter((bytes) => {
    writes.push(dec.decode(bytes));
    if (!fail) return Promise.resolve();
    // the failing write is in progress until released: messages queue meanwhile
    return new Promise((_, reject) => release = () => reject(new Error("EPIPE")));
  }, (e) => new Error(`stdin closed: ${(e as Error).message}`));
  const failures: string[] = [];
  // a batch that is written: posted messages' callbacks are never called
  w.post("a", (e) => failures.push(`a ${e}`));
  await w.send("b");
  assertEquals(failures, []);
  fail = true;
  const sent = w.send("c").then(() => "written", (e) => `c ${e}`);
  w.post("d", (e) => failures.push(`d ${e}`));
  await new Promise((r) => setTimeout(r, 0)); // the batch [c, d] is being written
  w.post("e", (e) => failures.push(`e ${e}`)); // queued during the failing write
  const later = w.send("f").then(() => "written", (e) => `f ${e}`);
  release!();
  assertEquals([await sent, await later], [
    "c Error: stdin closed: EPIPE",
    "f Error: stdin closed: EPIPE",
  ]);
  assertEquals(failures.sort(), ["d Error: stdin closed: EPIPE", "e Error: stdin closed: EPIPE"]);
  assertEquals(writes, ["a\nb\n", "c\nd\n"]);
  // the writer goes on: a later message is written (the caller stops using a broken pipe)
  fail = false;
  await w.send("g");
  assertEquals(writes.at(-1), "g\n");
});
