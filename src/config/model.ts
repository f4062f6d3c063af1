/**
 * The stepflow 0.8 config model (`stepflow-config.yml`, §2), defined once as zod schemas.
 * Keys are camelCase as in 0.8, except mock components (`input_schema`, `output_schema`,
 * `behaviors`), as in 0.8. Unknown keys are ignored here; the config validator warns about them.
 * @module
 */
import { z } from "zod";
import { DurationSchema } from "../flow/model.ts";
import { fileNumber, JsonValueSchema } from "../json/schema.ts";

const StringMap = z.record(z.string(), z.string());

/**
 * Extension (issue 16): the OpenAI-compatible endpoint of the built-in `/openai` and `/chat`
 * components (docs/ai.md). String values may hold `${VAR}` / `${VAR:-default}` references,
 * substituted from the environment when the plugin starts.
 */
export const OpenAISettingsSchema = z.object({
  baseUrl: z.string().optional().describe(
    "Base URL of the OpenAI-compatible API, e.g. http://127.0.0.1:11434/v1 (Ollama). " +
      "Default: OPENAI_BASE_URL, else https://api.openai.com/v1.",
  ),
  apiKeyEnv: z.string().optional().describe(
    "Name of the environment variable holding the API key. Default: OPENAI_API_KEY.",
  ),
  model: z.string().optional().describe(
    "Default model of /chat and /openai (a step's model wins).",
  ),
  timeout: DurationSchema.optional().describe(
    "Limit on each HTTP request (ms, or a duration such as 30s). Default: 10 minutes.",
  ),
  headers: StringMap.optional().describe(
    "Extra HTTP headers sent with each request (e.g. for a gateway); values may use ${VAR}.",
  ),
}).describe("Extension: the OpenAI-compatible endpoint of /openai and /chat (docs/ai.md).");
export type OpenAISettings = z.infer<typeof OpenAISettingsSchema>;

/** `{type: builtin}`: the built-in components (§4); extension: `openai` settings. */
export const BuiltinPluginConfigSchema = z.object({
  type: z.literal("builtin"),
  openai: OpenAISettingsSchema.optional(),
});

/**
 * Where a worker process or server is, shared by step services and MCP plugins: `command` +
 * `args` + `env` for a child process on stdio, `url` for HTTP; and the per-plugin limits
 * (extensions, issue 5).
 */
const WORKER_FIELDS = {
  command: z.string().optional(),
  args: z.array(z.string()).default([]),
  env: StringMap.default({}),
  url: z.string().optional(),
  /** Extension: default timeout of each call (issue 5). */
  timeout: DurationSchema.optional(),
  /** Extension: most calls in flight at once on this plugin (issue 5). */
  maxConcurrency: fileNumber(z.number().int().positive()).optional(),
};

/**
 * `{type: stepflow}`: a step service. `transport: stdio` (default) spawns `command` + `args` with
 * only `env` in its environment (0.8); `transport: http` posts to `url`.
 */
export const StepflowPluginConfigSchema = z.object({
  type: z.literal("stepflow"),
  transport: z.enum(["stdio", "http"]).default("stdio"),
  ...WORKER_FIELDS,
  /** Extension (stdio): first delay before restarting a crashed worker; doubles. Default 1s (0.8). */
  restartDelay: DurationSchema.optional(),
  /** Extension (stdio): longest restart delay. Default 30s (0.8). */
  maxRestartDelay: DurationSchema.optional(),
  /** Extension (stdio): most consecutive restarts before calls fail for good. Default 5 (0.8). */
  maxRestarts: fileNumber(z.number().int().nonnegative()).optional(),
  /** Extension (stdio): time a worker gets to exit after its stdin closes at shutdown. Default 2s. */
  closeGrace: DurationSchema.optional(),
});
export type StepflowPluginConfig = z.infer<typeof StepflowPluginConfigSchema>;

/** `{type: mcp}`: an MCP server's tools (§5). `command`+`args` (stdio) or, extension, `url`. */
export const McpPluginConfigSchema = z.object({
  type: z.literal("mcp"),
  ...WORKER_FIELDS,
  /**
   * Extension: what a step gets from a tool result (docs/mcp.md): `content` (default, 0.8: the
   * `content` array), `structured` (`structuredContent` when returned, else `content`), `result`
   * (`{content, structuredContent?}`).
   */
  output: z.enum(["content", "structured", "result"]).optional(),
});
export type McpPluginConfig = z.infer<typeof McpPluginConfigSchema>;

/** One mock behavior: the exact step input it answers, and what it answers. */
export const MockBehaviorSchema = z.object({
  /** The whole resolved step input this behavior matches (JSON equality). */
  input: JsonValueSchema,
  /** A FlowResult, or `{error: "<text>"}` for a plugin error. */
  result: JsonValueSchema,
});
export type MockBehavior = z.infer<typeof MockBehaviorSchema>;

/**
 * A mock component. In files, `behaviors` is a mapping whose keys are input values (YAML complex
 * keys such as `{ input: "a" }:`); the config loader turns it into this list, in file order.
 */
