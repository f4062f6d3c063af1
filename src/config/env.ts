/**
 * Environment substitution in config values (stdio/MCP `args` and `env`, §2.5).
 *
 * Syntax (shell meanings, plus stepflow 0.8's own default form):
 * - `$VAR`, `${VAR}` — the value; an unset variable is an error.
 * - `${VAR:-default}` — `default` when VAR is unset **or empty** (as in a shell; stepflow 0.8
 *   yields `-default` here, a trap this engine does not copy).
 * - `${VAR-default}` — `default` only when VAR is unset.
 * - `${VAR:default}` — stepflow 0.8's (`subst` crate) default syntax: `default` when unset.
 * - `$$` — a literal `$`. A `$` not followed by a name, `{` or `$` is kept as is.
 * Defaults may themselves contain substitutions (`${A:-${B:-x}}`), at most
 * {@linkcode MAX_ENV_NESTING} levels deep.
 * @module
 */

/**
 * Most `${...}` inside one another (`${A:-${B:-x}}` is 2). Deeper is an error saying so (before:
 * 200,000 levels failed the plugin's start with "Maximum call stack size exceeded").
 */
export const MAX_ENV_NESTING = 64;

const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;

/**
 * Replaces variable references in `text` with values from `lookup`.
 * @throws {Error} `Environment variable 'X' is not set (referenced in "..."); set it or give a
 * default with ${X:-default}`, on an unterminated `${`, or on `${` nested more than
 * {@linkcode MAX_ENV_NESTING} levels deep.
 */
export function substituteEnv(
  text: string,
  lookup: (name: string) => string | undefined,
  depth = 0,
): string {
  if (!text.includes("$")) return text;
  let out = "";
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c !== "$") {
      out += c;
      i++;
      continue;
    }
    const next = text[i + 1];
    if (next === "$") {
      out += "$";
      i += 2;
      continue;
    }
    if (next === "{") {
      const close = matchingBrace(text, i + 1);
      if (close < 0) {
        throw new Error(`Unterminated '\${' in "${text}": add the closing '}'`);
      }
      if (depth >= MAX_ENV_NESTING) {
        throw new Error(
          `Variable references are nested more than ${MAX_ENV_NESTING} levels deep (\${A:-\${B:-...}}) in "${
            clip(text)
          }": nest fewer defaults`,
        );
      }
      out += expandBraced(text.slice(i + 2, close), text, lookup, depth + 1);
      i = close + 1;
      continue;
    }
    const m = NAME.exec(text.slice(i + 1));
    if (!m) {
      out += "$";
      i++;
      continue;
    }
    out += required(m[0], text, lookup);
    i += 1 + m[0].length;
  }
  return out;
}

/** Index of the `}` closing the `{` at `open`, honouring nested `${...}`; -1 if none. */
function matchingBrace(text: string, open: number): number {
  let depth = 0;
  for (let j = open; j < text.length; j++) {
    if (text[j] === "{") depth++;
    else if (text[j] === "}") {
      depth--;
      if (depth === 0) return j;
    }
  }
  return -1;
}

function expandBraced(
  body: string,
  whole: string,
  lookup: (name: string) => string | undefined,
  depth: number,
): string {
  const m = NAME.exec(body);
  if (!m) throw new Error(`Invalid variable reference '\${${body}}' in "${whole}"`);
  const name = m[0];
  const rest = body.slice(name.length);
  if (rest === "") return required(name, whole, lookup);
  const value = lookup(name);
  if (rest.startsWith(":-")) {
    return value !== undefined && value !== ""
      ? value
      : substituteEnv(rest.slice(2), lookup, depth);
  }
  if (rest.startsWith("-")) {
    return value !== undefined ? value : substituteEnv(rest.slice(1), lookup, depth);
  }
  if (rest.startsWith(":")) {
    return value !== undefined ? value : substituteEnv(rest.slice(1), lookup, depth);
  }
  throw new Error(
    `Invalid variable reference '\${${body}}' in "${whole}": use \${${name}} or \${${name}:-default}`,
  );
}

function required(
  name: string,
  whole: string,
  lookup: (name: string) => string | undefined,
): string {
  const v = lookup(name);
  if (v === undefined) {
    throw new Error(
      `Environment variable '${name}' is not set (referenced in "${whole}"): set it, or give a ` +
        `default with \${${name}:-default}`,
    );
  }
  return v;
}

/** `text` for an error message: at most 200 characters. */
function clip(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
