import { LineSplitter } from "../../src/protocol/line_splitter.ts";
import { invalidUtf8Offset } from "../../src/core/utf8.ts";
import { assertEquals } from "../_assert.ts";

const enc = (s: string) => new TextEncoder().encode(s);

Deno.test("LineSplitter joins lines split across chunks and drops empty lines", () => {
  const s = new LineSplitter();
  const lines: string[] = [];
  const on = (l: string) => lines.push(l);
  s.push(enc('{"a":1}\n{"b"'), on);
  s.push(enc(":2"), on);
  s.push(enc('}\r\n\n{"c":3}\n'), on);
  assertEquals(lines, ['{"a":1}', '{"b":2}', '{"c":3}']);
  assertEquals(s.flush(), undefined);
});

Deno.test("LineSplitter keeps multi-byte characters split between chunks", () => {
  const s = new LineSplitter();
  const bytes = enc("héllo wörld ✓\n");
  const lines: string[] = [];
  for (let i = 0; i < bytes.length; i++) s.push(bytes.subarray(i, i + 1), (l) => lines.push(l));
  assertEquals(lines, ["héllo wörld ✓"]);
});

Deno.test("LineSplitter.flush() returns an unfinished last line", () => {
  const s = new LineSplitter();
  const buf = enc("half");
  s.push(buf, () => {});
  buf.fill(0); // the caller may reuse its buffer
  assertEquals(s.pendingBytes, 4);
  assertEquals(s.flush(), "half");
  assertEquals(s.flush(), undefined);
});

Deno.test("LineSplitter drops a line over maxLineBytes, reports it once, and resumes after it", () => {
  const over: number[] = [];
  const s = new LineSplitter({ maxLineBytes: 8, onOverflow: (n) => over.push(n) });
  const lines: string[] = [];
  const on = (l: string) => lines.push(l);
  s.push(enc("ok\n0123"), on);
  s.push(enc("456789"), on); // now 10 bytes without a newline: dropped
  s.push(enc("more and more"), on); // still the same line: skipped
  s.push(enc("end\nnext\n"), on);
  s.push(enc("a very long line\nz\n"), on); // over the limit with its newline in the chunk
  assertEquals(lines, ["ok", "next", "z"]);
  assertEquals(over, [10, 16]);
});

Deno.test("LineSplitter shows a long unfinished line's head to onLongLine, which may drop it", () => {
  const seen: [string, number][] = [];
  const over: [number, string][] = [];
  let drop = true;
  const s = new LineSplitter({
    maxLineBytes: 64,
    onOverflow: (n, head) => over.push([n, head]),
    longLineBytes: 7,
    onLongLine: (head, n) => {
      seen.push([head, n]);
      return drop;
    },
  });
  const lines: string[] = [];
  const on = (l: string) => lines.push(l);
  s.push(enc('ok\n{"id":1,'), on); // 8 bytes unfinished: shown, dropped
  s.push(enc('"result":1}\nnext\n'), on);
  drop = false;
  s.push(enc("0123456789"), on); // shown, kept
  assertEquals(s.peek(), "0123456789");
  s.push(enc("ab\n"), on);
  s.push(enc("x".repeat(70) + "\n"), on); // over the maximum: head given
  assertEquals(lines, ["ok", "next", "0123456789ab"]);
  assertEquals(seen, [['{"id":1,', 8], ["0123456789", 10]]);
  assertEquals(over, [[70, "x".repeat(70)]]);
  assertEquals(s.peek(), undefined);
});

Deno.test("LineSplitter gives the lines of the whole text however it is chunked: seeded random streams", () => {
  let seed = 5;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const pieces = ['{"a":1}', "é✓", "x", "\r", "", '"\\n"', "🙂", " ", "\r\r"];
  const enc = new TextEncoder();
  for (let round = 0; round < 500; round++) {
    const lines = Array.from(
      { length: 1 + rand(12) },
      () => Array.from({ length: rand(6) }, () => pieces[rand(pieces.length)]).join(""),
    );
    const text = lines.join("\n") + (rand(2) ? "\n" : "");
    const bytes = enc.encode(text);
    // expected: split the whole text, drop one trailing CR, drop empty lines; the unfinished
    // last line (no newline after it) stays held
    const whole = text.split("\n");
    const held = whole.pop()!;
    const expected = whole.map((l) => l.endsWith("\r") ? l.slice(0, -1) : l).filter((l) => l);
    const got: string[] = [];
    const splitter = new LineSplitter();
    for (let at = 0; at < bytes.length;) {
      const n = 1 + rand(Math.min(bytes.length - at, 40));
      // a copy in a reused buffer, as the readers do
      const buf = new Uint8Array(64);
      buf.set(bytes.subarray(at, at + n));
      splitter.push(buf.subarray(0, n), (l) => got.push(l));
      buf.fill(0);
      at += n;
    }
    assertEquals(got, expected, JSON.stringify(text));
    assertEquals(splitter.flush() ?? "", held);
  }
});

Deno.test("invalidUtf8Offset finds the first byte that is not UTF-8", () => {
  const b = (...x: number[]) => new Uint8Array(x);
  assertEquals(invalidUtf8Offset(enc("héllo ✓ 😀")), -1);
  assertEquals(invalidUtf8Offset(b(0x61, 0xe9, 0x62)), 1); // Latin-1 é
  assertEquals(invalidUtf8Offset(b(0x61, 0x80)), 1); // stray continuation byte
  assertEquals(invalidUtf8Offset(b(0xc0, 0xaf)), 0); // overlong '/'
  assertEquals(invalidUtf8Offset(b(0x61, 0x62, 0xed, 0xa0, 0x80)), 2); // a surrogate
  assertEquals(invalidUtf8Offset(b(0xf4, 0x90, 0x80, 0x80)), 0); // past U+10FFFF
  assertEquals(invalidUtf8Offset(b(0x61, 0xe2, 0x82)), 1); // cut short
});

Deno.test("LineSplitter gives lines that are not UTF-8 to onInvalidUtf8, the others to onLine", () => {
  const bad: [string, number][] = [];
  const s = new LineSplitter({ onInvalidUtf8: (t, at) => bad.push([t, at]) });
  const lines: string[] = [];
  const on = (l: string) => lines.push(l);
  // in one chunk (the fast path) and across chunks (the slow one)
  s.push(new Uint8Array([...enc("ok\ncaf"), 0xe9, ...enc("\nné\n")]), on);
  s.push(new Uint8Array([...enc("x"), 0xff]), on);
  s.push(enc("y\nlast\n"), on);
  assertEquals(lines, ["ok", "né", "last"]);
  assertEquals(bad, [["caf\uFFFD", 3], ["x\uFFFDy", 1]]);
  // an unfinished line that is not UTF-8 is reported by pendingInvalidUtf8Offset
  s.push(new Uint8Array([...enc("ab"), 0xe9]), on);
  assertEquals(s.pendingInvalidUtf8Offset(), 2);
  assertEquals(s.flush(), "ab\uFFFD");
  assertEquals(s.pendingInvalidUtf8Offset(), -1);
});
