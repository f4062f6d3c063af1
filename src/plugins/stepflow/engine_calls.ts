/**
 * Answers a worker's requests to the engine (stepflow 0.8 §3.2-3.3): `blobs/put`, `blobs/get`,
 * `flows/evaluate`, `flows/get_metadata`, `flows/submit_batch`, `flows/get_batch`, using the
 * {@linkcode EngineServices} of the run the call belongs to.
 *
 * Errors follow 0.8: -32601 `Method not found: '<m>'`; -32602 `Invalid parameters for request
 * <id>` (this engine adds the field and the problem); -32000 `Failed to put blob` etc. (with the
 * engine's reason after a colon); -32011 not found; -32012 a batch id that is not a UUID.
 * @module
 */
import type { z } from "zod";
import { describeError, ProtocolError } from "../../errors.ts";
import type { JsonObject, JsonValue } from "../../json/exact_json.ts";
import type { EngineServices } from "../plugin.ts";
import type { RequestMessage } from "../../protocol/envelope.ts";
import { isMethodName, METHODS, type ParamsOf } from "../../protocol/methods.ts";
import {
  INTERNAL_ERROR,
  INVALID_PARAMS,
  INVALID_VALUE,
  METHOD_NOT_FOUND,
  NOT_FOUND,
  SERVER_ERROR,
} from "../../core/rpc_error_codes.ts";

const UUID_RE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

/**
 * Answers one worker→engine request.
 * @returns the method's result object.
 * @throws {ProtocolError} with the codes listed in the module doc.
 */
export async function answerEngineCall(
  req: RequestMessage,
  engine: EngineServices,
): Promise<unknown> {
  const answer = await answer0(req, engine);
  // what the engine sends is checked against the protocol's schema too (both ways)
  const method = req.method as keyof typeof METHODS;
  const checked = (METHODS[method] as { result?: z.ZodType }).result?.safeParse(answer);
  if (checked !== undefined && !checked.success) {
    const issue = checked.error.issues[0];
    throw new ProtocolError(
      INTERNAL_ERROR,
      `the engine's answer to ${method} does not match the protocol: ${
        issue.path.join(".") || "(result)"
      }: ${issue.message}`,
    );
  }
  return answer;
}

async function answer0(req: RequestMessage, engine: EngineServices): Promise<unknown> {
  const method = req.method;
  if (!isMethodName(method) || METHODS[method].direction !== "worker_to_engine") {
    throw new ProtocolError(METHOD_NOT_FOUND, `Method not found: '${method}'`);
  }
  const parsed = (METHODS[method].params as z.ZodType).safeParse(req.params ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue.path.length > 0 ? `params.${issue.path.join(".")}` : "params";
    throw new ProtocolError(
      INVALID_PARAMS,
      `Invalid parameters for request ${JSON.stringify(req.id)}: ${where}: ${issue.message}`,
    );
  }
  const p = parsed.data;
  switch (method) {
    case "blobs/put": {
      const q = p as ParamsOf<"blobs/put">;
      const blobId = await fail("Failed to put blob", () => engine.putBlob(q.data, q.blob_type));
      return { blob_id: blobId };
    }
    case "blobs/get": {
      const q = p as ParamsOf<"blobs/get">;
      const blob = await fail("Failed to get blob", () => engine.getBlob(q.blob_id));
      return { data: blob.data, blob_type: blob.blobType };
    }
    case "flows/evaluate": {
      const q = p as ParamsOf<"flows/evaluate">;
      const result = await fail(
        "Failed to evaluate flow",
        () =>
          engine.evaluateFlow(q.flow_id, q.input, {
            ...(q.overrides ? { overrides: q.overrides as JsonValue } : {}),
            ...(q.observability?.run_id ? { parentRunId: q.observability.run_id } : {}),
            ...(typeof q.observability?.step_id === "string"
              ? { stepId: q.observability.step_id }
              : {}),
          }),
      );
      return { result };
    }
    case "flows/get_metadata": {
      const q = p as ParamsOf<"flows/get_metadata">;
      const r = await fail(
        "Failed to get flow metadata",
        () => engine.getMetadata(q.flow_id, q.step_id ?? undefined),
      );
      const out: { flow_metadata: JsonObject; step_metadata?: JsonObject | null } = {
        flow_metadata: r.flow_metadata,
      };
      if (q.step_id != null) out.step_metadata = r.step_metadata ?? null;
      return out;
    }
    case "flows/submit_batch": {
      const q = p as ParamsOf<"flows/submit_batch">;
      return await fail("Failed to submit batch", () =>
        engine.submitBatch(q.flow_id, q.inputs, {
          ...(q.overrides ? { overrides: q.overrides as JsonValue } : {}),
          ...(q.max_concurrency != null ? { maxConcurrency: q.max_concurrency } : {}),
          ...(typeof q.observability?.step_id === "string"
            ? { stepId: q.observability.step_id }
            : {}),
        }));
    }
    case "flows/get_batch": {
      const q = p as ParamsOf<"flows/get_batch">;
      if (!UUID_RE.test(q.batch_id)) {
        throw new ProtocolError(
          INVALID_VALUE,
          "Invalid value for field 'batch_id': expected valid UUID",
        );
      }
      const r = await fail("Failed to get batch", () =>
        engine.getBatch(q.batch_id, {
          wait: q.wait ?? false,
          includeResults: q.include_results ?? false,
        }));
      return q.include_results ? { details: r.details, outputs: r.outputs ?? [] } : {
        details: r.details,
      };
    }
    default:
      throw new ProtocolError(METHOD_NOT_FOUND, `Method not found: '${method}'`);
  }
}

/** Runs `fn`; turns a failure into -32000 `<what>: <reason>` (-32011 for "not found"). */
async function fail<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    const reason = describeError(err);
    const code = /not found/i.test(reason) && !what.includes("blob") ? NOT_FOUND : SERVER_ERROR;
    throw new ProtocolError(code, `${what}: ${reason}`, undefined, { cause: err });
  }
}
