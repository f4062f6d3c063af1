/**
 * Helpers for route definitions, the OpenAPI document, and the API reference page.
 * @module
 */
import type { z } from "@hono/zod-openapi";
import { ErrorSchema } from "./schemas.ts";

/** `{ "application/json": { schema } }`. */
export function json<T extends z.ZodType>(schema: T) {
  return { "application/json": { schema } };
}

const WHY: Record<number, string> = {
  400: "Invalid request (the message says which field and why)",
  401: "Missing or wrong token (Authorization: Bearer <token>)",
  404: "Not found",
  409: "Conflict with the current state",
  413: "Request body over the limit (--max-body-size)",
  415: "Content-Type is not application/json",
  422: "Idempotency-Key reused for a different request",
  429: "Too many runs queued; retry after Retry-After seconds",
  500: "Internal error",
  503: "The service is shutting down",
  507: "The state store cannot be written (disk full, ...): nothing was stored",
};

/** Error responses (0.8 `ErrorResponse`) for the given status codes. */
export function errors(...codes: number[]) {
  const out: Record<number, { description: string; content: ReturnType<typeof json> }> = {};
  for (const code of codes) {
    out[code] = { description: WHY[code] ?? "Error", content: json(ErrorSchema) };
  }
  return out;
}
