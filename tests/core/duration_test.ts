import { assertEquals, assertThrows } from "../_assert.ts";
import { formatDuration, parseDuration } from "../../src/core/duration.ts";
import { rawNumber } from "../../src/json/exact_json.ts";

Deno.test("parseDuration() reads numbers as ms and unit strings", () => {
  assertEquals(parseDuration(250), 250);
  assertEquals(parseDuration("30s"), 30000);
  assertEquals(parseDuration("500ms"), 500);
  assertEquals(parseDuration("1.5m"), 90000);
  assertEquals(parseDuration("2h"), 7200000);
  assertEquals(parseDuration(" 10 s "), 10000);
  assertEquals(parseDuration(rawNumber("100.0")), 100);
});

Deno.test("parseDuration() rejects zero, negatives, bad strings with the value named", () => {
  assertThrows(
    () => parseDuration(0, { what: "timeout" }),
    RangeError,
    "timeout must be greater than zero, got 0",
  );
  assertEquals(parseDuration("0s", { allowZero: true }), 0);
  assertThrows(() => parseDuration(-5), RangeError, "got -5");
  assertThrows(() => parseDuration("30 sec"), RangeError, 'got "30 sec"');
  assertThrows(() => parseDuration("abc"), RangeError, '"500ms", "30s", "5m" or "1h"');
  assertThrows(() => parseDuration(1.5), RangeError, "whole number of milliseconds");
  assertThrows(() => parseDuration(true), RangeError, "got true");
  assertThrows(() => parseDuration("1000h"), RangeError, "at most 2147483647 ms");
});

Deno.test("formatDuration() prints short units", () => {
  assertEquals(formatDuration(250), "250ms");
  assertEquals(formatDuration(30000), "30s");
  assertEquals(formatDuration(1500), "1.5s");
  assertEquals(formatDuration(300000), "5m");
  assertEquals(formatDuration(7200000), "2h");
});
