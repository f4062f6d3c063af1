/**
 * The config model of src/config/model.ts written with the zod-free parsers of
 * src/core/fast_shape.ts (issue 17, goal 5: cold start): a common valid config is read without
 * loading zod; what it declines (`openai` settings, raw numbers, anything wrong) the zod model
 * reads. The key lists here are the ones the config validator knows (src/config/validate.ts);
 * tests/flow/fast_shape_test.ts checks them, and the output, against the zod model.
 * @module
 */
import {
  bool,
  byKey,
  decline,
  int,
  json,
  list,
  literal,
  object,
  oneOf,
  opt,
  record,
  req,
  str,
  withDefault,
} from "../core/fast_shape.ts";
import { fastDuration } from "../flow/fast_model.ts";

const stringMap = record(str);
const positive = int(1);

/** `MockComponentSchema`. */
export const fastMockComponent = object({
  description: opt(str),
  input_schema: opt(json),
  output_schema: opt(json),
  behaviors: withDefault(list(object({ input: req(json), result: req(json) })), () => []),
});

const workerFields = {
  command: opt(str),
  args: withDefault(list(str), () => []),
  env: withDefault(stringMap, () => ({})),
  url: opt(str),
  timeout: opt(fastDuration),
  maxConcurrency: opt(positive),
};

/** `PluginConfigSchema`. */
export const fastPluginConfig = byKey("type", {
  // a builtin plugin with `openai` settings is left to zod
  builtin: object({ type: req(literal("builtin")), openai: opt(decline) }),
  stepflow: object({
    type: req(literal("stepflow")),
    transport: withDefault(oneOf("stdio", "http"), () => "stdio"),
    ...workerFields,
    restartDelay: opt(fastDuration),
    maxRestartDelay: opt(fastDuration),
    maxRestarts: opt(int(0)),
    closeGrace: opt(fastDuration),
  }),
  mcp: object({
    type: req(literal("mcp")),
    ...workerFields,
    output: opt(oneOf("content", "structured", "result")),
  }),
  mock: object({
    type: req(literal("mock")),
    components: withDefault(record(fastMockComponent), () => ({})),
  }),
});

/** `RouteConditionSchema`. */
export const fastRouteCondition = object({ path: req(str), value: req(json) });

/** `RouteRuleSchema`. */
export const fastRouteRule = object({
  plugin: req(str),
  conditions: opt(list(fastRouteCondition)),
  componentAllow: opt(list(str)),
  componentDeny: opt(list(str)),
  component: opt(str),
});

/** `StateStoreConfigSchema`. */
export const fastStateStore = byKey("type", {
  inMemory: object({
    type: req(literal("inMemory")),
    maxFinishedRuns: opt(positive),
    maxFinishedSteps: opt(positive),
    maxFinishedAge: opt(fastDuration),
    maxFlows: opt(positive),
  }),
  sqlite: object({
    type: req(literal("sqlite")),
    databaseUrl: req(str),
    autoMigrate: withDefault(bool, () => true),
    maxConnections: opt(positive),
  }),
  postgres: object({
    type: req(literal("postgres")),
    url: req(str),
    autoMigrate: withDefault(bool, () => true),
    maxConnections: opt(positive),
    leaseTtl: opt(fastDuration),
  }),
});

/** `ConfigSchema`. */
export const fastConfig = object({
  workingDirectory: opt(str),
  plugins: req(record(fastPluginConfig)),
  routes: withDefault(record(list(fastRouteRule)), () => ({})),
  stateStore: withDefault(fastStateStore, () => ({ type: "inMemory" })),
  maxConcurrency: opt(positive),
  runTimeout: opt(fastDuration),
  maxOutputSize: opt(positive),
  maxNestedRuns: opt(positive),
  maxRunSteps: opt(positive),
});
