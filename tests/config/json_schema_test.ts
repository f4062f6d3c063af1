import { Ajv2020 } from "ajv/dist/2020.js";
import { schemaTexts } from "../../src/config/json_schema.ts";
import { parseDocument } from "../../src/core/document.ts";
import { stringifyJson } from "../../src/json/exact_json.ts";
import { assert } from "../_assert.ts";
import { conformanceConfigs, conformanceFlows, conformanceTest } from "../_conformance.ts";
import { ownConfigs, ownFlows } from "../_own_flows.ts";

const SCHEMAS = new URL("../../schemas/", import.meta.url);

async function validator(name: string) {
  const schema = JSON.parse(await Deno.readTextFile(new URL(`${name}.json`, SCHEMAS)));
  const ajv = new Ajv2020({ strict: false });
  return { ajv, validate: ajv.compile(schema) };
}

async function plainDocument(path: string): Promise<unknown> {
  const { value } = parseDocument(await Deno.readTextFile(path), "yaml", path);
  return JSON.parse(stringifyJson(value));
}

Deno.test("schemas/flow.json and schemas/config.json match the zod models (regenerate: deno task schemas)", async () => {
  const texts = schemaTexts();
  for (const name of ["flow", "config"] as const) {
    const onDisk = await Deno.readTextFile(new URL(`${name}.json`, SCHEMAS));
    assert(
      onDisk === texts[name],
      `schemas/${name}.json is out of date: run \`deno task schemas\``,
    );
  }
});

conformanceTest("schemas/flow.json accepts every conformance flow", async () => {
  const { ajv, validate } = await validator("flow");
  for (const f of await conformanceFlows()) {
    assert(validate(await plainDocument(f)), `${f}: ${ajv.errorsText(validate.errors)}`);
  }
});

conformanceTest(
  "schemas/config.json accepts every conformance config (mock behaviors as mappings)",
  async () => {
    const { ajv, validate } = await validator("config");
    for (const f of await conformanceConfigs()) {
      assert(validate(await plainDocument(f)), `${f}: ${ajv.errorsText(validate.errors)}`);
    }
  },
);

Deno.test("schemas/flow.json accepts every flow of the project's suite and examples, rejects broken ones", async () => {
  const { ajv, validate } = await validator("flow");
  for (const f of await ownFlows()) {
    assert(validate(await plainDocument(f)), `${f}: ${ajv.errorsText(validate.errors)}`);
  }
  const bad = [
    { steps: [] },
    { schema: "https://stepflow.org/schemas/v1/flow.json", steps: [{ id: "a" }] },
    {
      schema: "https://stepflow.org/schemas/v1/flow.json",
      steps: [{ id: "a", component: "/x", onError: { action: "stop" } }],
    },
  ];
  for (const b of bad) assert(!validate(b), `should be rejected: ${JSON.stringify(b)}`);
});

Deno.test("schemas/config.json accepts every config of the project's suite and examples (mock behaviors as mappings)", async () => {
  const { ajv, validate } = await validator("config");
  for (const f of await ownConfigs()) {
    assert(validate(await plainDocument(f)), `${f}: ${ajv.errorsText(validate.errors)}`);
  }
  assert(!validate({ plugins: { p: { type: "nope" } } }), "unknown plugin type");
  assert(!validate({ routes: {} }), "plugins is required");
});
