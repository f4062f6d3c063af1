// @ts-check
/// <reference lib="dom" />
// JSON with exact numbers: the API prints numbers as written (9007199254740993, 15.0); parsing
// keeps the source text of any number JavaScript would change (JSON.parse source text access),
// and the viewer prints it unchanged.

/** A number whose JSON text a JavaScript number would change. */
export class RawNumber {
  /** @param {string} source */
  constructor(source) {
    this.source = source;
  }
  valueOf() {
    return Number(this.source);
  }
  toString() {
    return this.source;
  }
  toJSON() {
    // JSON.stringify prints a raw JSON value as it is (Chrome 114+, Firefox 135+, Safari 18.4+)
    const raw = /** @type {any} */ (JSON).rawJSON;
    return typeof raw === "function" ? raw(this.source) : Number(this.source);
  }
}

/**
 * `JSON.parse` keeping numbers exact (as {@link RawNumber} when needed).
 * @param {string} text
 * @returns {any}
 */
export function parseJson(text) {
  return JSON.parse(
    text,
    /** @type {any} */ ((
      /** @type {string} */ _key,
      /** @type {unknown} */ value,
      /** @type {any} */ ctx,
    ) =>
      typeof value === "number" && ctx && typeof ctx.source === "string" &&
        String(value) !== ctx.source
        ? new RawNumber(ctx.source)
        : value),
  );
}

/** Longest JSON text shown with colours; longer is shown as plain text. */
const MAX_COLOURED = 60_000;
/** Longest JSON text shown at all (the rest is cut, saying how much). */
const MAX_SHOWN = 400_000;

/**
 * A `<pre class="json">` showing `value` indented, with spans for keys, strings, numbers and
 * literals (text nodes only).
 * @param {unknown} value
 * @param {string} [label] the accessible name of the block
 * @returns {HTMLPreElement}
 */
export function jsonView(value, label) {
  /** @type {[string, string][]} */
  const tokens = [];
  let size = 0;
  /** @param {string} cls @param {string} text */
  const push = (cls, text) => {
    size += text.length;
    tokens.push([cls, text]);
  };
  /** @param {unknown} v @param {string} indent @param {number} depth */
  const walk = (v, indent, depth) => {
    if (size > MAX_SHOWN) return;
    if (v instanceof RawNumber) push("j-num", v.source);
    else if (v === null) push("j-lit", "null");
    else if (typeof v === "string") push("j-str", JSON.stringify(v));
    else if (typeof v === "number") push("j-num", Number.isFinite(v) ? String(v) : "null");
    else if (typeof v === "boolean") push("j-lit", String(v));
    else if (Array.isArray(v)) {
      if (v.length === 0) return push("", "[]");
      push("", "[\n");
      v.forEach((x, i) => {
        push("", indent + "  ");
        walk(x, indent + "  ", depth + 1);
        push("", i < v.length - 1 ? ",\n" : "\n");
      });
      push("", indent + "]");
    } else if (typeof v === "object") {
      const keys = Object.keys(/** @type {object} */ (v));
      if (keys.length === 0) return push("", "{}");
      push("", "{\n");
      keys.forEach((k, i) => {
        push("", indent + "  ");
        push("j-key", JSON.stringify(k));
        push("", ": ");
        walk(/** @type {Record<string, unknown>} */ (v)[k], indent + "  ", depth + 1);
        push("", i < keys.length - 1 ? ",\n" : "\n");
      });
      push("", indent + "}");
    } else push("j-lit", "null");
  };
  walk(value, "", 0);
  const pre = document.createElement("pre");
  pre.className = "json";
  pre.tabIndex = 0; // scrollable with the keyboard
  if (label) pre.setAttribute("aria-label", label);
  if (size > MAX_COLOURED) {
    let text = tokens.map((t) => t[1]).join("");
    if (text.length > MAX_SHOWN) {
      text = `${text.slice(0, MAX_SHOWN)}\n… (${
        text.length - MAX_SHOWN
      } more characters not shown)`;
    }
    pre.textContent = text;
    return pre;
  }
  for (const [cls, text] of tokens) {
    if (cls === "") pre.appendChild(document.createTextNode(text));
    else {
      const span = document.createElement("span");
      span.className = cls;
      span.textContent = text;
      pre.appendChild(span);
    }
  }
  return pre;
}

/**
 * The JSON text of `value` (2-space indent), numbers exact.
 * @param {unknown} value
 */
export function jsonText(value) {
  return JSON.stringify(value, null, 2);
}
