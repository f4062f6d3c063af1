/**
 * The built-in plugin (`{type: builtin}`, stepflow 0.8 §4): `/create_messages`, `/openai`,
 * `/put_blob`, `/get_blob`, `/load_file`, `/eval`, `/map`, `/iterate`, and the `/chat`
 * extension. Components are named without a prefix; route them with e.g.
 * `"/builtin/{*component}": [{plugin: builtin}]`. The optional `openai` settings of the plugin's
 * config say which OpenAI-compatible endpoint `/openai` and `/chat` call (docs/ai.md).
 * @module
 */
import type { JsonValue } from "../../json/exact_json.ts";
import type { FlowResult } from "../../core/flow_result.ts";
import type { ComponentInfo, ExecuteContext, Plugin, PluginInitContext } from "../plugin.ts";
import { registerPluginType } from "../registry.ts";
import type { OpenAISettings } from "../../config/model.ts";
import type { BuiltinComponent, BuiltinEnv } from "./component.ts";
import { BuiltinError, builtinFailure } from "./_failure.ts";
import { createMessages } from "./create_messages.ts";
import { putBlob } from "./put_blob.ts";
import { getBlob } from "./get_blob.ts";
import { loadFile } from "./load_file.ts";
import { evalComponent } from "./eval.ts";
import { mapComponent } from "./map.ts";
import { iterateComponent } from "./iterate.ts";
import { openaiComponent } from "./openai.ts";
import { chatComponent } from "./chat.ts";
import { waitForComponent } from "./wait_for.ts";
import { resolveOpenAIDefaults } from "./openai_client.ts";

/** Every built-in component by name. */
export const BUILTIN_COMPONENTS: Map<string, BuiltinComponent> = new Map(
  [
    createMessages,
    openaiComponent,
    chatComponent,
    putBlob,
    getBlob,
    loadFile,
    evalComponent,
    mapComponent,
    iterateComponent,
    waitForComponent,
  ].map((c) => [c.info.component, c]),
);

/** The `builtin` plugin. */
export class BuiltinPlugin implements Plugin {
  readonly type = "builtin";
  /**
   * Built-ins change nothing outside the engine (blobs are content addressed; nested runs have
   * keys), except the model calls (`/chat`, `/openai`: an external API, another answer each time).
   */
  readonly replayable = (component: string): boolean =>
    component !== "/chat" && component !== "/openai";
  #env: BuiltinEnv = {
    workingDirectory: ".",
    openai: resolveOpenAIDefaults(undefined),
  };

  /** @param openai the config's `openai` settings (extension, docs/ai.md). */
  constructor(readonly name: string, readonly openai?: OpenAISettings) {}

  /** @throws {Error} for `openai` settings naming an unset variable or a bad URL. */
  init(ctx: PluginInitContext): Promise<void> {
    try {
      this.#env = {
        workingDirectory: ctx.workingDirectory,
        openai: resolveOpenAIDefaults(this.openai),
      };
    } catch (e) {
      return Promise.reject(e);
    }
    if (ctx.maxOutputBytes !== undefined) this.#env.maxOutputBytes = ctx.maxOutputBytes;
    return Promise.resolve();
  }

  listComponents(): Promise<ComponentInfo[]> {
    return Promise.resolve([...BUILTIN_COMPONENTS.values()].map((c) => c.info));
  }

  /**
   * Runs built-in `component`. Its errors (bad input, unknown blob or flow id, unreadable file,
   * unknown component) are `failed` results that `onError` handles (extension: stepflow 0.8
   * aborts the run); see `_failure.ts` for the codes.
   * @throws only for a missing Deno permission or when `ctx.signal` is aborted.
   */
  execute(component: string, input: JsonValue, ctx: ExecuteContext): Promise<FlowResult> {
    // Not an `async` function: its frame was the largest allocation of a built-in step (issue 17).
    const c = BUILTIN_COMPONENTS.get(component);
    let p: Promise<FlowResult>;
    try {
      if (!c) {
        throw new BuiltinError(
          "COMPONENT_NOT_FOUND",
          `Unknown builtin component '${component}' (known: ${
            [...BUILTIN_COMPONENTS.keys()].join(", ")
          }); with a "/{*component}" route write "/eval", not "/builtin/eval"`,
        );
      }
      const r = c.execute(input, ctx, this.#env);
      // a component that answers at once (`/create_messages`) pays no promise of its own
      if (!(r instanceof Promise)) return Promise.resolve(r);
      p = r;
    } catch (e) {
      return failure(component, e, ctx);
    }
    return p.then(undefined, (e) => builtinFailure(component, e, ctx.signal));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** The failed result of a built-in that threw synchronously (a rejection when that rethrows). */
function failure(component: string, e: unknown, ctx: ExecuteContext): Promise<FlowResult> {
  try {
    return Promise.resolve(builtinFailure(component, e, ctx.signal));
  } catch (e2) {
    return Promise.reject(e2);
  }
}

registerPluginType(
  "builtin",
  (name, config) => new BuiltinPlugin(name, config.type === "builtin" ? config.openai : undefined),
);
