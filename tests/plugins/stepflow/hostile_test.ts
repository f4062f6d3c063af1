/**
 * A step service that misbehaves (tests/fixtures/workers/hostile/hostile_worker.py), run through
 * `stepflow run` as a user would (issue 10): every fault fails its step clearly or is recovered,
 * and the run never hangs or crashes.
 */
import {
  assert,
  assertEquals,
  assertStrictEquals,
  assertStringIncludes,
  REPO_ROOT,
  runCli,
} from "../../_assert.ts";
import { parseJson } from "../../../src/json/exact_json.ts";

const DIR = `${REPO_ROOT}/tests/fixtures/workers/hostile`;

async function runFile(file: string, input: unknown, extra: string[] = [], env = {}) {
  const r = await runCli([
    "run",
    "--flow",
    `${DIR}/${file}`,
    "--input-json",
    JSON.stringify(input),
    ...extra,
  ], { env });
  // deno-lint-ignore no-explicit-any
  const result = r.stdout ? parseJson(r.stdout) as Record<string, any> : undefined;
  return { ...r, result };
}

/** Runs one_step.yaml with the step's component replaced and `input` as its input. */
async function call(component: string, input: unknown, extra: string[] = []) {
  const r = await runCli([
    "run",
    "--flow",
    `${DIR}/one_step.yaml`,
    "--input-json",
    JSON.stringify({ input }),
    "--overrides-json",
    JSON.stringify({ call: { value: { component: `/hostile${component}` } } }),
    ...extra,
  ]);
  // deno-lint-ignore no-explicit-any
  const result = r.stdout ? parseJson(r.stdout) as Record<string, any> : undefined;
  return { ...r, result };
}

Deno.test("an answer nested 8,000 levels fails its step with 413 and the result is printed", async () => {
  const r = await call("/deep", { n: 8000 });
  assertStrictEquals(r.code, 1, r.stderr);
  assertEquals(r.result?.error, {
    code: 413,
    message: "Step 'call' output is nested more than 512 levels deep, over the limit (sent by " +
      "step service 'hostile'; flatten it, or return it as a blob)",
    data: { kind: "OUTPUT_TOO_LARGE", step: "call", limitDepth: 512 },
  });
  // 512 levels are fine
  const ok = await call("/deep", { n: 512 });
  assertStrictEquals(ok.code, 0, ok.stderr);
});

Deno.test("an error answer whose data is nested 8,000 levels keeps its code and message, not the data", async () => {
  const r = await call("/deep_error", { n: 8000 });
  assertStrictEquals(r.code, 1, r.stderr);
  assertEquals(r.result?.error, {
    code: -32003,
    message: "deep failure (error data left out: nested more than 512 levels deep)",
  });
});

Deno.test("'working...' before the answer on the same line: the answer is taken, with a warning", async () => {
  const r = await call("/prefix", {});
  assertStrictEquals(r.code, 0, r.stderr);
  assertEquals(r.result, { outcome: "success", result: { ok: true } });
  assertStringIncludes(r.stderr, `("working..." before), which was ignored`);
});

Deno.test("'working...' before an answer that is not JSON fails the call at once, naming why", async () => {
  const r = await call("/prefix_nan", {}, ["--timeout", "20s"]);
  assertStrictEquals(r.code, 1, r.stderr);
  assertStrictEquals(r.result?.error.code, -32603);
  assertStringIncludes(
    r.result?.error.message,
    "step service 'hostile' answered 'components/execute' with a line that cannot be parsed as JSON",
  );
});

Deno.test("a 512-level output inside a 505-level output template prints (JSON and YAML)", async () => {
  const r = await runCli(["run", "--flow", `${DIR}/wrapped.yaml`, "--input-json", "{}"]);
  assertStrictEquals(r.code, 0, r.stderr);
  assertStrictEquals(r.stdout.length, 2066);
});

