/**
 * `/load_file` reads no more than the output size limit (issue 10, item 8), and a named pipe
 * without a writer no longer blocks a run past its timeout, run through `stepflow run` as a user
 * would.
 */
import {
  assertEquals,
  assertStrictEquals,
  assertStringIncludes,
  runCli,
  withTempDir,
} from "../../_assert.ts";
import { parseJson } from "../../../src/json/exact_json.ts";

const FLOW = `schema: https://stepflow.org/schemas/v1/flow.json
name: load
description: Loads the file named by the input
steps:
  - id: f
    component: /builtin/load_file
    input: { path: { $from: { workflow: input }, path: path }, format: text }
output: { $from: { step: f }, path: data }
`;

async function load(dir: string, path: string) {
  const r = await runCli([
    "run",
    "--flow",
    `${dir}/flow.yaml`,
    "--input-json",
    JSON.stringify({ path }),
  ]);
  return { ...r, result: r.stdout ? parseJson(r.stdout) as Record<string, unknown> : undefined };
}

Deno.test("/load_file: /dev/zero, a file over maxOutputSize and a Latin-1 file fail clearly; a small file loads", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/flow.yaml`, FLOW);
    await Deno.writeTextFile(
      `${dir}/stepflow-config.yml`,
      `maxOutputSize: 100000\nplugins:\n  builtin: { type: builtin }\n` +
        `routes:\n  "/builtin/{*component}": [{ plugin: builtin }]\n`,
    );
    // a device that never ends: reading stops at the limit
    const zero = await load(dir, "/dev/zero");
    assertStrictEquals(zero.code, 1, zero.stderr);
    assertEquals(zero.result?.error, {
      code: 413,
      message: "Step 'f': file '/dev/zero' is more than 131072 bytes, over the output size limit " +
        "of 100000 bytes (reading stopped at the limit; raise maxOutputSize, or read it in a step " +
        "service and pass a blob id)",
      data: {
        kind: "OUTPUT_TOO_LARGE",
        step: "f",
        path: "/dev/zero",
        sizeBytes: 131072,
        limitBytes: 100000,
      },
    });
    // a regular file over the limit is not read at all (its size says so)
    await Deno.writeTextFile(`${dir}/big.txt`, "x".repeat(200_000));
    const big = await load(dir, "big.txt");
    assertStrictEquals(big.code, 1);
    assertStringIncludes(
      (big.result?.error as { message: string }).message,
      `file '${dir}/big.txt' is 200000 bytes, over the output size limit of 100000 bytes (it was not read;`,
    );
    // not UTF-8: an error naming the position, not U+FFFD
    await Deno.writeFile(`${dir}/latin1.txt`, new Uint8Array([0x63, 0x61, 0x66, 0xe9, 0x0a]));
    const latin1 = await load(dir, "latin1.txt");
    assertStrictEquals(latin1.code, 1);
    // the file named once (was: "Cannot read '<dir>/latin1.txt' as text: <dir>/latin1.txt:1:4: ...")
    assertStringIncludes(
      latin1.stdout,
      `latin1.txt' as text: line 1, column 4: the file is not valid UTF-8 (byte 0xE9`,
    );
    await Deno.writeTextFile(`${dir}/small.txt`, "héllo");
    const small = await load(dir, "small.txt");
    assertStrictEquals(small.code, 0, small.stderr);
    assertEquals(small.result, { outcome: "success", result: "héllo" });
  });
});

Deno.test({
  name:
    "/load_file: a named pipe nobody writes to ends at the run timeout (it blocked past --timeout and SIGTERM)",
  ignore: Deno.build.os === "windows",
  fn: async () => {
    await withTempDir(async (dir) => {
      await Deno.writeTextFile(`${dir}/flow.yaml`, FLOW);
      await Deno.writeTextFile(
        `${dir}/stepflow-config.yml`,
        `plugins:\n  builtin: { type: builtin }\n` +
          `routes:\n  "/builtin/{*component}": [{ plugin: builtin }]\n`,
      );
      const mk = await new Deno.Command("mkfifo", { args: [`${dir}/pipe`] }).output();
      assertStrictEquals(mk.success, true);
      const r = await runCli([
        "run",
        "--flow",
        `${dir}/flow.yaml`,
        "--input-json",
        JSON.stringify({ path: `${dir}/pipe` }),
        "--timeout",
        "1s",
      ]);
      assertStrictEquals(r.code, 1, r.stderr);
      assertStringIncludes(r.stdout, '"kind":"RUN_TIMEOUT"');
    });
  },
});
