/**
 * The shape of a built-in component (stepflow 0.8 §4).
 * @module
 */
import type { JsonValue } from "../../json/exact_json.ts";
import type { FlowResult } from "../../core/flow_result.ts";
import type { ComponentInfo, ExecuteContext } from "../plugin.ts";
import type { OpenAIDefaults } from "./openai_client.ts";

/** What a built-in gets besides its input. */
export interface BuiltinEnv {
  /** Directory relative paths resolve against (config `workingDirectory`). */
  workingDirectory: string;
  /** The plugin's `openai` settings (`/openai`, `/chat`), resolved when the plugin starts. */
  openai: OpenAIDefaults;
  /** The engine's output size limit, bytes (`/load_file` reads no more). @default no limit */
  maxOutputBytes?: number;
}

/** One built-in component. */
export interface BuiltinComponent {
  info: ComponentInfo;
  /**
   * Runs the component: its result, or a promise of it (a component that answers at once returns
   * the result itself and saves a promise per step, issue 17).
   * @throws {BuiltinError} (`INVALID_INPUT`, `NOT_FOUND`, ...) or another error; the builtin
   * plugin turns any of them into a failed step result that `onError` handles (0.8 aborts the
   * run), except a missing permission or a cancelled run.
   */
  execute(
    input: JsonValue,
    ctx: ExecuteContext,
    env: BuiltinEnv,
  ): FlowResult | Promise<FlowResult>;
}
