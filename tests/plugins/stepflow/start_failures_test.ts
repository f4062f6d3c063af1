/**
 * Step services that fail before the handshake: one clear line naming how the worker ended,
 * and a worker printing lines that are not JSON, stray responses or invalid messages does not
 * flood stderr.
 */
import {
  assert,
  assertStrictEquals,
  assertStringIncludes,
  runCli,
  withTempDir,
} from "../../_assert.ts";

const FLOW = `schema: https://stepflow.org/schemas/v1/flow.json
name: t
description: t
steps:
  - id: a
    component: /x/foo
    input: {}
    timeout: 2s
output: { $from: { step: a } }
`;

function runWith(plugin: string): Promise<{ code: number; stderr: string }> {
  return withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/flow.yaml`, FLOW);
    await Deno.writeTextFile(
      `${dir}/stepflow-config.yml`,
      `plugins:\n  x: ${plugin}\nroutes:\n  "/x/{*component}": [{ plugin: x }]\n`,
    );
    return await runCli(["run", "--flow", `${dir}/flow.yaml`, "--input-json", "{}"]);
  });
}

Deno.test("stdio plugin: a worker that exits before 'initialize' is named with its exit code and stderr", async () => {
  const r = await runWith(`{ type: stepflow, command: sh, args: [-c, "echo boom >&2; exit 3"] }`);
  assertStrictEquals(r.code, 1, r.stderr);
  assertStringIncludes(
    r.stderr,
    "step service 'x' exited with code 3 before answering 'initialize'; last stderr: boom",
  );
  assert(!r.stderr.includes("Broken pipe"), r.stderr);
  assert(!r.stderr.includes("restarts on the next call"), r.stderr);
  assertStrictEquals(r.stderr.trim().split("\n").length, 1, r.stderr);
});

Deno.test("stdio plugin: a worker printing non-JSON lines gets a few warnings, not one per line", async () => {
  // answers initialize after 40 garbage lines, then never answers the execute (timeout 2s)
  const script = [
    "import sys, json, time",
    "for _ in range(40): print('garbage', flush=True)",
    "m = json.loads(sys.stdin.readline())",
    "print(json.dumps({'jsonrpc': '2.0', 'id': m['id'], 'result': {'server_protocol_version': 1}}), flush=True)",
    "time.sleep(5)",
  ].join("\n");
  const r = await runWith(
    `{ type: stepflow, command: python3, args: [-c, ${JSON.stringify(script)}] }`,
  );
  const warnings = r.stderr.split("\n").filter((l) => l.includes("not JSON"));
  assert(warnings.length <= 6, `${warnings.length} warnings:\n${r.stderr}`);
  assertStringIncludes(r.stderr, "further ones are logged at debug level");
});

Deno.test("stdio plugin: a worker writing 2,000 stray responses and invalid messages gets a few warnings of each, not one per message", async () => {
  // answers every request, then, for the execute, 2,000 responses to calls never made and
  // 2,000 messages that are not JSON-RPC before its answer (stderr had a warning per message)
  const script = [
    "import sys, json",
    "for line in sys.stdin:",
    "    m = json.loads(line)",
    "    if m.get('method') == 'initialize':",
    "        print(json.dumps({'jsonrpc': '2.0', 'id': m['id'], 'result': {'server_protocol_version': 1}}), flush=True)",
    "    elif m.get('method') == 'components/execute':",
    "        for k in range(2000): print(json.dumps({'jsonrpc': '2.0', 'id': 'stray%d' % k, 'result': {}}))",
    "        for k in range(2000): print(json.dumps({'jsonrpc': '1.0', 'method': 'x'}))",
    "        print(json.dumps({'jsonrpc': '2.0', 'id': m['id'], 'result': {'output': {'ok': True}}}), flush=True)",
  ].join("\n");
  const r = await runWith(
    `{ type: stepflow, command: python3, args: [-c, ${JSON.stringify(script)}] }`,
  );
  assertStrictEquals(r.code, 0, r.stderr);
  const unknown = r.stderr.split("\n").filter((l) => l.includes("unknown id"));
  const invalid = r.stderr.split("\n").filter((l) => l.includes("invalid message"));
  assert(
    unknown.length <= 6 && invalid.length <= 6,
    `${unknown.length}, ${invalid.length}:\n${r.stderr}`,
  );
  assertStringIncludes(
    r.stderr,
    "more responses with unknown ids; further ones are logged at debug level",
  );
  assertStringIncludes(r.stderr, "more invalid messages; further ones are logged at debug level");
});
