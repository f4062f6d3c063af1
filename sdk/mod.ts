/**
 * The Stepflow TypeScript SDK: write step services (workers) whose components a Stepflow engine
 * runs over stdio or HTTP (stepflow 0.8 protocol, see docs/protocol.md).
 *
 * @example
 * ```ts ignore
 * import { StepflowServer } from "@stepflow/engine/sdk";
 * import { z } from "zod";
 *
 * const server = new StepflowServer({ name: "text" });
 * server.component({
 *   name: "word_count",
 *   description: "Counts the words of a text",
 *   input: z.object({ text: z.string() }),
 *   output: z.object({ words: z.number() }),
 *   handler: ({ text }) => ({ words: text.split(/\s+/).filter(Boolean).length }),
 * });
 * await server.run(); // stdio; `--http --port 8080` for HTTP
 * ```
 * @module
 */
export { type ComponentDefinition, StepflowServer, type StepflowServerOptions } from "./server.ts";
export { Context, EngineError, type FlowResult, type Observability } from "./context.ts";
export { ComponentError } from "./errors.ts";
export { type HttpServeOptions, type HttpWorkerServer } from "./http.ts";
export { type SchemaLike } from "./schema.ts";
