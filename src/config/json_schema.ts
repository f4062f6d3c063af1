/**
 * Generates the JSON Schemas of flow files (schemas/flow.json) and config files
 * (schemas/config.json) from the zod models, for editors (YAML language server `$schema`
 * comments, VS Code `json.schemas`) and CI. Custom types (JSON values, templates) become `{}`.
 *
 * The config schema describes the *file*: mock `behaviors` are a mapping from input to result
 * (YAML complex keys) or this engine's `[{input, result}]` list. Keys unknown to the model are
 * allowed, as in stepflow 0.8 (`stepflow validate` warns about them instead).
 *
 * A test (tests/config/json_schema_test.ts) fails when the checked-in files drift; regenerate them
 * with `deno task schemas`.
 * @module
 */
import { z } from "zod";
import {
  DurationSchema,
  ErrorActionSchema,
  ExampleSchema,
  FLOW_SCHEMA_URL,
  FlowSchema,
  StepSchema,
  TestCaseSchema,
  TestConfigSchema,
} from "../flow/model.ts";
import { JsonValueSchema } from "../json/schema.ts";
import {
  BuiltinPluginConfigSchema,
  ConfigSchema,
  McpPluginConfigSchema,
  MockBehaviorSchema,
  MockComponentSchema,
  MockPluginConfigSchema,
  RouteConditionSchema,
  RouteRuleSchema,
  StateStoreConfigSchema,
  StepflowPluginConfigSchema,
} from "./model.ts";

type Registry = ReturnType<typeof z.registry<{ id: string }>>;

function generate(
  root: z.ZodType,
  register: (reg: Registry) => void,
  meta: { id: string; title: string; description: string },
): Record<string, unknown> {
  const reg = z.registry<{ id: string }>();
  register(reg);
  reg.add(root, { id: meta.title });
  const { schemas } = z.toJSONSchema(reg, {
    target: "draft-2020-12",
    unrepresentable: "any",
    io: "input",
    uri: (id) => `#/$defs/${id}`,
    // zod leaves out the default of a schema holding a transform (fileNumber's preprocess) in
    // input mode; the default is still what a missing key means, so it is kept.
    override: (ctx) => {
      const def = (ctx.zodSchema as unknown as { _zod: { def: Record<string, unknown> } })._zod.def;
      if (def.type === "default" && !("default" in ctx.jsonSchema)) {
        const rest = { ...ctx.jsonSchema };
        for (const k of Object.keys(rest)) delete (ctx.jsonSchema as Record<string, unknown>)[k];
        Object.assign(
          ctx.jsonSchema,
          { default: JSON.parse(JSON.stringify(def.defaultValue)) },
          rest,
        );
      }
    },
  });
  const defs: Record<string, unknown> = {};
  for (const [id, s] of Object.entries(schemas)) {
    const { $schema: _s, $id: _i, ...rest } = s as Record<string, unknown>;
    defs[id] = rest;
  }
  const top = defs[meta.title] as Record<string, unknown>;
  delete defs[meta.title];
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    $id: meta.id,
    title: meta.title,
    description: meta.description,
    ...top,
    $defs: defs,
  };
}

/** The JSON Schema (draft 2020-12) of a flow file. */
export function flowJsonSchema(): Record<string, unknown> {
  return generate(FlowSchema, (reg) => {
    reg.add(StepSchema, { id: "Step" });
    reg.add(ErrorActionSchema, { id: "ErrorAction" });
    reg.add(TestConfigSchema, { id: "TestConfig" });
    reg.add(TestCaseSchema, { id: "TestCase" });
    reg.add(ExampleSchema, { id: "Example" });
    reg.add(DurationSchema, { id: "Duration" });
  }, {
    id: FLOW_SCHEMA_URL,
    title: "Flow",
    description:
      "A Stepflow flow (stepflow 0.8 format v1). Generated from src/flow/model.ts; do not edit.",
  });
}

/** Mock components as written in files: `behaviors` maps inputs to results, or is a list. */
const MockComponentFileSchema = MockComponentSchema.extend({
  behaviors: z.union([
    z.record(z.string(), JsonValueSchema).describe(
      "Input → result. In YAML the key is the input value itself (a complex key such as " +
        '`{ input: "a" }:`); in JSON the key string is the input.',
    ),
    z.array(MockBehaviorSchema),
  ]).optional(),
});

const MockPluginFileSchema = MockPluginConfigSchema.extend({
  components: z.record(z.string(), MockComponentFileSchema).optional(),
});

const PluginFileSchema = z.discriminatedUnion("type", [
  BuiltinPluginConfigSchema,
  StepflowPluginConfigSchema,
  McpPluginConfigSchema,
  MockPluginFileSchema,
]);

const ConfigFileSchema = ConfigSchema.extend({
  plugins: z.record(z.string(), PluginFileSchema),
});

/** The JSON Schema (draft 2020-12) of a `stepflow-config.yml` file. */
export function configJsonSchema(): Record<string, unknown> {
  return generate(ConfigFileSchema, (reg) => {
    reg.add(BuiltinPluginConfigSchema, { id: "BuiltinPlugin" });
    reg.add(StepflowPluginConfigSchema, { id: "StepflowPlugin" });
    reg.add(McpPluginConfigSchema, { id: "McpPlugin" });
    reg.add(MockPluginFileSchema, { id: "MockPlugin" });
    reg.add(MockComponentFileSchema, { id: "MockComponent" });
    reg.add(MockBehaviorSchema, { id: "MockBehavior" });
    reg.add(RouteRuleSchema, { id: "RouteRule" });
    reg.add(RouteConditionSchema, { id: "RouteCondition" });
    reg.add(StateStoreConfigSchema, { id: "StateStore" });
    reg.add(DurationSchema, { id: "Duration" });
  }, {
    id: "https://stepflow.org/schemas/v1/config.json",
    title: "Config",
    description:
      "A Stepflow config file (stepflow-config.yml, stepflow 0.8 compatible). Generated from src/config/model.ts; do not edit.",
  });
}

/** The texts of schemas/flow.json and schemas/config.json (2-space indent, trailing newline). */
export function schemaTexts(): { flow: string; config: string } {
  return {
    flow: JSON.stringify(flowJsonSchema(), null, 2) + "\n",
    config: JSON.stringify(configJsonSchema(), null, 2) + "\n",
  };
}

if (import.meta.main) {
  const texts = schemaTexts();
  for (const [name, text] of Object.entries(texts)) {
    const path = new URL(`../../schemas/${name}.json`, import.meta.url);
    await Deno.writeTextFile(path, text);
    console.error(`wrote ${path.pathname}`);
  }
}
