/**
 * Errors a component may throw to choose the JSON-RPC error its caller gets.
 * @module
 */

/**
 * Thrown by a component handler to fail with a chosen code (the engine turns it into a failed
 * step result `{code, message, data}` that `onError` can handle).
 *
 * @example
 * ```ts ignore
 * throw new ComponentError(422, "text is empty", { field: "text" });
 * ```
 */
export class ComponentError extends Error {
  override name = "ComponentError";
  /**
   * @param code the error code the step result carries (any integer).
   * @param message what went wrong.
   * @param data optional JSON details.
   */
  constructor(readonly code: number, message: string, readonly data?: unknown) {
    super(message);
  }
}
