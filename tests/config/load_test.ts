import { dirname, join } from "node:path";
import {
  configCandidates,
  defaultConfig,
  findConfig,
  findTestConfig,
  loadConfigFile,
  loadConfigForFlow,
  parseConfigValue,
} from "../../src/config/load.ts";
import type { MockPluginConfig } from "../../src/config/model.ts";
import { Router } from "../../src/config/router.ts";
import { FlowLoadError } from "../../src/errors.ts";
import { loadFlowText } from "../../src/flow/load.ts";
import { FLOW_SCHEMA_URL } from "../../src/flow/model.ts";
import type { DocumentSourceMap } from "../../src/core/document.ts";
import { type JsonValue, parseJson, stringifyJson } from "../../src/json/exact_json.ts";
import {
  assert,
  assertEquals,
  assertRejects,
  assertStrictEquals,
  assertThrows,
  withTempDir,
} from "../_assert.ts";
import { conformanceConfigs, conformanceTest } from "../_conformance.ts";
import { ownConfigs, SUITE_DIR } from "../_own_flows.ts";

const CONFIGS = new URL("../fixtures/configs/", import.meta.url);

function behaviors(config: { plugins: Record<string, unknown> }, plugin = "mock", comp = "/one") {
  return (config.plugins[plugin] as MockPluginConfig).components[comp].behaviors;
}

async function loadsEveryConfig(files: string[]) {
  for (const f of files) {
    const loaded = await loadConfigFile(f);
    assertStrictEquals(loaded.path, f);
    assertStrictEquals(loaded.workingDirectory, dirname(f));
    new Router(loaded.config);
  }
}

conformanceTest(
  "loadConfigFile() loads every conformance config and builds its router",
  async () => {
    const files = await conformanceConfigs();
    assert(files.length >= 5, `found ${files.length}`);
    await loadsEveryConfig(files);
  },
);

Deno.test("loadConfigFile() loads every config of the project's suite and examples and builds its router", async () => {
  const files = await ownConfigs();
  assert(files.length >= 8, `found ${files.length}`);
  await loadsEveryConfig(files);
});

Deno.test("loadConfigFile() reads the suite's mock behaviors keyed by YAML mappings", async () => {
  const { config } = await loadConfigFile(`${SUITE_DIR}/mock/stepflow-config.yml`);
  assertEquals(behaviors(config, "mock", "/describe").map((b) => b.input), [
    { value: "obrigado" },
    { value: null },
  ]);
  assertEquals(behaviors(config, "mock", "/translate")[2], {
    input: { text: "unknown word" },
    result: { outcome: "failed", error: { code: 42, message: "no translation" } },
  });
});

conformanceTest(
  "loadConfigFile() reads the conformance mock behaviors keyed by YAML mappings",
  async () => {
    const f = (await conformanceConfigs()).find((p) =>
      p.endsWith("tests/mock/stepflow-config.yml")
    );
    assert(f, "conformance mock config");
    const { config } = await loadConfigFile(f);
    const handleSkip = behaviors(config, "mock", "/handle_skip");
    assertEquals(handleSkip.map((b) => b.input), [
      { input: "it was skipped" },
      { input: "b" },
      { input: null },
    ]);
    assertEquals(behaviors(config, "mock", "/error")[0], {
      input: { mode: "error" },
      result: { outcome: "failed", error: { code: 8, message: "error" } },
    });
  },
);

Deno.test("loadConfigFile() turns complex, numeric, null and string keys into inputs", async () => {
  const { config } = await loadConfigFile(new URL("mock_complex_keys.yml", CONFIGS).pathname);
  const list = behaviors(config);
  // File order, although JS objects put the integer-like key 7 first.
  assertStrictEquals(
    stringifyJson(list.map((b) => b.input)),
    '[{"input":"a"},{"input":15.0},{"input":null},"plain",7]',
  );
  assertEquals(list[0].result, { outcome: "success", result: { output: "b" } });
  assertEquals(list[3].result, { error: "a plain string key" });
  assertEquals(config.stateStore, { type: "inMemory" });
});