export const MockComponentSchema = z.object({
  description: z.string().optional(),
  input_schema: JsonValueSchema.optional(),
  output_schema: JsonValueSchema.optional(),
  behaviors: z.array(MockBehaviorSchema).default([]),
});
export type MockComponent = z.infer<typeof MockComponentSchema>;

/** `{type: mock, components: {"/name": MockComponent}}`. */
export const MockPluginConfigSchema = z.object({
  type: z.literal("mock"),
  components: z.record(z.string(), MockComponentSchema).default({}),
});
export type MockPluginConfig = z.infer<typeof MockPluginConfigSchema>;

/** Any plugin config. */
export const PluginConfigSchema = z.discriminatedUnion("type", [
  BuiltinPluginConfigSchema,
  StepflowPluginConfigSchema,
  McpPluginConfigSchema,
  MockPluginConfigSchema,
]);
export type PluginConfig = z.infer<typeof PluginConfigSchema>;

/** A routing condition: the value at `path` in the resolved step input must equal `value`. */
export const RouteConditionSchema = z.object({ path: z.string(), value: JsonValueSchema });

/** One rule of a route (§2.3). */
export const RouteRuleSchema = z.object({
  plugin: z.string(),
  conditions: z.array(RouteConditionSchema).optional(),
  componentAllow: z.array(z.string()).optional(),
  componentDeny: z.array(z.string()).optional(),
  component: z.string().optional(),
});
export type RouteRule = z.infer<typeof RouteRuleSchema>;

/** State store (§2.4). */
export const StateStoreConfigSchema = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("inMemory"),
    /**
     * Extension (issue 17): most finished top-level runs kept; older ones are evicted with their
     * nested runs (default 1000).
     */
    maxFinishedRuns: fileNumber(z.number().int().positive()).optional(),
    /** Extension (issue 17): most step results kept over finished runs (default 100,000). */
    maxFinishedSteps: fileNumber(z.number().int().positive()).optional(),
    /** Extension (issue 17): finished runs older than this are evicted (default: no limit). */
    maxFinishedAge: DurationSchema.optional(),
    /**
     * Extension: most flows kept (default 1000); beyond it the flow stored or used longest ago
     * is evicted, unless a run the store holds uses it (`stepflow serve`'s `POST /flows`).
     */
    maxFlows: fileNumber(z.number().int().positive()).optional(),
  }),
  z.object({
    type: z.literal("sqlite"),
    databaseUrl: z.string(),
    autoMigrate: z.boolean().default(true),
    maxConnections: fileNumber(z.number().int().positive()).optional(),
  }),
  /**
   * Extension (issue 14): a PostgreSQL database shared by engines on many machines
   * (docs/deployment.md). `url` is `postgres://user:password@host:5432/database`; write the
   * password as `${PGPASSWORD}` to keep it out of the file.
   */
  z.object({
    type: z.literal("postgres"),
    url: z.string(),
    autoMigrate: z.boolean().default(true),
    /** Most connections of each engine's pool (default 10). */
    maxConnections: fileNumber(z.number().int().positive()).optional(),
    /**
     * How long a run's lease lasts without renewal (default 30s): a run whose engine stopped is
     * taken over by another engine this long after the engine's last heartbeat.
     */
    leaseTtl: DurationSchema.optional(),
  }),
]);
export type StateStoreConfig = z.infer<typeof StateStoreConfigSchema>;

/** The whole config file. */
export const ConfigSchema = z.object({
  workingDirectory: z.string().optional(),
  plugins: z.record(z.string(), PluginConfigSchema),
  routes: z.record(z.string(), z.array(RouteRuleSchema)).default({}),
  stateStore: StateStoreConfigSchema.default({ type: "inMemory" }),
  /** Extension: most steps in flight in one run (issue 5; CLI `--max-concurrency` wins). */
  maxConcurrency: fileNumber(z.number().int().positive()).optional(),
  /** Extension: a limit on each whole run (issue 5; CLI `--timeout` wins). */
  runTimeout: DurationSchema.optional(),
  /** Extension: largest step output in bytes of compact JSON (issue 5; default 64 MiB). */
  maxOutputSize: fileNumber(z.number().int().positive()).optional(),
  /**
   * Extension: most nested runs (eval, map items, iterate rounds, `flows/evaluate`, batch runs)
   * under one top-level run, at any depth (default 100,000); more stops the run with RUN_LIMIT.
   */
  maxNestedRuns: fileNumber(z.number().int().positive()).optional(),
  /**
   * Extension: most steps started by one top-level run and all its nested runs (default
   * 1,000,000); more stops the run with RUN_LIMIT.
   */
  maxRunSteps: fileNumber(z.number().int().positive()).optional(),
});
export type Config = z.infer<typeof ConfigSchema>;

/** A loaded config: the model plus where it came from. */
export interface LoadedConfig {
  config: Config;
  /** Absolute path of the file, or undefined for the default config. */
  path?: string;
  /** Absolute directory relative paths resolve against. */
  workingDirectory: string;
}
