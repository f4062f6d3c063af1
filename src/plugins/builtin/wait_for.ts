/**
 * `/wait_for` (extension, issue 12: human in the loop): `{name, schema?, timeout?}` → the data of
 * the signal `name` sent to the run (`stepflow signal RUN_ID NAME --data-json ...`, or
 * `POST /api/v1/runs/{id}/signals/{name}`). While no signal is there the run is `paused`; the
 * wait survives the engine: after a restart, `stepflow resume RUN_ID` executes the step again and
 * it takes the signal sent meanwhile. Each waiting step takes its own signal (the oldest one of
 * that name not taken), so several pauses in one run each resume.
 *
 * - `schema`: a JSON Schema the signal's data must match; a signal that does not fails the step
 *   (code -32602, naming the field), which `onError` handles.
 * - `timeout`: a duration (`"10m"`, ms) counted from the step's first wait, across restarts;
 *   past it the step fails with code 504 (`TIMEOUT`).
 * @module
 */
import { failed, success } from "../../core/flow_result.ts";
import { parseDuration } from "../../core/duration.ts";
import { TIMEOUT } from "../../core/error_codes.ts";
import { describeError } from "../../errors.ts";
import { isNumber, type JsonValue, toNumber } from "../../json/exact_json.ts";
import type { BuiltinComponent } from "./component.ts";
import { invalidInput, objectInput, requireString } from "./_input.ts";

const NAME = "/wait_for";

/** The `/wait_for` component. */
export const waitForComponent: BuiltinComponent = {
  info: {
    component: NAME,
    description:
      "Pause the run until a signal with this name arrives (stepflow signal); output: the signal's data",
    input_schema: {
      type: "object",
      properties: {
        name: { type: "string", minLength: 1 },
        schema: { type: "object" },
        timeout: { type: ["string", "integer"] },
      },
      required: ["name"],
    },
    output_schema: {},
  },
  async execute(input, ctx) {
    const o = objectInput(NAME, input);
    const name = requireString(NAME, o, "name");
    if (name.trim() === "") throw invalidInput(NAME, "`name` must not be empty");
    let timeoutMs: number | undefined;
    const t = o.timeout;
    if (t !== undefined && t !== null) {
      try {
        timeoutMs = parseDuration(
          isNumber(t) ? toNumber(t) : t as string,
          { what: "timeout" },
        );
      } catch (e) {
        throw invalidInput(NAME, describeError(e));
      }
    }
    let check: ((v: unknown) => string | undefined) | undefined;
    if (o.schema !== undefined && o.schema !== null) {
      // ajv loads with the first `schema` given (issue 17, goal 5: cold start of other runs)
      const { compileSchemaCheck } = await import("../mcp/schema_check.ts");
      const c = compileSchemaCheck(o.schema);
      if (c.compileError !== undefined) {
        throw invalidInput(NAME, `\`schema\` is not a JSON Schema: ${c.compileError}`);
      }
      check = c.check;
    }
    const wait = ctx.engine.waitForSignal;
    if (wait === undefined) throw new Error("this engine cannot wait for signals");
    const got = await wait.call(ctx.engine, name, {
      stepId: ctx.stepId,
      signal: ctx.signal,
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    });
    if (got === undefined) {
      return failed(TIMEOUT, `no signal '${name}' arrived within ${t} (step '${ctx.stepId}')`, {
        kind: "TIMEOUT",
        component: NAME,
      });
    }
    const bad = check?.(got.data);
    if (bad !== undefined) {
      throw invalidInput(
        NAME,
        `the data of signal '${name}' (id ${got.id}) does not match the step's schema: ${bad}`,
      );
    }
    return success(got.data as JsonValue);
  },
};
