/**
 * Long paths in messages (a JSON path 300 levels deep, a file path of 40 directories): shown
 * with their middle elided, so that a message stays readable and a line stays a line. The whole
 * path stays where a program reads it (a diagnostic's `path`, an error's `problems`, `--format
 * json`).
 * @module
 */

/** Longest path a message shows whole (characters). */
export const MAX_SHOWN_PATH = 200;

/**
 * `text` when it has at most `max` characters; else its start and its end, `max` characters in
 * all, around `...(N chars elided)...`: `$.output.k299.k298...(2431 chars elided)....k1.k0`.
 */
export function elideMiddle(text: string, max: number = MAX_SHOWN_PATH): string {
  if (text.length <= max) return text;
  const head = Math.ceil(max / 2);
  const tail = max - head;
  return `${text.slice(0, head)}...(${text.length - max} chars elided)...${
    text.slice(text.length - tail)
  }`;
}
