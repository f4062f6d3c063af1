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
