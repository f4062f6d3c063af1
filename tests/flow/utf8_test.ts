import { assertStrictEquals, assertThrows } from "../_assert.ts";
import { decodeUtf8, invalidUtf8Offset } from "../../src/flow/utf8.ts";
import { FlowLoadError } from "../../src/errors.ts";
import { loadFlowText } from "../../src/flow/load.ts";

const bytes = (...b: number[]) => new Uint8Array(b);

Deno.test("invalidUtf8Offset finds the first byte that is not valid UTF-8", () => {
  const enc = new TextEncoder();
  assertStrictEquals(invalidUtf8Offset(enc.encode("aé✓😀")), -1);
  assertStrictEquals(invalidUtf8Offset(bytes(0x61, 0xe9, 0x62)), 1); // Latin-1 é
  assertStrictEquals(invalidUtf8Offset(bytes(0xc0, 0x80)), 0); // overlong NUL
  assertStrictEquals(invalidUtf8Offset(bytes(0xed, 0xa0, 0x80)), 0); // a surrogate
  assertStrictEquals(invalidUtf8Offset(bytes(0xf4, 0x90, 0x80, 0x80)), 0); // above U+10FFFF
  assertStrictEquals(invalidUtf8Offset(bytes(0x61, 0xe2, 0x9c)), 1); // truncated at the end
  assertStrictEquals(invalidUtf8Offset(bytes(0xe2, 0x41, 0x80)), 0); // bad continuation
});

Deno.test("decodeUtf8 names file, line and column; drops a byte-order mark", () => {
  const text = new TextEncoder().encode('a: 1\nb: "x');
  const bad = new Uint8Array([...text, 0xe9, 0x22, 0x0a]);
  const e = assertThrows(() => decodeUtf8(bad, "f.yaml"), FlowLoadError) as FlowLoadError;
  assertStrictEquals(
    e.message,
    "f.yaml:2:6: the file is not valid UTF-8 (byte 0xE9 at byte offset 10): save it as UTF-8 " +
      "(e.g. iconv -f latin1 -t utf-8)",
  );
  assertStrictEquals(decodeUtf8(bytes(0xef, 0xbb, 0xbf, 0x61)), "a");
  // the column does not count the byte-order mark
  const withBom = decodeUtf8.bind(null, bytes(0xef, 0xbb, 0xbf, 0x61, 0xff));
  assertStrictEquals((assertThrows(withBom, FlowLoadError) as FlowLoadError).position?.col, 2);
});

Deno.test("loadFlowText accepts a flow text that starts with a byte-order mark", () => {
  const flow = loadFlowText(
    '\uFEFF{"schema":"https://stepflow.org/schemas/v1/flow.json","steps":[]}',
    { format: "json", file: "f.json" },
  );
  assertStrictEquals(flow.flow.steps.length, 0);
});