Deno.test("loadConfigFile() uses JSON behavior keys as string inputs", async () => {
  const { config } = await loadConfigFile(new URL("mock_behaviors.json", CONFIGS).pathname);
  const list = behaviors(config);
  assertEquals(list.map((b) => b.input), ['{"input":"a"}', "hello"]);
  assertStrictEquals(stringifyJson(list[1].result), '{"outcome":"success","result":1.50}');
});

Deno.test("parseConfigValue() accepts behaviors as a list and resolves workingDirectory", () => {
  const loaded = parseConfigValue({
    workingDirectory: "sub",
    plugins: {
      mock: {
        type: "mock",
        components: { "/one": { behaviors: [{ input: 1, result: { outcome: "skipped" } }] } },
      },
    },
    routes: {},
  }, { workingDirectory: "/base" });
  assertStrictEquals(loaded.workingDirectory, "/base/sub");
  assertEquals(behaviors(loaded.config), [{ input: 1, result: { outcome: "skipped" } }]);
  const abs = parseConfigValue({ workingDirectory: "/abs", plugins: {} }, {
    workingDirectory: "/base",
  });
  assertStrictEquals(abs.workingDirectory, "/abs");
});

Deno.test("parseConfigValue() reads complex keys of a flow's test.config", () => {
  const loaded = loadFlowText(`schema: ${FLOW_SCHEMA_URL}
test:
  config:
    plugins:
      m:
        type: mock
        components:
          /c:
            behaviors:
              { x: 1 }:
                outcome: success
                result: 2
    routes: {}
`);
  const source = (loaded.source as DocumentSourceMap).at(["test", "config"]);
  const { config } = parseConfigValue(loaded.flow.test!.config!, {
    workingDirectory: "/flows",
    source,
  });
  assertEquals(behaviors(config, "m", "/c"), [{
    input: { x: 1 },
    result: { outcome: "success", result: 2 },
  }]);
});

Deno.test("parseConfigValue() reports shape errors with path and position", async () => {
  await withTempDir(async (dir) => {
    const f = join(dir, "stepflow-config.yml");
    await Deno.writeTextFile(f, "plugins:\n  p:\n    type: stepflow\n    args: nope\n");
    await assertRejects(
      () => loadConfigFile(f),
      FlowLoadError,
      `${f}:4:11: Invalid config: $.plugins.p.args: expected a list, got the string "nope"`,
    );
    assertThrows(
      () => parseConfigValue([], { workingDirectory: "/" }),
      FlowLoadError,
      "must be a mapping",
    );
    // a record (routes, plugins) is "a mapping" to the user, not "a record"
    assertThrows(
      () => parseConfigValue({ plugins: {}, routes: ["/x"] }, { workingDirectory: "/" }),
      FlowLoadError,
      "$.routes: expected a mapping, got a list",
    );
  });
});

Deno.test("defaultConfig() has the builtin plugin and no routes (0.8)", () => {
  const d = defaultConfig("/tmp");
  assertEquals(d.config.plugins, { builtin: { type: "builtin" } });
  assertEquals(d.config.routes, {});
  assertStrictEquals(d.workingDirectory, "/tmp");
  assertStrictEquals(d.path, undefined);
});

