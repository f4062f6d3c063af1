/**
 * stepflow 0.8's global flags: `--log-level`, `--log-format json|text`, `--log-file`,
 * `--omit-stack-trace`, `--log-destination`, `--other-log-level` and the OpenTelemetry flags
 * (accepted, checked as 0.8 does, a warning that nothing is exported), before or after the
 * subcommand, and their `STEPFLOW_*` variables.
 */
import { assert, assertEquals, assertStringIncludes, runCli, withTempDir } from "../_assert.ts";
import { applyGlobalFlags, withEnv } from "../../src/cli/global_flags.ts";
import { formatLogLine, logger, redactLogs, setLogFormat, setLogSink } from "../../src/log.ts";
import { UsageError } from "../../src/errors.ts";
import { startFakeOpenAI } from "../plugins/builtin/_openai_server.ts";

const FAILING_FLOW = `schema: https://stepflow.org/schemas/v1/flow.json
steps:
  - id: a
    component: /builtin/get_blob
    input: { blob_id: "${"0".repeat(64)}" }
output: { $from: { step: a } }
`;
const CONFIG = `plugins:
  builtin: { type: builtin }
routes:
  "/builtin/{*component}": [{ plugin: builtin }]
`;

/** A flow whose /chat step answers from a local server, logging at info. */
function chatFiles(dir: string, baseUrl: string) {
  Deno.writeTextFileSync(
    `${dir}/flow.yaml`,
    `schema: https://stepflow.org/schemas/v1/flow.json
name: ask
description: One question to a local model.
steps:
  - id: ask
    component: /builtin/chat
    input: { messages: [{ role: user, content: hi }] }
output: { $from: { step: ask }, path: content }
`,
  );
  Deno.writeTextFileSync(
    `${dir}/stepflow-config.yml`,
    `plugins:
  builtin: { type: builtin, openai: { baseUrl: "${baseUrl}", model: m } }
routes:
  "/builtin/{*component}": [{ plugin: builtin }]
`,
  );
}

Deno.test("--log-level info --log-format json: one JSON object per log line on stderr, before or after the subcommand", async () => {
  const server = startFakeOpenAI();
  try {
    await withTempDir(async (dir) => {
      chatFiles(dir, server.baseUrl);
      for (
        const args of [
          [
            "--log-level",
            "info",
            "--log-format",
            "json",
            "run",
            "--flow",
            "flow.yaml",
            "--input-json",
            "{}",
          ],
          [
            "run",
            "--flow",
            "flow.yaml",
            "--input-json",
            "{}",
            "--log-level",
            "INFO",
            "--log-format",
            "json",
          ],
        ]
      ) {
        const out = await runCli(args, { cwd: dir });
        assertEquals(out.code, 0, out.stderr);
        assertEquals(out.stdout, '{"outcome":"success","result":"echo: hi"}\n');
        const line = out.stderr.split("\n").find((l) => l.includes('"target":"chat"'));
        assert(line, out.stderr);
        const rec = JSON.parse(line);
        assertEquals(Object.keys(rec), ["timestamp", "level", "target", "message"]);
        assertEquals(rec.level, "INFO");
        assertStringIncludes(rec.message, "step 'ask': m-served, 11 + 7 tokens");
        assert(!isNaN(Date.parse(rec.timestamp)));
      }
    });
  } finally {
    await server.close();
  }
});

Deno.test("--log-file writes the log there (appending) instead of stderr; STEPFLOW_LOG_* variables work too", async () => {
  const server = startFakeOpenAI();
  try {
    await withTempDir(async (dir) => {
      chatFiles(dir, server.baseUrl);
      const a = await runCli(
        [
          "--log-level",
          "info",
          "--log-file",
          "run.log",
          "run",
          "--flow",
          "flow.yaml",
          "--input-json",
          "{}",
        ],
        { cwd: dir },
      );
      assertEquals(a.code, 0, a.stderr);
      assertEquals(a.stderr, "");
      const b = await runCli(["run", "--flow", "flow.yaml", "--input-json", "{}"], {
        cwd: dir,
        env: {
          STEPFLOW_LOG_LEVEL: "info",
          STEPFLOW_LOG_FILE: "run.log",
          STEPFLOW_LOG_FORMAT: "json",
        },
      });
      assertEquals(b.code, 0, b.stderr);
      // the chat step's line from each run (the openai library logs its request at info too)
      const lines = Deno.readTextFileSync(`${dir}/run.log`).trim().split("\n")
        .filter((l) => /\] chat:|"target":"chat"/.test(l));
      assertEquals(lines.length, 2, lines.join("\n"));
      assertStringIncludes(lines[0], "[info] chat: step 'ask'");
      assertEquals(JSON.parse(lines[1]).target, "chat");
    });
  } finally {
    await server.close();
  }
});

