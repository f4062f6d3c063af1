/**
 * MCP plugin faults, with the fixture server of tests/fixtures/mcp/fault_server.ts: a missing
 * binary, a server that exits at start or mid-call, junk on stdout, timeouts and cancellation,
 * restart on the next call, concurrency, and no process left behind.
 * @module
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../../_assert.ts";
import {
  faultConfig,
  noEngine,
  processExists,
  recordingLogger,
  startPlugin,
  stepCtx,
} from "./_helpers.ts";
import { McpPlugin } from "../../../src/plugins/mcp/plugin.ts";
import { McpPluginConfigSchema } from "../../../src/config/model.ts";
import { REPO_ROOT } from "../../_assert.ts";
import { MCP_ERROR_CODES } from "../../../src/plugins/mcp/plugin.ts";
import type { FlowResult } from "../../../src/core/flow_result.ts";
import { describeError, PluginError } from "../../../src/errors.ts";
import { parseJson, stringifyJson } from "../../../src/json/exact_json.ts";

function errorOf(r: FlowResult) {
  if (r.outcome !== "failed") throw new Error(`expected failed, got ${JSON.stringify(r)}`);
  return r.error;
}

function textOf(r: FlowResult): string {
  if (r.outcome !== "success") throw new Error(`expected success, got ${JSON.stringify(r)}`);
  return (r.result as { text: string }[])[0].text;
}

Deno.test("McpPlugin: a missing binary fails the step with ENOENT and the plugin name", async () => {
  await using s = await startPlugin({ type: "mcp", command: "no-such-mcp-server-xyz" }, "ghost");
  assertStringIncludes(s.log.lines.join("\n"), "not found (ENOENT)");
  for (let i = 0; i < 2; i++) { // each call tries again, and fails the same way
    const e = errorOf(await s.plugin.execute("/anything", {}, stepCtx()));
    assertEquals(e.code, MCP_ERROR_CODES.unavailable);
    assertStringIncludes(e.message, "MCP plugin 'ghost': server 'no-such-mcp-server-xyz' failed");
    assertStringIncludes(e.message, "cannot start 'no-such-mcp-server-xyz': not found (ENOENT)");
  }
  let thrown: unknown;
  await s.plugin.listComponents().catch((e) => thrown = e);
  assert(thrown instanceof PluginError, "listComponents should throw a PluginError");
});

Deno.test("McpPlugin: a server that exits at start fails the step with its exit code and stderr", async () => {
  await using s = await startPlugin(faultConfig("exit-at-start"), "early");
  const e = errorOf(await s.plugin.execute("/echo", { text: "x" }, stepCtx()));
  assertEquals(e.code, MCP_ERROR_CODES.unavailable);
  assertStringIncludes(e.message, "MCP plugin 'early': server '");
  assertStringIncludes(
    e.message,
    "exited with code 3 during the handshake; stderr: fatal: config missing",
  );
});

Deno.test("McpPlugin: a program that is not an MCP server is reported with what it wrote", async () => {
  await using s = await startPlugin(faultConfig("not-mcp"), "notmcp");
  const e = errorOf(await s.plugin.execute("/echo", { text: "x" }, stepCtx()));
  assertEquals(e.code, MCP_ERROR_CODES.unavailable);
  assertStringIncludes(e.message, "exited with code 0 during the handshake");
  assertStringIncludes(e.message, `non-JSON on stdout`);
  assertStringIncludes(e.message, `"hello, I am not an MCP server"`);
});

Deno.test("McpPlugin: a failing server's start warnings are logged once, however often it is started again", async () => {
  // was: the junk-line warning printed at the start in init and again at every call's restart
  await using s = await startPlugin(faultConfig("not-mcp"), "notmcp");
  for (let i = 0; i < 3; i++) {
    const e = errorOf(await s.plugin.execute("/echo", { text: "x" }, stepCtx()));
    assertStringIncludes(e.message, `"hello, I am not an MCP server"`);
  }
  await s.plugin.listComponents().catch(() => {});
  const warns = s.log.lines.filter((l) => l.startsWith("[warn]"));
  const junk = warns.filter((l) => l.includes("non-JSON-RPC line on stdout ignored"));
  assertEquals(junk.length, 1, warns.join("\n"));
  const failed = warns.filter((l) => l.includes("failed to start"));
  assertEquals(failed.length, 1, warns.join("\n"));
  // the failure reads in words, without the SDK's "MCP error -32000: Connection closed" after it
  let thrown: unknown;
  await s.plugin.listComponents().catch((e) => thrown = e);
  assert(thrown instanceof PluginError);
  assert(!describeError(thrown).includes("-32000"), describeError(thrown));
});

Deno.test("McpPlugin: a server that exits mid-call fails that step; the next call restarts it", async () => {
  await using s = await startPlugin(faultConfig(), "crashy");
  const pid1 = textOf(await s.plugin.execute("/pid", {}, stepCtx()));
  const e = errorOf(await s.plugin.execute("/crash", {}, stepCtx()));
  assertEquals(e.code, MCP_ERROR_CODES.unavailable);
  assertStringIncludes(e.message, "tool 'crash' of MCP plugin 'crashy' failed: the server '");
  assertStringIncludes(e.message, "exited with code 7; stderr: crashing on purpose");
  const pid2 = textOf(await s.plugin.execute("/pid", {}, stepCtx()));
  assert(pid1 !== pid2, "expected a new server process");
  assert(!processExists(Number(pid1)), "the crashed server must be reaped");
  assertStringIncludes(s.log.lines.join("\n"), "it will be started again on the next call");
});

Deno.test("McpPlugin: calls in flight when the server dies all fail; later calls succeed", async () => {
  await using s = await startPlugin(faultConfig(), "crashy");
  const hanging = Array.from({ length: 5 }, () => s.plugin.execute("/hang", {}, stepCtx()));
  const crash = s.plugin.execute("/crash", {}, stepCtx());
  for (const r of await Promise.all([...hanging, crash])) {
    assertStringIncludes(errorOf(r).message, "exited with code 7");
  }
  assertEquals(textOf(await s.plugin.execute("/echo", { text: "back" }, stepCtx())), "back");
});

Deno.test("McpPlugin: a non-JSON banner on stdout is logged and skipped", async () => {
  await using s = await startPlugin(faultConfig("junk-banner"), "chatty");
  assertEquals(textOf(await s.plugin.execute("/echo", { text: "fine" }, stepCtx())), "fine");
  assertStringIncludes(
    s.log.lines.join("\n"),
    `[warn] non-JSON-RPC line on stdout ignored: "Server starting..."`,
  );
});

Deno.test("McpPlugin: junk instead of a response fails the step at its timeout, showing the junk", async () => {
  await using s = await startPlugin(faultConfig("ok", { timeout: "300ms" }), "junky");
  const e = errorOf(await s.plugin.execute("/junk", {}, stepCtx()));
  assertEquals(e.code, MCP_ERROR_CODES.timeout);
  assertStringIncludes(e.message, "tool 'junk' of MCP plugin 'junky' timed out after 300 ms");
  assertStringIncludes(e.message, `non-JSON on stdout`);
  assertStringIncludes(e.message, `"this is not JSON"`);
});

Deno.test("McpPlugin: a call times out after the plugin timeout, or the step's when set", async () => {
  await using s = await startPlugin(faultConfig("ok", { timeout: "200ms" }), "slow");
  const e = errorOf(await s.plugin.execute("/hang", {}, stepCtx()));
  assertEquals(e.code, MCP_ERROR_CODES.timeout);
  assertStringIncludes(e.message, "tool 'hang' of MCP plugin 'slow' timed out after 200 ms");
  // a per-step timeout wins over the plugin's 200 ms
  const r = await s.plugin.execute(
    "/progress",
    { count: 1, everyMs: 400 },
    stepCtx({ timeoutMs: 5000 }),
  );
  assertEquals(textOf(r), "done");
});

Deno.test("McpPlugin: a timed-out call is cancelled with notifications/cancelled", async () => {
  await using s = await startPlugin(
    faultConfig("ok", { timeout: "200ms", output: "structured" }),
    "slow",
  );
  errorOf(await s.plugin.execute("/hang", {}, stepCtx()));
  const r = await s.plugin.execute("/cancelled", {}, stepCtx());
  assert(r.outcome === "success");
  const ids = (r.result as { ids: unknown[] }).ids;
  assertEquals(ids.length, 1);
});

Deno.test("McpPlugin: progress notifications extend a short timeout", async () => {
  await using s = await startPlugin(faultConfig("ok", { timeout: "300ms" }), "prog");
  // 8 notifications 60 ms apart: 480 ms in all, never 300 ms without news
  const r = await s.plugin.execute("/progress", { count: 8, everyMs: 60 }, stepCtx());
  assertEquals(textOf(r), "done");
});

Deno.test("McpPlugin: an aborted step signal cancels the call", async () => {
  await using s = await startPlugin(faultConfig("ok", { output: "structured" }), "abort");
  const ac = new AbortController();
  const p = s.plugin.execute("/hang", {}, stepCtx({ signal: ac.signal }));
  // the server reads lines in order: once echo is answered, it has the hang call
  assertEquals(textOf(await s.plugin.execute("/echo", { text: "x" }, stepCtx())), "x");
  ac.abort(new Error("run cancelled"));
  const e = errorOf(await p);
  assertEquals(e.code, MCP_ERROR_CODES.cancelled);
  assertEquals(e.message, "Tool 'hang' of MCP plugin 'abort' was cancelled: run cancelled");
  const r = await s.plugin.execute("/cancelled", {}, stepCtx());
  assert(r.outcome === "success");
  assertEquals((r.result as { ids: unknown[] }).ids.length, 1);
});

Deno.test("McpPlugin: 20 calls are in flight on one server at once", async () => {
  await using s = await startPlugin(faultConfig(), "par");
  // each barrier call answers only once all 20 are open on the server at the same time
  const rs = await Promise.all(
    Array.from({ length: 20 }, () => s.plugin.execute("/barrier", { n: 20 }, stepCtx())),
  );
  for (const r of rs) assertEquals(textOf(r), "released");
});

Deno.test("McpPlugin: maxConcurrency bounds the calls in flight", async () => {
  await using s = await startPlugin(faultConfig("ok", { maxConcurrency: 2 }), "lim");
  const rs = await Promise.all(
    Array.from({ length: 8 }, () => s.plugin.execute("/inflight", {}, stepCtx())),
  );
  const most = Math.max(...rs.map((r) => Number(textOf(r))));
  assert(
    most >= 1 && most <= 2,
    `expected at most 2 calls open at once on the server, saw ${most}`,
  );
});

Deno.test("McpPlugin: a step aborted while waiting for a maxConcurrency slot is cancelled", async () => {
  await using s = await startPlugin(faultConfig("ok", { maxConcurrency: 1 }), "lim");
  const busy = new AbortController();
  const hang = s.plugin.execute("/hang", {}, stepCtx({ signal: busy.signal }));
  const waiting = new AbortController();
  const queued = s.plugin.execute("/pid", {}, stepCtx({ signal: waiting.signal }));
  waiting.abort(new Error("run cancelled"));
  const e = errorOf(await queued);
  assertEquals(e.code, MCP_ERROR_CODES.cancelled);
  busy.abort(new Error("done"));
  assertEquals(errorOf(await hang).code, MCP_ERROR_CODES.cancelled);
});

Deno.test("McpPlugin: a result that breaks the MCP schema fails the step", async () => {
  await using s = await startPlugin(faultConfig(), "odd");
  const e = errorOf(await s.plugin.execute("/bad-result", {}, stepCtx()));
  assertEquals(e.code, MCP_ERROR_CODES.toolError);
  assertStringIncludes(
    e.message,
    "tool 'bad-result' of MCP plugin 'odd' returned an invalid result",
  );
  // the server is fine for the next call
  assertEquals(textOf(await s.plugin.execute("/echo", { text: "ok" }, stepCtx())), "ok");
});

Deno.test("McpPlugin: an answer that is not UTF-8 fails the step at once, not changed to U+FFFD", async () => {
  await using s = await startPlugin(faultConfig(), "odd");
  const e = errorOf(await s.plugin.execute("/latin1", {}, stepCtx()));
  assertStringIncludes(e.message, "the answer is not UTF-8 text (an invalid byte at offset");
  assert(!JSON.stringify(e).includes("\uFFFD"), JSON.stringify(e));
  // the server is fine for the next call
  assertEquals(textOf(await s.plugin.execute("/echo", { text: "ok" }, stepCtx())), "ok");
});

Deno.test("McpPlugin: a JSON-RPC error from tools/call is a failed step (0.8's code and text)", async () => {
  await using s = await startPlugin(faultConfig(), "odd");
  const e = errorOf(await s.plugin.execute("/rpc-error", {}, stepCtx()));
  assertEquals(e, {
    code: 500,
    message: "Tool 'rpc-error' execution failed: MCP error -32000: disk on fire (MCP plugin 'odd')",
    data: { mcpCode: -32000 },
  });
});

Deno.test("McpPlugin: a tool the server does not have throws a PluginError listing the tools", async () => {
  await using s = await startPlugin(faultConfig(), "srv");
  let thrown: unknown;
  await s.plugin.execute("/nope", {}, stepCtx()).catch((e) => thrown = e);
  assert(thrown instanceof PluginError);
  assertMatch(
    (thrown as Error).message,
    /MCP plugin 'srv' has no tool 'nope'.*its tools: echo, pid/,
  );
});

Deno.test("McpPlugin: a non-object input fails before the call", async () => {
  await using s = await startPlugin(faultConfig(), "srv");
  const e = errorOf(await s.plugin.execute("/pid", "text", stepCtx()));
  assertEquals(e.code, MCP_ERROR_CODES.invalidInput);
});

Deno.test("McpPlugin.close() leaves no server process behind", async () => {
  const s = await startPlugin(faultConfig(), "srv");
  const pid = Number(textOf(await s.plugin.execute("/pid", {}, stepCtx())));
  assert(processExists(pid));
  const hanging = s.plugin.execute("/hang", {}, stepCtx());
  await s.plugin.close();
  assert(!processExists(pid), `server ${pid} still running after close()`);
  assertEquals((await hanging).outcome, "failed");
  await s.plugin.close(); // twice is fine
  const e = errorOf(await s.plugin.execute("/pid", {}, stepCtx()));
  assertStringIncludes(e.message, "the plugin is closed");
});

Deno.test("McpPlugin.close() during the server's start leaves no process behind", async () => {
  const token = crypto.randomUUID(); // an extra argument the fixture ignores, to find it in /proc
  const config = faultConfig("ok");
  const plugin = new McpPlugin(
    "early-close",
    McpPluginConfigSchema.parse({ ...config, args: [...config.args, token] }),
  );
  const init = plugin.init({
    name: "early-close",
    workingDirectory: REPO_ROOT,
    engine: noEngine,
    log: recordingLogger(),
  });
  await plugin.close();
  await init;
  await plugin.close();
  const left = [...Deno.readDirSync("/proc")].filter((e) => {
    if (!/^\d+$/.test(e.name)) return false;
    try {
      return Deno.readTextFileSync(`/proc/${e.name}/cmdline`).includes(token);
    } catch {
      return false;
    }
  });
  assertEquals(left.map((e) => e.name), []);
});

Deno.test("McpPlugin.close() returns when a grandchild keeps the server's pipes open", async () => {
  const s = await startPlugin(faultConfig("ok", { timeout: "5s" }), "srv");
  const grandchild = Number(textOf(await s.plugin.execute("/grandchild", {}, stepCtx())));
  const server = Number(textOf(await s.plugin.execute("/pid", {}, stepCtx())));
  try {
    await s.plugin.close();
    assert(!processExists(server), "the server itself is stopped");
  } finally {
    Deno.kill(grandchild, "SIGKILL");
  }
});

Deno.test("McpPlugin: numbers cross the MCP boundary exactly, both ways", async () => {
  await using s = await startPlugin(faultConfig("ok", { output: "result" }), "exact");
  const input = parseJson('{"big":9007199254740993,"f":15.0}');
  const r = await s.plugin.execute("/exact", input, stepCtx());
  assert(r.outcome === "success", JSON.stringify(r));
  const result = r.result as { content: { text: string }[]; structuredContent: unknown };
  assertStringIncludes(result.content[0].text, '"arguments":{"big":9007199254740993,"f":15.0}');
  assertEquals(stringifyJson(result.structuredContent), '{"big":9007199254740993,"f":15.0}');
});

Deno.test("McpPlugin: args get env substitution; an unset variable fails the start, naming it", async () => {
  Deno.env.set("STEPFLOW_MCP_TEST_MODE", "junk-banner");
  try {
    await using s = await startPlugin(
      {
        ...faultConfig("${STEPFLOW_MCP_TEST_MODE}"),
      },
      "subst",
    );
    assertEquals(textOf(await s.plugin.execute("/echo", { text: "y" }, stepCtx())), "y");
    assertStringIncludes(s.log.lines.join("\n"), "Server starting...");
  } finally {
    Deno.env.delete("STEPFLOW_MCP_TEST_MODE");
  }
  await using u = await startPlugin(faultConfig("${STEPFLOW_MCP_UNSET_XYZ}"), "unset");
  const e = errorOf(await u.plugin.execute("/echo", { text: "y" }, stepCtx()));
  assertStringIncludes(e.message, "STEPFLOW_MCP_UNSET_XYZ");
});

Deno.test("McpPlugin: a server that never answers its handshake fails the step at its timeout, and close() stops it at once", async () => {
  const token = `60.${Date.now()}`; // sleep's argument, to find the process in /proc
  const plugin = new McpPlugin(
    "silent",
    McpPluginConfigSchema.parse({ type: "mcp", command: "sleep", args: [token] }),
  );
  const log = recordingLogger();
  await using _ = { [Symbol.asyncDispose]: () => plugin.close() };
  const init = plugin.init({ name: "silent", workingDirectory: REPO_ROOT, engine: noEngine, log });
  const started = Date.now();
  const r = await plugin.execute("/echo", { text: "x" }, stepCtx({ timeoutMs: 300 }));
  assert(Date.now() - started < 5_000, `the step waited ${Date.now() - started} ms`);
  const e = errorOf(r);
  assertStringIncludes(e.message, "timed out after 300 ms: the server 'sleep");
  assertStringIncludes(e.message, "has not finished starting");
  const closing = Date.now();
  await plugin.close();
  await init;
  assert(Date.now() - closing < 5_000, `close() took ${Date.now() - closing} ms`);
  const left = [...Deno.readDirSync("/proc")].filter((d) => {
    try {
      return /^\d+$/.test(d.name) &&
        Deno.readTextFileSync(`/proc/${d.name}/cmdline`).includes(token);
    } catch {
      return false;
    }
  });
  assertEquals(left.map((d) => d.name), []);
  assertEquals(log.lines.filter((l) => l.includes("plugin is closing")), []);
});

Deno.test("McpPlugin: the plugin's timeout bounds a step's wait for a server still in its handshake", async () => {
  // docs/mcp.md: "a step with an explicit timeout (its own or the plugin's) waits for a server
  // still starting no longer than that". Before, only the step's own timeout did: with the
  // plugin's `timeout: 300ms` a step waited for the whole 30 s start handshake.
  const token = `61.${Date.now()}`;
  const plugin = new McpPlugin(
    "silent",
    McpPluginConfigSchema.parse({ type: "mcp", command: "sleep", args: [token], timeout: "300ms" }),
  );
  await using _ = { [Symbol.asyncDispose]: () => plugin.close() };
  const log = recordingLogger();
  const init = plugin.init({ name: "silent", workingDirectory: REPO_ROOT, engine: noEngine, log });
  const started = Date.now();
  const r = await plugin.execute("/echo", { text: "x" }, stepCtx());
  assert(Date.now() - started < 5_000, `the step waited ${Date.now() - started} ms`);
  assertStringIncludes(errorOf(r).message, "timed out after 300 ms: the server 'sleep");
  await plugin.close();
  await init;
});

Deno.test("McpPlugin: a tools/list answer that breaks the MCP schema is named in one line", async () => {
  // before: the SDK's zod issues as a multi-line JSON dump ("[\n  {\n    \"expected\": ...")
  await using started = await startPlugin(faultConfig("bad-tools-list"));
  const { plugin } = started;
  const e = errorOf(await plugin.execute("/echo", { text: "x" }, stepCtx()));
  assertStringIncludes(
    e.message,
    "its answer to 'tools/list' does not fit the MCP schema: tools: Invalid input: expected array",
  );
  assert(!e.message.includes("\n"), e.message);
});

Deno.test("McpPlugin: an answer over the output size limit fails with 413 and is not read to its end", async () => {
  // before: read and parsed whole (80 MB took 13 s and 590 MB), and refused only afterwards
  const plugin = new McpPlugin("srv", McpPluginConfigSchema.parse(faultConfig()));
  await using _ = { [Symbol.asyncDispose]: () => plugin.close() };
  await plugin.init({
    name: "srv",
    workingDirectory: REPO_ROOT,
    engine: noEngine,
    log: recordingLogger(),
    maxOutputBytes: 100_000,
  });
  const e = errorOf(await plugin.execute("/big", { n: 2_000_000 }, stepCtx()));
  assertEquals([e.code, (e.data as { kind: string }).kind], [413, "OUTPUT_TOO_LARGE"]);
  assertStringIncludes(e.message, "tool 'big' of MCP plugin 'srv' sent an answer of more than");
  assertStringIncludes(e.message, "not read to its end");
  // the server stays usable: the rest of the long line was skipped
  assertEquals(textOf(await plugin.execute("/echo", { text: "after" }, stepCtx())), "after");
  assertEquals(textOf(await plugin.execute("/big", { n: 1000 }, stepCtx())), "x".repeat(1000));
});