Deno.test("findConfig() and loadConfigForFlow() discover configs as 0.8 does", async () => {
  const root = await Deno.makeTempDir();
  try {
    const flows = join(root, "flows");
    const two = join(root, "two");
    await Deno.mkdir(flows);
    await Deno.mkdir(two);
    const cfg = "plugins: {builtin: {type: builtin}}\nroutes: {}\n";
    // Nothing anywhere → default config, working directory = the flow's directory.
    assertStrictEquals(await findConfig(join(flows, "f.yaml"), root), undefined);
    const dflt = await loadConfigForFlow({ flowPath: "flows/f.yaml", cwd: root });
    assertStrictEquals(dflt.path, undefined);
    assertStrictEquals(dflt.workingDirectory, flows);
    // One in cwd → used as a fallback.
    await Deno.writeTextFile(join(root, "stepflow_config.yaml"), cfg);
    assertStrictEquals(await findConfig("flows/f.yaml", root), join(root, "stepflow_config.yaml"));
    // One next to the flow → wins.
    await Deno.writeTextFile(join(flows, "stepflow-config.yml"), cfg);
    assertStrictEquals(await findConfig("flows/f.yaml", root), join(flows, "stepflow-config.yml"));
    const found = await loadConfigForFlow({ flowPath: "flows/f.yaml", cwd: root });
    assertStrictEquals(found.path, join(flows, "stepflow-config.yml"));
    // Two in one directory → error.
    await Deno.writeTextFile(join(two, "stepflow-config.yml"), cfg);
    await Deno.writeTextFile(join(two, "stepflow-config.yaml"), cfg);
    await assertRejects(
      () => findConfig(join(two, "f.yaml"), root),
      FlowLoadError,
      "Multiple stepflow config files found in directory",
    );
    // --config wins over discovery (relative to cwd).
    const explicit = await loadConfigForFlow({
      configPath: "two/stepflow-config.yml",
      flowPath: "flows/f.yaml",
      cwd: root,
    });
    assertStrictEquals(explicit.path, join(two, "stepflow-config.yml"));
    await assertRejects(
      () => loadConfigForFlow({ configPath: "missing.yml", cwd: root }),
      FlowLoadError,
      "no such file",
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("findTestConfig() finds stepflow-config.test.yml and its variants", async () => {
  await withTempDir(async (dir) => {
    assertStrictEquals(await findTestConfig(dir), undefined);
    await Deno.writeTextFile(join(dir, "stepflow_config.test.yaml"), "plugins: {}\n");
    assertStrictEquals(await findTestConfig(dir), join(dir, "stepflow_config.test.yaml"));
    await Deno.writeTextFile(join(dir, "stepflow-config.test.yml"), "plugins: {}\n");
    await assertRejects(() => findTestConfig(dir), FlowLoadError, "Multiple");
  });
});

Deno.test("configCandidates() lists the discovery probes in order", () => {
  assertEquals(configCandidates("flows/f.yaml", "/w"), [
    "/w/flows/stepflow-config.yml",
    "/w/flows/stepflow-config.yaml",
    "/w/flows/stepflow_config.yml",
    "/w/flows/stepflow_config.yaml",
    "/w/stepflow-config.yml",
    "/w/stepflow-config.yaml",
    "/w/stepflow_config.yml",
    "/w/stepflow_config.yaml",
  ]);
  assertEquals(configCandidates("f.yaml", "/w").length, 4, "same directory once");
});

Deno.test("findConfig() warns about unreadable probes when it finds nothing else", async () => {
  await withTempDir(async (dir) => {
    const script = join(dir, "probe.ts");
    await Deno.writeTextFile(
      script,
      `import { findConfig } from ${
        JSON.stringify(new URL("../../src/config/load.ts", import.meta.url).href)
      };
console.log(await findConfig(${JSON.stringify(join(dir, "f.yaml"))}, ${JSON.stringify(dir)}));
`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--no-prompt",
        "--config",
        new URL("../../deno.json", import.meta.url).pathname,
        script,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stderr);
    assert(text.includes("[warn] config: no readable config found"), text);
    assert(text.includes("permission denied"), text);
    assert(text.includes("--allow-read="), text);
    assertStrictEquals(new TextDecoder().decode(out.stdout), "undefined\n");
  });
});

Deno.test("parseConfigValue() reads integers written 4.0 or 1e1 as numbers", () => {
  const c = parseConfigValue(
    parseJson(
      '{"plugins":{"b":{"type":"stepflow","command":"w","maxConcurrency":4.0}},"routes":{},"maxConcurrency":1e1}',
    ) as JsonValue,
    { workingDirectory: "/" },
  );
  assertStrictEquals(c.config.maxConcurrency, 10);
  assertStrictEquals((c.config.plugins.b as { maxConcurrency?: number }).maxConcurrency, 4);
});
