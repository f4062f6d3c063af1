/**
 * Flow ids and flow blobs (stepflow 0.8 §9): the id of a flow is the blob id of its normalised
 * serialisation, computed once per flow object.
 * @module
 */
import type { Flow } from "../flow/model.ts";
import type { JsonValue } from "../json/exact_json.ts";
import { blobId } from "../state/blob_id.ts";
import { parseFlowValue } from "../flow/load_file.ts";
import { serializeFlow } from "../flow/serialize.ts";

const ids = new WeakMap<Flow, string>();

/** The flow id (64 hex) of `flow`: SHA-256 of its normalised compact JSON. */
export function flowIdOf(flow: Flow): string {
  return flowBlob(flow).id;
}

/**
 * The flow blob of `flow`: its id and normalised JSON. The id is cached per flow object; the
 * JSON is computed again only when the id is not cached yet (callers store it then).
 */
export function flowBlob(flow: Flow): { id: string; json?: JsonValue } {
  const id = ids.get(flow);
  if (id !== undefined) return { id };
  const json = serializeFlow(flow);
  const computed = blobId(json);
  ids.set(flow, computed);
  return { id: computed, json };
}

/** The normalised JSON form of a flow (what a flow blob holds). */
export function flowToJson(flow: Flow): JsonValue {
  return serializeFlow(flow);
}

/**
 * Parses a flow value (a flow blob's data, an inline `/map` workflow).
 * @throws {Error} naming what is wrong when the value is not a valid flow.
 */
export function flowFromJson(value: JsonValue): Flow {
  return parseFlowValue(value).flow;
}