Deno.test("an answer over maxOutputSize fails once with 413 under a retry policy; the worker is not restarted", async () => {
  const r = await runCli([
    "run",
    "--flow",
    `${DIR}/big_retry.yaml`,
    "--config",
    `${DIR}/limited.yml`,
    "--input-json",
    "{}",
  ]);
  assertStrictEquals(r.code, 0, r.stderr);
  // one call for `big` (no retry), then `calls` on the same process: 2
  assertEquals(parseJson(r.stdout), {
    outcome: "success",
    result: { big: "fell back", calls: 2 },
  });
  const one = await call("/big", { n: 5_000_000 }, ["--config", `${DIR}/limited.yml`]);
  assertStrictEquals(one.code, 1, one.stderr);
  assertStrictEquals(one.result?.error.code, 413);
  assertStringIncludes(
    one.result?.error.message,
    "over the limit of 1000 bytes (step service 'hostile' sent an answer to 'components/execute' " +
      "of more than ",
  );
});

Deno.test("an answer written without its newline is taken once the worker is quiet", async () => {
  const r = await call("/no_newline", {});
  assertStrictEquals(r.code, 0, r.stderr);
  assertEquals(r.result, { outcome: "success", result: { ok: true } });
  assertStringIncludes(r.stderr, "was not ended with a newline");
});

Deno.test("half a line and silence: a warning names the stalled worker and its text; a step timeout ends the wait", async () => {
  // before: no word at all while the call waited (without a timeout, for ever)
  const r = await runCli([
    "run",
    "--flow",
    `${DIR}/one_step.yaml`,
    "--input-json",
    JSON.stringify({ input: {} }),
    "--overrides-json",
    JSON.stringify({ call: { value: { component: "/hostile/half_line", timeout: "2s" } } }),
  ]);
  assertStrictEquals(r.code, 1, r.stderr);
  // deno-lint-ignore no-explicit-any
  assertEquals((parseJson(r.stdout) as any).error.code, 504);
  assertStringIncludes(
    r.stderr,
    "wrote part of a line on stdout and went quiet with 1 call(s) open",
  );
  assertStringIncludes(r.stderr, String.raw`"{\"jsonrpc\": \"2.0\", \""`);
});

Deno.test("secrets (is_secret variables, input fields, step outputs) are [REDACTED] in errors and logs", async () => {
  const r = await runFile(
    "secrets.yaml",
    { password: "hunter2-pw", user: "ada" },
    ["--variables-json", '{"api_key":"sk-live-123456"}'],
    { STEPFLOW_LOG_LEVEL: "debug" },
  );
  assertStrictEquals(r.code, 1, r.stderr);
  for (const secret of ["hunter2-pw", "sk-live-123456", "tok-from-a-step"]) {
    assert(!r.stdout.includes(secret), `${secret} in stdout: ${r.stdout}`);
    assert(!r.stderr.includes(secret), `${secret} in stderr: ${r.stderr}`);
  }
  const redacted =
    '{"key": "[REDACTED]", "password": "[REDACTED]", "token": "[REDACTED]", "user": "ada"}';
  assertStrictEquals(r.result?.error.message, `bad input ${redacted}`);
  assertEquals(r.result?.error.data, {
    input: { key: "[REDACTED]", password: "[REDACTED]", token: "[REDACTED]", user: "ada" },
  });
  // the worker's stderr, logged by the engine
  assertStringIncludes(r.stderr, `stderr: got ${redacted}`);
});

Deno.test("an answer that is not UTF-8 fails its step naming the byte, not changed to U+FFFD", async () => {
  for (const newline of [true, false]) {
    const r = await call("/not_utf8", { newline }, ["--timeout", "20s"]);
    assertStrictEquals(r.code, 1, r.stderr);
    assertEquals(r.result?.error?.code, -32603);
    assertStringIncludes(
      r.result?.error?.message,
      "step service 'hostile' answered 'components/execute' with a line that is not UTF-8 text " +
        "(an invalid byte at offset 84); its data was not used",
    );
    assert(!r.stdout.includes("\uFFFD"), r.stdout);
  }
});

Deno.test("a request of the step service that is not UTF-8 is refused with -32602, not stored changed", async () => {
  const r = await call("/not_utf8_request", {}, ["--timeout", "20s"]);
  assertStrictEquals(r.code, 0, r.stderr);
  assertEquals(r.result?.result?.id, "put-1");
  assertEquals(r.result?.result?.error?.code, -32602);
  assertStringIncludes(r.result?.result?.error?.message, "not UTF-8 text");
  assertStringIncludes(r.stderr, "refused 'blobs/put': it is not UTF-8");
});
