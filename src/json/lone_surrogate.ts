/**
 * Finding strings that are not Unicode text: a lone UTF-16 surrogate (`"\ud800"` in JSON, or
 * `"\uD800"` in a YAML double-quoted scalar, without its pair). Such a string cannot be written as
 * UTF-8: SQLite and PostgreSQL store it as U+FFFD, so a flow name, step id or input read back
 * differs from what was sent. stepflow 0.8 (serde_json) refuses it when it parses the document;
 * the flow, config and input readers (src/core/document_base.ts) and the service's request bodies
 * (src/server/body.ts) refuse it too, naming where it is.
 * @module
 */

/** Where {@linkcode findLoneSurrogate} found one: the path of the value, and whether a key of it. */
export interface LoneSurrogate {
  /** Keys and indices from the root, e.g. `["steps", 0, "id"]`. */
  path: (string | number)[];
  /** True when the string is a key of the object at `path` (the key is the last segment). */
  inKey: boolean;
}

/**
 * True when `text` may parse to a string with a lone surrogate: it holds one itself, or an escape
 * of a surrogate code unit (`\uD8..`-`\uDF..`, YAML's `\U0000D8..`). A quick test, so that the
 * walk of {@linkcode findLoneSurrogate} is only paid for the rare document that needs it.
 */
export function mayHoldLoneSurrogate(text: string): boolean {
  return SURROGATE_ESCAPE.test(text) || !text.isWellFormed();
}

const SURROGATE_ESCAPE = /\\(?:u|U0000)[dD][89a-fA-F]/;

/**
 * The first string of `value` (keys included, in document order) that holds a lone surrogate,
 * or undefined when every string is well-formed Unicode.
 */
export function findLoneSurrogate(value: unknown): LoneSurrogate | undefined {
  const path: (string | number)[] = [];
  const walk = (v: unknown): LoneSurrogate | undefined => {
    if (typeof v === "string") {
      return v.isWellFormed() ? undefined : { path: [...path], inKey: false };
    }
    if (v === null || typeof v !== "object") return undefined;
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        path.push(i);
        const found = walk(v[i]);
        path.pop();
        if (found) return found;
      }
      return undefined;
    }
    for (const key of Object.keys(v)) {
      if (!key.isWellFormed()) return { path: [...path, key], inKey: true };
      path.push(key);
      const found = walk((v as Record<string, unknown>)[key]);
      path.pop();
      if (found) return found;
    }
    return undefined;
  };
  return walk(value);
}

/** How a lone surrogate is described in errors, after where it is: what it is and what to do. */
export const LONE_SURROGATE_HINT =
  "a lone UTF-16 surrogate (e.g. \\ud800 without its pair), which is not Unicode text and " +
  "would be stored changed (as U+FFFD); write the character itself, or both halves of its " +
  "surrogate pair (e.g. \\ud83d\\ude00) (stepflow 0.8 refuses it too)";
