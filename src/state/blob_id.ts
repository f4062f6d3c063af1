/**
 * Content-addressed blob ids (stepflow 0.8 §9).
 * @module
 */
import { createHash } from "node:crypto";
import { stringifyJson } from "../json/exact_json.ts";

/**
 * The id of a blob: lowercase hex SHA-256 of the value's compact JSON in insertion order.
 * stepflow 0.8: serde_json `preserve_order`, no `sha256:` prefix; raw numbers (`15.0`,
 * `9007199254740993`) hash as written, so ids equal 0.8's.
 */
export function blobId(data: unknown): string {
  return sha256Hex(stringifyJson(data));
}

/** Lowercase hex SHA-256 of a UTF-8 string. */
export function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** True for a well-formed blob id (64 lowercase or uppercase hex digits). */
export function isBlobId(id: string): boolean {
  return /^[0-9a-fA-F]{64}$/.test(id);
}
