/**
 * Source excerpts for error messages: the line at a position with a caret under the column.
 *
 * ```text
 *    8 |       user_prompt: {$from: {step: a}
 *      |                    ^
 * ```
 * @module
 */
import type { SourcePosition } from "../errors.ts";

/**
 * The excerpt of `text` at `position` (1-based line and column), two lines ending in `\n`, or
 * `""` when the line does not exist. Tabs are kept so the caret lines up.
 */
export function sourceExcerpt(text: string, position: SourcePosition): string {
  // positions are counted without a byte-order mark (src/flow/parse.ts)
  const lines = (text.charCodeAt(0) === 0xfeff ? text.slice(1) : text).split("\n");
  const line = lines[position.line - 1];
  if (line === undefined) return "";
  let src = line.replace(/\r$/, "");
  let col = Math.max(0, position.col - 1);
  // A very long line (minified JSON, a deep one-line value) is cut to a window around the column.
  if (src.length > MAX_EXCERPT) {
    const start = Math.max(0, Math.min(col - MAX_EXCERPT / 2, src.length - MAX_EXCERPT));
    const end = start + MAX_EXCERPT;
    const head = start > 0 ? "..." : "";
    src = head + src.slice(start, end) + (end < src.length ? "..." : "");
    col = col - start + head.length;
  }
  const num = String(position.line);
  const gutter = " ".repeat(num.length);
  const lead = src.slice(0, col).replace(/[^\t]/g, " ");
  return ` ${num} | ${src}\n ${gutter} | ${lead}^\n`;
}

/** Longest part of a line an excerpt shows. */
const MAX_EXCERPT = 120;

/**
 * The excerpt for `position` read from its file (`position.file`), or `""` when there is no
 * file or it cannot be read. Synchronous: for error reporting only.
 */
export function fileExcerpt(position: SourcePosition | undefined): string {
  if (!position?.file) return "";
  try {
    return sourceExcerpt(Deno.readTextFileSync(position.file), position);
  } catch {
    return "";
  }
}
