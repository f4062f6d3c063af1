// @ts-check
/// <reference lib="dom" />
// DOM helpers of the web UI: elements are built with createElement and text nodes only (never
// innerHTML), so step ids, outputs and error messages can hold anything.

const SVG_NS = "http://www.w3.org/2000/svg";

/**
 * An HTML element. `attrs`: `class`, `text` (its text), `on<event>` (listeners), booleans
 * (present when true), anything else as an attribute; null/undefined/false values are skipped.
 * Children: nodes, strings (text), arrays, null/false (skipped).
 * @param {string} tag
 * @param {Record<string, unknown>} [attrs]
 * @param {...unknown} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, ...children) {
  return fill(document.createElement(tag), attrs, children);
}

/**
 * An SVG element (same rules as {@link h}).
 * @param {string} tag
 * @param {Record<string, unknown>} [attrs]
 * @param {...unknown} children
 * @returns {SVGElement}
 */
export function s(tag, attrs = {}, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), attrs, children);
}

/**
 * @template {Element} E
 * @param {E} el
 * @param {Record<string, unknown>} attrs
 * @param {unknown[]} children
 * @returns {E}
 */
function fill(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") el.textContent = String(v);
    else if (k.startsWith("on") && typeof v === "function") {
      el.addEventListener(k.slice(2), /** @type {EventListener} */ (v));
    } else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

/**
 * @param {Node} el
 * @param {unknown} children
 */
export function append(el, children) {
  if (children === null || children === undefined || children === false) return;
  if (Array.isArray(children)) {
    for (const c of children) append(el, c);
  } else if (children instanceof Node) el.appendChild(children);
  else el.appendChild(document.createTextNode(String(children)));
}

/**
 * Replaces the children of `el`.
 * @param {Element} el
 * @param {...unknown} children
 */
export function put(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

// ---------------------------------------------------------------------------------------------
// announcements (one polite live region, at most one message a second)

/** @type {string[]} */
let pending = [];
/** @type {ReturnType<typeof setTimeout> | undefined} */
let timer;

/**
 * Says `text` to screen readers (the `#announcer` live region). Messages within a second are
 * joined (the first three, then a count).
 * @param {string} text
 */
export function announce(text) {
  pending.push(text);
  if (timer !== undefined) return;
  timer = setTimeout(() => {
    timer = undefined;
    const region = document.getElementById("announcer");
    const msgs = pending;
    pending = [];
    if (!region || msgs.length === 0) return;
    const shown = msgs.slice(0, 3).join(" ");
    region.textContent = msgs.length > 3 ? `${shown} And ${msgs.length - 3} more.` : shown;
  }, 400);
}

// ---------------------------------------------------------------------------------------------
// statuses

/** Text of each run and step status (shown beside its colour). */
export const STATUS_TEXT = {
  queued: "Queued",
  running: "Running",
  completed: "Completed",
  failed: "Failed",
  cancelled: "Cancelled",
  paused: "Paused",
  skipped: "Skipped",
  blocked: "Waiting",
  runnable: "Ready",
  "not-run": "Not run",
};

/**
 * The status to show for a step: in a finished run, a step without a result did not run (it was
 * waiting, or running when the run was cancelled or failed).
 * @param {string} stepStatus
 * @param {string} runStatus
 */
export function shownStepStatus(stepStatus, runStatus) {
  return FINISHED.has(runStatus) && !["completed", "failed", "skipped"].includes(stepStatus)
    ? "not-run"
    : stepStatus;
}

/** Run statuses after which nothing changes. */
export const FINISHED = new Set(["completed", "failed", "cancelled"]);

/**
 * Icon paths (12×12 box) per status.
 * @type {Record<string, [string, Record<string, unknown>][]>}
 */
const ICONS = {
  completed: [["path", { d: "M2.5 6.4l2.4 2.4L9.6 3.8", class: "i-stroke" }]],
  failed: [["path", { d: "M3.2 3.2l5.6 5.6M8.8 3.2l-5.6 5.6", class: "i-stroke" }]],
  running: [["circle", { cx: 6, cy: 6, r: 3.2, class: "i-fill" }]],
  queued: [
    ["circle", { cx: 6, cy: 6, r: 4.4, class: "i-stroke" }],
    ["path", { d: "M6 3.6V6l1.7 1.1", class: "i-stroke" }],
  ],
  skipped: [["path", { d: "M2.6 3l3 3-3 3M6.4 3l3 3-3 3", class: "i-stroke" }]],
  cancelled: [
    ["circle", { cx: 6, cy: 6, r: 4.4, class: "i-stroke" }],
    ["path", { d: "M2.9 9.1l6.2-6.2", class: "i-stroke" }],
  ],
  paused: [["path", { d: "M4.2 2.8v6.4M7.8 2.8v6.4", class: "i-stroke" }]],
  blocked: [["circle", { cx: 6, cy: 6, r: 3, class: "i-stroke" }]],
  runnable: [["circle", { cx: 6, cy: 6, r: 3, class: "i-stroke" }]],
  "not-run": [["path", { d: "M3 6h6", class: "i-stroke" }]],
};

/**
 * The SVG shapes of the icon of `status`, to put in an `<svg viewBox="0 0 12 12">` or a `<g>`.
 * @param {string} status
 * @returns {SVGElement[]}
 */
export function iconShapes(status) {
  const spec = ICONS[status] ?? ICONS.blocked;
  return spec.map(([tag, attrs]) => s(tag, attrs));
}

/**
 * A status badge: icon and text (colour never carries the status alone).
 * @param {string} status
 * @returns {HTMLElement}
 */
export function badge(status) {
  const text = STATUS_TEXT[/** @type {keyof typeof STATUS_TEXT} */ (status)] ?? status;
  return h(
    "span",
    { class: `badge s-${cssName(status)}` },
    s(
      "svg",
      { viewBox: "0 0 12 12", width: 12, height: 12, "aria-hidden": "true" },
      ...iconShapes(status),
    ),
    text,
  );
}

/**
 * `s` as a CSS class part (letters, digits and `-` kept; others `_<hex>_`), as src/visualize's
 * `stepClass`/`statusClass` encode them in the SVG.
 * @param {string} text
 */
export function cssName(text) {
  let out = "";
  for (const ch of text) {
    out += /^[A-Za-z0-9-]$/.test(ch)
      ? ch
      : `_${/** @type {number} */ (ch.codePointAt(0)).toString(16)}_`;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// times

const dateFmt = new Intl.DateTimeFormat(undefined, {
  year: "numeric",
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});

/**
 * A `<time>` showing an RFC 3339 instant in local time (the exact instant in its title).
 * @param {string | null | undefined} iso
 */
export function time(iso) {
  if (!iso) return h("span", { class: "muted", text: "—" });
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return h("span", { text: iso });
  return h("time", { datetime: iso, title: iso, text: dateFmt.format(d) });
}

/**
 * "850 ms", "2.4 s", "3 min 05 s", "2 h 03 min".
 * @param {number | undefined | null} ms
 */
export function duration(ms) {
  if (ms === undefined || ms === null || !Number.isFinite(ms)) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
  const sec = Math.floor(ms / 1000);
  if (sec < 3600) return `${Math.floor(sec / 60)} min ${String(sec % 60).padStart(2, "0")} s`;
  return `${Math.floor(sec / 3600)} h ${String(Math.floor(sec / 60) % 60).padStart(2, "0")} min`;
}

/**
 * Milliseconds between two RFC 3339 instants (to now when `to` is absent).
 * @param {string | null | undefined} from
 * @param {string | null | undefined} [to]
 */
export function between(from, to) {
  if (!from) return undefined;
  const a = Date.parse(from);
  const b = to ? Date.parse(to) : Date.now();
  return Number.isNaN(a) || Number.isNaN(b) ? undefined : Math.max(0, b - a);
}

/**
 * The first 8 hex digits of an id (the whole id in the title).
 * @param {string} id
 */
export function shortId(id) {
  return h("code", { class: "id", title: id, text: id.replaceAll("-", "").slice(0, 8) });
}
