import { readSseData } from "../../src/protocol/sse.ts";
import { assertEquals, assertRejects } from "../_assert.ts";

const enc = new TextEncoder();

function stream(parts: string[], onCancel?: () => void): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream({
    pull(c) {
      if (i < parts.length) c.enqueue(enc.encode(parts[i++]));
      else c.close();
    },
    cancel: onCancel,
  });
}

async function all(s: ReadableStream<Uint8Array>, limits = {}): Promise<string[]> {
  const out: string[] = [];
  for await (const d of readSseData(s, undefined, limits)) out.push(d);
  return out;
}

Deno.test("readSseData joins an event's data split over many chunks", async () => {
  const long = "y".repeat(100_000);
  const parts = ['data: {"a":"', ...long.match(/.{1,1000}/g)!, '"}\n', "\n", "data: 2\n\n"];
  assertEquals(await all(stream(parts)), [`{"a":"${long}"}`, "2"]);
});

Deno.test("readSseData stops an event over maxEventChars and cancels the stream", async () => {
  let cancelled = false;
  const endless = new ReadableStream<Uint8Array>({
    pull(c) {
      c.enqueue(enc.encode("data: " + "x".repeat(1000)));
    },
    cancel() {
      cancelled = true;
    },
  });
  const err = await assertRejects(() =>
    all(endless, {
      maxEventChars: 10_000,
      onTooLarge: (head: string, n: number) => new Error(`too large: ${head.slice(0, 3)} ${n}`),
    })
  );
  assertEquals(err.message, "too large: xxx 10060");
  assertEquals(cancelled, true);
});

Deno.test("readSseData shows a long event's head to onLongEvent once; it may stop the reading", async () => {
  const heads: string[] = [];
  const parts = ["data: abc", "d".repeat(50), "\n\n", "data: " + "e".repeat(60), "\n\n"];
  const got = await all(stream(parts), {
    longEventChars: 40,
    onLongEvent: (head: string) => {
      heads.push(head.slice(0, 4));
      return undefined;
    },
  });
  assertEquals(got.length, 2);
  assertEquals(heads, ["abcd", "eeee"]);
  await assertRejects(
    () => all(stream(parts), { longEventChars: 40, onLongEvent: () => new Error("stop") }),
    Error,
    "stop",
  );
});
