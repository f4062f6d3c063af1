// @ts-check
/// <reference lib="dom" />
// The flow graph: the SVG the service draws (src/visualize, `GET .../graph`), put into the page
// so that CSS colours each step by its status class and the page can switch a step's class as
// the run's events arrive. The SVG is parsed as XML and only drawing elements are kept.
import { apiText } from "./api.js";
import { cssName, iconShapes, s, STATUS_TEXT } from "./dom.js";

/** How much larger than drawn the graph is shown. */
const ZOOM = 1.3;

const KEEP = new Set([
  "svg",
  "g",
  "rect",
  "ellipse",
  "circle",
  "path",
  "line",
  "polyline",
  "polygon",
  "text",
  "tspan",
  "title",
  "desc",
]);

/**
 * Removes every element that is not a drawing element, and every event handler or link.
 * @param {Element} el
 */
function sanitize(el) {
  for (const child of [...el.children]) {
    if (!KEEP.has(child.localName)) child.remove();
    else sanitize(child);
  }
  for (const a of [...el.attributes]) {
    const n = a.name.toLowerCase();
    if (n.startsWith("on") || n.endsWith("href") || n === "style") el.removeAttribute(a.name);
  }
}

/** A flow graph shown in the page. */
export class GraphView {
  /**
   * @param {SVGSVGElement} svg
   * @param {{ onActivate?: (stepId: string) => void }} options
   */
  constructor(svg, options) {
    this.svg = svg;
    /** @type {Map<string, SVGGElement>} step class → node */
    this.nodes = new Map();
    this.onActivate = options.onActivate;
    for (const g of svg.querySelectorAll("g.node.step")) {
      const cls = [...g.classList].find((c) => c.startsWith("step-"));
      if (!cls) continue;
      const node = /** @type {SVGGElement} */ (g);
      this.nodes.set(cls, node);
      const status = [...g.classList].find((c) => c.startsWith("status-"));
      this.#decorate(node, status ? status.slice(7) : undefined);
      if (this.onActivate) {
        const stepId = node.getAttribute("data-step-id") ?? "";
        node.setAttribute("tabindex", "0");
        node.setAttribute("role", "button");
        node.addEventListener("click", () => this.onActivate?.(stepId));
        node.addEventListener("keydown", (e) => {
          if (e.key === "Enter" || e.key === " ") {
            e.preventDefault();
            this.onActivate?.(stepId);
          }
        });
      }
    }
  }

  /**
   * Shows `status` on the node of `stepId` (class `status-<status>`, a badge, its label).
   * @param {string} stepId
   * @param {string} status
   */
  setStatus(stepId, status) {
    const node = this.nodes.get(`step-${cssName(stepId)}`);
    if (!node) return;
    for (const c of [...node.classList]) if (c.startsWith("status-")) node.classList.remove(c);
    node.classList.add(`status-${cssName(status)}`);
    this.#decorate(node, status);
  }

  /**
   * Marks the node of `stepId` as the selected one.
   * @param {string | undefined} stepId
   */
  select(stepId) {
    for (const n of this.nodes.values()) n.classList.remove("selected");
    if (stepId !== undefined) this.nodes.get(`step-${cssName(stepId)}`)?.classList.add("selected");
  }

  /**
   * @param {SVGGElement} node
   * @param {string | undefined} status
   */
  #decorate(node, status) {
    const stepId = node.getAttribute("data-step-id") ?? "";
    const component = node.querySelector("title")?.textContent?.split(": ").slice(1).join(": ");
    const said = status
      ? (STATUS_TEXT[/** @type {keyof typeof STATUS_TEXT} */ (status)] ?? status)
      : undefined;
    node.setAttribute(
      "aria-label",
      `Step ${stepId}${component ? ` (${component})` : ""}${said ? `: ${said}` : ""}`,
    );
    node.querySelector(":scope > .status-badge")?.remove();
    if (!status) return;
    const box = node.querySelector(":scope > rect");
    if (!box) return;
    const x = Number(box.getAttribute("x")) + Number(box.getAttribute("width"));
    const y = Number(box.getAttribute("y"));
    node.appendChild(
      s(
        "g",
        { class: "status-badge", transform: `translate(${x - 2} ${y + 2})`, "aria-hidden": "true" },
        s("circle", { r: 8.5, class: "badge-bg" }),
        s("g", { transform: "translate(-6 -6)" }, ...iconShapes(status)),
      ),
    );
  }
}

/**
 * Fetches the SVG at `path` (under /api/v1) and shows it in `container`.
 * @param {HTMLElement} container
 * @param {string} path
 * @param {{ onActivate?: (stepId: string) => void, label: string, signal?: AbortSignal }} options
 * @returns {Promise<GraphView>}
 */
export async function showGraph(container, path, options) {
  const text = await apiText(path, options.signal);
  const doc = new DOMParser().parseFromString(text, "image/svg+xml");
  const root = doc.documentElement;
  if (root.localName !== "svg" || doc.getElementsByTagName("parsererror").length > 0) {
    throw new Error("the service sent a graph that is not SVG");
  }
  sanitize(root);
  const svg =
    /** @type {SVGSVGElement} */ (/** @type {unknown} */ (document.importNode(root, true)));
  // the steps inside are controls: a group, not one image
  svg.setAttribute("role", options.onActivate ? "group" : "img");
  svg.setAttribute("aria-label", options.label);
  svg.setAttribute("focusable", "false");
  // a little larger than drawn (its text is 9-11 px), never wider than the panel (CSS max-width)
  const width = Number(svg.getAttribute("width"));
  if (width > 0) svg.style.width = `${Math.round(width * ZOOM)}px`;
  container.replaceChildren(svg);
  return new GraphView(svg, options);
}
