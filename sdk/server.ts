/**
 * {@linkcode StepflowServer}: a registry of components and the protocol logic of a step
 * service (stepflow 0.8 §3.2, §13), independent of the transport. Serve it over stdio
 * ({@linkcode StepflowServer.serveStdio}) or HTTP ({@linkcode StepflowServer.serveHttp}), or
 * let {@linkcode StepflowServer.run} choose from the command line (`--http [--port N]`).
 * @module
 */
import type { z } from "zod";
import { type CompiledSchema, compileSchema, type SchemaLike, SchemaViolation } from "./schema.ts";
import { Context, type EngineCall, type MessageHandler, type Observability } from "./context.ts";
import { ComponentError } from "./errors.ts";
import {
  COMPONENT_NOT_FOUND,
  EXECUTION_ERROR,
  INVALID_PARAMS,
  METHOD_NOT_FOUND,
} from "../src/core/rpc_error_codes.ts";
import { describeError, ProtocolError } from "../src/errors.ts";
import { serveStdio } from "./stdio.ts";
import { type HttpServeOptions, type HttpWorkerServer, serveHttp } from "./http.ts";

/** A component definition. */
export interface ComponentDefinition<I = unknown, O = unknown> {
  /** Name; a leading `/` is added (`split` → `/split`). */
  name: string;
  /** One line saying what it does (listed by `components/list`). */
  description?: string;
  /** Input schema (zod or JSON Schema); the input is validated before `handler` runs. */
  input?: SchemaLike;
  /** Output schema (zod or JSON Schema); listed, not enforced. */
  output?: SchemaLike;
  /**
   * Whether the handler uses its {@linkcode Context} (over HTTP, only such components answer
   * with an SSE stream). @default true when `handler` declares a second parameter
   */
  context?: boolean;
  /** The work: resolves with the output (any JSON value). Throw {@linkcode ComponentError} to choose the code. */
  handler: (input: I, context: Context) => O | Promise<O>;
}

interface Registered {
  path: string;
  description?: string;
  input?: CompiledSchema;
  output?: CompiledSchema;
  usesContext: boolean;
  // deno-lint-ignore no-explicit-any
  handler: (input: any, context: Context) => unknown;
}

/** Options of a {@linkcode StepflowServer}. */
export interface StepflowServerOptions {
  /** Service name (reported by `GET /health`). @default "stepflow-worker" */
  name?: string;
}

/** A step service: components plus the protocol methods that reach them. */
export class StepflowServer implements MessageHandler {
  readonly name: string;
  readonly #components = new Map<string, Registered>();
  /** The same, as a list: see {@linkcode #find}. */
  readonly #list: Registered[] = [];
  /** True once `initialized` arrived (informational: not enforced, as in 0.8). */
  initialized = false;

  constructor(options: StepflowServerOptions = {}) {
    this.name = options.name ?? "stepflow-worker";
  }

  /**
   * Adds a component. With a zod `input` schema, `handler` gets the parsed value's type.
   * @throws {TypeError} on a duplicate name.
   */
  component<S extends z.ZodType, O>(
    def: ComponentDefinition<z.infer<S>, O> & { input: S },
  ): this;
  component<I = unknown, O = unknown>(def: ComponentDefinition<I, O>): this;
  component(def: ComponentDefinition): this {
    const path = def.name.startsWith("/") ? def.name : `/${def.name}`;
    if (this.#components.has(path)) throw new TypeError(`component ${path} is defined twice`);
    const c: Registered = {
      path,
      description: def.description,
      input: def.input ? compileSchema(def.input, "input") : undefined,
      output: def.output ? compileSchema(def.output, "output") : undefined,
      usesContext: def.context ?? def.handler.length >= 2,
      handler: def.handler,
    };
    this.#components.set(path, c);
    this.#list.push(c);
    return this;
  }

  /**
   * The component named `name` (a new string from each request): compared with the names of a
   * few components rather than hashed, which costs ~0.5 µs per new string in V8 (issue 17: a step's
   * round trip; see src/core/id_map.ts).
   */
  #find(name: string): Registered | undefined {
    const list = this.#list;
    if (list.length > 16) return this.#components.get(name);
    for (let i = 0; i < list.length; i++) if (list[i].path === name) return list[i];
    return undefined;
  }

