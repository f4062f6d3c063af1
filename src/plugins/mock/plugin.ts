/**
 * The mock plugin (`{type: mock, components: {"/name": {behaviors}}}`, stepflow 0.8 §2.2): each
 * component answers fixed results for exact inputs. Lookup is JSON equality on the whole resolved
 * step input (numbers by their text: `15` ≠ `15.0`).
 *
 * A behavior's `result` is a FlowResult (returned as is: `failed` goes through `onError`) or
 * `{error: "<text>"}` (a plugin error that aborts the run). No matching behavior is a plugin
 * error too: `No behavior defined for <component> on <compact JSON input>` (0.8 text, compared
 * by tests).
 * @module
 */
import { canonicalJson, type JsonValue, stringifyJson } from "../../json/exact_json.ts";
import type { FlowResult } from "../../core/flow_result.ts";
import { PluginError } from "../../errors.ts";
import type { MockPluginConfig, PluginConfig } from "../../config/model.ts";
import type { ComponentInfo, ExecuteContext, Plugin, PluginInitContext } from "../plugin.ts";
import { registerPluginType } from "../registry.ts";
import { type Answer, toAnswer } from "../../config/mock_answer.ts";

/** The bottom frame of a mock component error (0.8 wording). */
export const MOCK_ERROR = "error executing user-defined function";

interface MockEntry {
  info: ComponentInfo;
  answers: Map<string, Answer>;
}

/** The `mock` plugin. */
export class MockPlugin implements Plugin {
  readonly type = "mock";
  /** Fixed answers: calling again gives the same result. */
  readonly replayable = true;
  #components = new Map<string, MockEntry>();

  /**
   * @throws {Error} when a behavior's result is neither a FlowResult nor `{error: text}`.
   */
  constructor(readonly name: string, config: MockPluginConfig) {
    for (const [component, c] of Object.entries(config.components ?? {})) {
      const answers = new Map<string, Answer>();
      for (const b of c.behaviors ?? []) {
        const key = canonicalJson(b.input);
        if (!answers.has(key)) answers.set(key, toAnswer(name, component, b.result));
      }
      const info: ComponentInfo = { component };
      if (c.description !== undefined) info.description = c.description;
      if (c.input_schema !== undefined) info.input_schema = c.input_schema;
      if (c.output_schema !== undefined) info.output_schema = c.output_schema;
      this.#components.set(component, { info, answers });
    }
  }

  init(_ctx: PluginInitContext): Promise<void> {
    return Promise.resolve();
  }

  listComponents(): Promise<ComponentInfo[]> {
    return Promise.resolve([...this.#components.values()].map((c) => c.info));
  }

  /** @throws {PluginError} for an unknown component, an input with no behavior, or `{error}`. */
  execute(component: string, input: JsonValue, _ctx: ExecuteContext): Promise<FlowResult> {
    const c = this.#components.get(component);
    if (!c) {
      return Promise.reject(
        new PluginError(MOCK_ERROR, [
          `Unknown mock component '${component}' in plugin '${this.name}' (known: ${
            [...this.#components.keys()].join(", ") || "none"
          })`,
        ]),
      );
    }
    const a = c.answers.get(canonicalJson(input));
    if (!a) {
      return Promise.reject(
        new PluginError(MOCK_ERROR, [
          `No behavior defined for ${component} on ${stringifyJson(input)}`,
        ]),
      );
    }
    if (a.kind === "error") return Promise.reject(new PluginError(MOCK_ERROR, [a.message]));
    return Promise.resolve(a.result);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

registerPluginType("mock", (name, config: PluginConfig) => {
  if (config.type !== "mock") throw new Error(`plugin '${name}' is not a mock plugin`);
  return new MockPlugin(name, config);
});
