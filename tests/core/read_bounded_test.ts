/** readBounded: the bounded body read shared by the HTTP step-service, model and MCP transports. */
import {
  assert,
  assertEquals,
  assertRejects,
  assertStrictEquals,
  assertStringIncludes,
  REPO_ROOT,
  runCli,
} from "../_assert.ts";
import {
  concatBytes,
  MAX_READ_FILE_BYTES,
  readBounded,
  readFileBounded,
  ReadTooLargeError,
} from "../../src/core/read_bounded.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function body(parts: string[], opts: { fail?: boolean; hang?: boolean } = {}) {
  let i = 0;
  let cancelled = false;
  const stream = new ReadableStream<Uint8Array>({
    pull(c) {
      if (i < parts.length) c.enqueue(enc.encode(parts[i++]));
      else if (opts.fail) c.error(new Error("connection reset"));
      else if (!opts.hang) c.close();
      else return new Promise(() => {}); // never more
    },
    cancel() {
      cancelled = true;
    },
  });
  return { stream, cancelled: () => cancelled, pulled: () => i };
}

Deno.test("readBounded: a body within the limit, in one or many chunks", async () => {
  for (const parts of [["hello"], ["he", "l", "lo"], []]) {
    const b = body(parts);
    const r = await readBounded(b.stream, 5);
    assertEquals(
      { text: dec.decode(r.bytes), size: r.size, over: r.over },
      { text: parts.join(""), size: parts.join("").length, over: false },
    );
    assertStrictEquals(b.cancelled(), false);
  }
});

Deno.test("readBounded: past the limit it stops and cancels; the cut bytes only with keepCut", async () => {
  const parts = ["abc", "def", "ghi", "jkl"];
  const a = body(parts);
  const r = await readBounded(a.stream, 4);
  assertEquals({ n: r.bytes.length, size: r.size, over: r.over }, { n: 0, size: 6, over: true });
  assert(a.cancelled(), "cancelled");
  assert(a.pulled() < parts.length, "not read to its end");
  const b = body(parts);
  const cut = await readBounded(b.stream, 4, { keepCut: true });
  assertEquals({ text: dec.decode(cut.bytes), over: cut.over }, { text: "abcd", over: true });
});

Deno.test("readBounded: a stop signal ends the read with what came; a read error is thrown", async () => {
  const stop = new AbortController();
  const b = body(["abc"], { hang: true });
  const read = readBounded(b.stream, 100, { stop: stop.signal });
  setTimeout(() => stop.abort(), 20);
  const r = await read;
  assertEquals({ text: dec.decode(r.bytes), over: r.over }, { text: "abc", over: false });
  assert(b.cancelled(), "cancelled");
  await assertRejects(() => readBounded(body(["x"], { fail: true }).stream, 100), Error, "reset");
});

Deno.test("concatBytes joins chunks in order; one chunk is given as it is", () => {
  const one = enc.encode("solo");
  assertStrictEquals(concatBytes([one]), one);
  assertStrictEquals(dec.decode(concatBytes([enc.encode("a"), enc.encode("bc")])), "abc");
  assertStrictEquals(concatBytes([]).length, 0);
});

Deno.test("readFileBounded: a device that never ends stops past the limit; a larger regular file is refused before reading; a smaller one is read", async () => {
  // before: Deno.readFile('/dev/zero') for a --input, --inputs, --data, flow or config file
  // took 3-4 GB in 30 s, and on
  const e = await assertRejects(() => readFileBounded("/dev/zero", 1 << 20), ReadTooLargeError);
  assertStringIncludes(e.message, "it has more than 1048576 bytes (1 MiB)");
  const dir = await Deno.makeTempDir();
  try {
    const big = `${dir}/big.json`;
    const f = await Deno.open(big, { write: true, create: true });
    await f.truncate(64 << 20); // sparse: nothing to read
    f.close();
    await assertRejects(() => readFileBounded(big, 1 << 20), ReadTooLargeError);
    await Deno.writeTextFile(`${dir}/small.json`, '{"a":1}');
    assertEquals(new TextDecoder().decode(await readFileBounded(`${dir}/small.json`)), '{"a":1}');
    await assertRejects(() => readFileBounded(`${dir}/none.json`), Deno.errors.NotFound);
    await assertRejects(() => readFileBounded(dir), Deno.errors.IsADirectory);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("stepflow run: an --input, --inputs or flow file over 512 MiB is a usage error naming it (exit 2), not read into memory", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const big = `${dir}/big.json`;
    const f = await Deno.open(big, { write: true, create: true });
    await f.truncate(MAX_READ_FILE_BYTES + 1); // sparse
    f.close();
    const hello = `${REPO_ROOT}/examples/hello/flow.yaml`;
    for (
      const [args, what] of [
        [["run", "--flow", hello, "--input", big], `cannot read input file '${big}'`],
        [["run-batch", "--flow", hello, "--inputs", big], `cannot read --inputs '${big}'`],
        [["run", "--flow", big, "--input-json", "{}"], `Cannot read flow file '${big}'`],
      ] as const
    ) {
      const r = await runCli([...args]);
      assertEquals(r.code, 2, r.stderr);
      assertStringIncludes(r.stderr, what);
      assertStringIncludes(r.stderr, "it has more than 536870912 bytes (512 MiB)");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
