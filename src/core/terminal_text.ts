/**
 * Text for a terminal. Flow names, step ids, component names, error messages and outputs come
 * from flow files, from step services and MCP servers, from stored runs and from clients of the
 * REST service (a flow stored with `POST /flows` is listed by `stepflow runs list`): printed as they
 * are, an ESC in them is a terminal command (clear the screen, set the window title, hide the text
 * that follows) and a bidi override reorders what follows. {@linkcode terminalSafe} shows such
 * characters as `\u001b`-style escapes instead, as JSON does.
 * @module
 */

/**
 * C0 controls but tab and newline, DEL, C1 controls, and the bidi embedding/override/isolate
 * controls. A carriage return is matched only when no newline follows it.
 */
// deno-lint-ignore no-control-regex
const UNSAFE = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]|\r(?!\n)/g;

/**
 * `text` with control characters (ESC, BEL, backspace, a lone CR, C1, bidi overrides) replaced
 * by visible escapes (`\u001b`); tabs, newlines and CRLF stay. Returns `text` itself when it has
 * none (the common case costs one regex test).
 */
export function terminalSafe(text: string): string {
  UNSAFE.lastIndex = 0;
  if (!UNSAFE.test(text)) return text;
  UNSAFE.lastIndex = 0;
  return text.replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