Deno.test("--omit-stack-trace prints only the first line of a failed run", async () => {
  await withTempDir(async (dir) => {
    Deno.writeTextFileSync(`${dir}/flow.yaml`, FAILING_FLOW);
    Deno.writeTextFileSync(`${dir}/stepflow-config.yml`, CONFIG);
    const full = await runCli(["run", "--flow", "flow.yaml", "--input-json", "{}"], { cwd: dir });
    const short = await runCli([
      "--omit-stack-trace",
      "run",
      "--flow",
      "flow.yaml",
      "--input-json",
      "{}",
    ], { cwd: dir });
    assertEquals([full.code, short.code], [1, 1]);
    assertEquals(full.stdout, short.stdout);
    const first = full.stderr.split("\n").find((l) => l.startsWith("run failed"))!;
    assert(full.stderr.split("\n").length > 3, full.stderr);
    assertEquals(short.stderr.trim().split("\n").filter((l) => !/warning/.test(l)), [first]);
  });
});

Deno.test("OpenTelemetry flags are accepted with one warning; 0.8's consistency checks are usage errors", async () => {
  await withTempDir(async (dir) => {
    Deno.writeTextFileSync(`${dir}/flow.yaml`, FAILING_FLOW);
    Deno.writeTextFileSync(`${dir}/stepflow-config.yml`, CONFIG);
    const ok = await runCli(
      [
        "--otlp-endpoint",
        "http://127.0.0.1:4317",
        "--trace-enabled",
        "validate",
        "--flow",
        "flow.yaml",
      ],
      { cwd: dir },
    );
    assertEquals(ok.code, 0, ok.stderr);
    assertStringIncludes(ok.stderr, "warning: OpenTelemetry export is not built into this engine");
    for (
      const [args, text] of [
        [["--trace-enabled"], "--trace-enabled needs --otlp-endpoint URL"],
        [["--log-destination", "file"], "--log-destination file needs --log-file FILE"],
        [
          ["--log-level", "loud"],
          "--log-level must be one of off, error, warn, info, debug, trace",
        ],
        [["--log-format", "xml"], "--log-format must be json or text"],
      ] as const
    ) {
      const out = await runCli([...args, "validate", "--flow", "flow.yaml"], { cwd: dir });
      assertEquals(out.code, 2, out.stderr);
      assertStringIncludes(out.stderr, text);
    }
  });
});

Deno.test("withEnv(): flags win over STEPFLOW_* variables; booleans read as 0.8 does", () => {
  const env: Record<string, string> = {
    STEPFLOW_LOG_LEVEL: "debug",
    STEPFLOW_LOG_FORMAT: "json",
    STEPFLOW_TRACE_ENABLED: "true",
  };
  assertEquals(withEnv({ logLevel: "error" }, (n) => env[n]), {
    logLevel: "error",
    logFormat: "json",
    traceEnabled: true,
  });
});

Deno.test("applyGlobalFlags() rejects --log-destination otlp with --log-file, as 0.8", () => {
  let threw = false;
  try {
    applyGlobalFlags(
      { logDestination: "otlp", logFile: "x.log", otlpEndpoint: "http://x:4317" },
      () => {},
    );
  } catch (e) {
    threw = e instanceof UsageError && e.message.includes("cannot be used with --log-file");
  }
  assert(threw);
});

Deno.test("formatLogLine(): text and JSON layouts", () => {
  const at = new Date("2025-01-02T03:04:05.678Z");
  try {
    assertEquals(formatLogLine("warn", "peer", "x"), "[warn] peer: x");
    setLogFormat("json");
    assertEquals(
      formatLogLine("debug", "peer", 'say "hi"', at),
      '{"timestamp":"2025-01-02T03:04:05.678Z","level":"DEBUG","target":"peer","message":"say \\"hi\\""}',
    );
  } finally {
    setLogFormat("text");
  }
});

Deno.test("JSON log lines are redacted before they are formatted (a secret with a quote stays hidden)", () => {
  const lines: string[] = [];
  const prev = setLogSink((l) => lines.push(l));
  const secret = 'pa"ss-1234';
  const stop = redactLogs({ redact: (t) => t.split(secret).join("[REDACTED]") });
  setLogFormat("json");
  try {
    logger("w").warn(`token ${secret} refused`);
  } finally {
    setLogFormat("text");
    stop();
    setLogSink(prev);
  }
  assertEquals(JSON.parse(lines[0]).message, "token [REDACTED] refused");
});
