import { MAX_ENV_NESTING, substituteEnv } from "../../src/config/env.ts";
import {
  assertEquals,
  assertStrictEquals,
  assertStringIncludes,
  assertThrows,
} from "../_assert.ts";

const ENV: Record<string, string> = { HOME: "/home/u", EMPTY: "", PORT: "8080" };
const lookup = (n: string) => Object.hasOwn(ENV, n) ? ENV[n] : undefined;
const sub = (t: string) => substituteEnv(t, lookup);

Deno.test("substituteEnv() replaces $VAR and ${VAR}", () => {
  assertStrictEquals(sub("$HOME/x"), "/home/u/x");
  assertStrictEquals(sub("${HOME}x"), "/home/ux");
  assertStrictEquals(sub("a$PORT.b"), "a8080.b");
  assertStrictEquals(sub("no vars"), "no vars");
});

Deno.test("substituteEnv() gives ${VAR:-x} its shell meaning", () => {
  assertStrictEquals(sub("${UNSET:-x}"), "x", "unset → default (0.8 would give '-x')");
  assertStrictEquals(sub("${EMPTY:-x}"), "x", "empty → default");
  assertStrictEquals(sub("${HOME:-x}"), "/home/u");
  assertStrictEquals(sub("${UNSET:-}"), "");
});

Deno.test("substituteEnv() supports ${VAR-x} and 0.8's ${VAR:x}", () => {
  assertStrictEquals(sub("${UNSET-x}"), "x");
  assertStrictEquals(sub("${EMPTY-x}"), "", "set but empty stays empty");
  assertStrictEquals(sub("${UNSET:x}"), "x");
  assertStrictEquals(sub("${PORT:1}"), "8080");
});

Deno.test("substituteEnv() nests defaults and escapes $$", () => {
  assertStrictEquals(sub("${UNSET:-${PORT}}"), "8080");
  assertStrictEquals(sub("${UNSET:-${ALSO_UNSET:-deep}}"), "deep");
  assertStrictEquals(sub("cost: $$5"), "cost: $5");
  assertStrictEquals(sub("a $ b $1"), "a $ b $1", "a lone $ is kept");
});

Deno.test("substituteEnv() names an unset variable and how to default it", () => {
  assertThrows(
    () => sub("--key=$API_KEY"),
    Error,
    `Environment variable 'API_KEY' is not set (referenced in "--key=$API_KEY"): set it, or give a default with \${API_KEY:-default}`,
  );
  assertThrows(() => sub("${UNSET}"), Error, "'UNSET' is not set");
  assertThrows(() => sub("${HOME"), Error, "Unterminated");
  assertThrows(() => sub("${HOME?x}"), Error, "Invalid variable reference");
});

Deno.test("substituteEnv: defaults nested deeper than MAX_ENV_NESTING are an error saying so (was: Maximum call stack size exceeded)", () => {
  const nest = (n: number) => "${A:-".repeat(n) + "x" + "}".repeat(n);
  const undefinedLookup = (_: string) => undefined;
  assertEquals(substituteEnv(nest(MAX_ENV_NESTING), undefinedLookup), "x");
  for (const n of [MAX_ENV_NESTING + 1, 200_000]) {
    const e = assertThrows(() => substituteEnv(nest(n), undefinedLookup), Error);
    assertStringIncludes(e.message, `nested more than ${MAX_ENV_NESTING} levels deep`);
    assertEquals(e.message.length < 400, true, e.message.slice(0, 100));
  }
});