  /** True if `components/execute` of `component` may call the engine (HTTP: answer with SSE). */
  usesContext(method: string, params: unknown): boolean {
    if (method !== "components/execute") return false;
    const c = (params as { component?: unknown } | undefined)?.component;
    return typeof c === "string" && (this.#find(c)?.usesContext ?? false);
  }

  /**
   * Answers one request from the engine.
   * @param call sends a request back to the engine (used by the component's context).
   * @returns the result object, or a promise of it when the component is asynchronous.
   * @throws {ProtocolError} (or rejects with it) with the JSON-RPC error to send: -32601 unknown method, -32001
   *   unknown component, -32602 invalid input (naming the field), -32003 the component threw
   *   (`Component execution failed: <message>`), or the {@linkcode ComponentError}'s code.
   */
  handle(method: string, params: unknown, call: EngineCall): unknown {
    const p = (params ?? {}) as Record<string, unknown>;
    switch (method) {
      case "initialize":
        return { server_protocol_version: 1 };
      case "components/list":
        return { components: [...this.#components.values()].map(info) };
      case "components/info": {
        return { info: info(this.#get(p.component)) };
      }
      case "components/execute": {
        const c = this.#get(p.component);
        let input = p.input;
        if (c.input) {
          try {
            input = c.input.validate(input);
          } catch (err) {
            if (err instanceof SchemaViolation) {
              throw new ProtocolError(
                INVALID_PARAMS,
                `Invalid input for component ${c.path}: ${err.message}`,
                { field: err.field, problem: err.problem },
              );
            }
            throw err;
          }
        }
        const ctx = new Context(
          call,
          (p.observability ?? {}) as Observability,
          typeof p.attempt === "number" ? p.attempt : 1,
        );
        // a synchronous handler is answered synchronously (no microtask hops on the hot path)
        let output: unknown;
        try {
          output = c.handler(input, ctx);
        } catch (err) {
          throw executionError(err);
        }
        if (output instanceof Promise) {
          return output.then((o) => ({ output: o === undefined ? null : o }), (err) => {
            throw executionError(err);
          });
        }
        return { output: output === undefined ? null : output };
      }
      default:
        throw new ProtocolError(METHOD_NOT_FOUND, `Method not found: '${method}'`);
    }
  }

  /** Handles a notification from the engine (`initialized`). */
  notify(method: string): void {
    if (method === "initialized") this.initialized = true;
  }

  /** Serves over stdin/stdout until stdin closes (see sdk/stdio.ts). */
  async serveStdio(): Promise<void> {
    await serveStdio(this);
  }

  /**
   * Serves over HTTP (see sdk/http.ts). Resolves once listening.
   * @returns the server; `addr.port` is the port (useful with port 0), `shutdown()` stops it.
   */
  serveHttp(options: HttpServeOptions = {}): Promise<HttpWorkerServer> {
    return serveHttp(this, options);
  }

  /**
   * Serves as the command line says: `--http [--port N] [--host H]` for HTTP (default port
   * 8080, host 127.0.0.1), stdio otherwise. HTTP mode prints `listening on http://H:P` to stderr.
   */
  async run(args: string[] = Deno.args): Promise<void> {
    if (!args.includes("--http")) return await this.serveStdio();
    const opt = (name: string) => {
      const i = args.indexOf(name);
      return i >= 0 ? args[i + 1] : undefined;
    };
    const server = await this.serveHttp({
      port: Number(opt("--port") ?? 8080),
      hostname: opt("--host") ?? "127.0.0.1",
    });
    await server.finished;
  }

  #get(component: unknown): Registered {
    const c = typeof component === "string" ? this.#find(component) : undefined;
    if (!c) {
      throw new ProtocolError(
        COMPONENT_NOT_FOUND,
        `Component ${JSON.stringify(component)} not found (known: ${
          [...this.#components.keys()].join(", ")
        })`,
      );
    }
    return c;
  }
}

/** A component's exception as the JSON-RPC error to answer with (0.8 Python SDK codes). */
function executionError(err: unknown): ProtocolError {
  if (err instanceof ComponentError) return new ProtocolError(err.code, err.message, err.data);
  if (err instanceof ProtocolError) return err;
  return new ProtocolError(
    EXECUTION_ERROR,
    `Component execution failed: ${err instanceof Error ? err.message : describeError(err)}`,
  );
}

function info(c: Registered) {
  return {
    component: c.path,
    description: c.description ?? null,
    input_schema: c.input?.jsonSchema ?? null,
    output_schema: c.output?.jsonSchema ?? null,
  };
}
