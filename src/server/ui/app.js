// @ts-check
/// <reference lib="dom" />
// The web UI of `stepflow serve` (/ui): which page to show, and the token form when the service
// asks for one. Plain browser modules, no build step; see docs/ui.md.
import { setToken, token } from "./api.js";
import { h, put } from "./dom.js";
import { flowPage } from "./flow_page.js";
import { runPage } from "./run_page.js";
import { runsPage } from "./runs_page.js";

const main = /** @type {HTMLElement} */ (document.getElementById("main"));
const pages = new AbortController();

/**
 * A path segment decoded (undefined when it is not valid percent-encoding).
 * @param {string} text
 */
function decode(text) {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}

/** Shows the page of the current address. */
function route() {
  const path = location.pathname.replace(/\/+$/, "");
  let m;
  let id;
  if (path === "/ui" || path === "") return runsPage(main, pages.signal);
  if ((m = /^\/ui\/runs\/([^/]+)$/.exec(path)) && (id = decode(m[1])) !== undefined) {
    return runPage(main, id, pages.signal);
  }
  if ((m = /^\/ui\/flows\/([^/]+)$/.exec(path)) && (id = decode(m[1])) !== undefined) {
    return flowPage(main, id, pages.signal);
  }
  document.title = "Not found · Stepflow";
  put(
    main,
    h("h1", { text: "Page not found" }),
    h("p", {}, "Nothing here. ", h("a", { href: "/ui", text: "See the runs" }), "."),
  );
}

/** The service answered 401: ask for the token (kept for this tab only). */
function askToken() {
  if (document.getElementById("token-form")) return;
  pages.abort();
  const input = h("input", {
    id: "token",
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  const form = h(
    "form",
    { id: "token-form", class: "panel token-form" },
    h("h1", { text: "This service needs a token" }),
    h(
      "p",
      {},
      token()
        ? "The token given is not accepted. "
        : "It was started with --token (or STEPFLOW_TOKEN). ",
      "Give the same token; it is kept in this browser tab only.",
    ),
    h("label", { for: "token", text: "Token" }),
    input,
    h("button", { type: "submit", class: "btn primary", text: "Use token" }),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    setToken(/** @type {HTMLInputElement} */ (input).value);
    location.reload();
  });
  put(main, form);
  input.focus();
}

addEventListener("stepflow:unauthorized", askToken);
addEventListener("pagehide", () => pages.abort());
// back from the browser's page cache: the streams were closed, start again
addEventListener("pageshow", (e) => {
  if (e.persisted) location.reload();
});
route();
