/**
 * The web UI at `/ui` (docs/ui.md): a few static files — one HTML page, browser modules, a style
 * sheet, an icon — imported as text, so they are part of the program (`deno bundle`,
 * `deno compile`) and nothing is built or downloaded when it runs. The page talks to the API only.
 *
 * - `/ui`, `/ui/runs/{runId}`, `/ui/flows/{flowId}`: the page (`Cache-Control: no-cache`, ETag).
 * - `/ui/static/<version>/<file>`: the modules, style sheet and icon, where `<version>` is a hash
 *   of every file: cached for a year (`immutable`), and a new program serves new URLs. Another
 *   version (an older page's, a made-up one) is redirected (307, `no-store`) to the current one:
 *   a browser never keeps a file under a version it is not.
 * - Every answer has a strict Content-Security-Policy (scripts and styles from this origin only,
 *   no inline script or style, API calls to this origin only, no framing),
 *   `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer`.
 *
 * The files need no token (they hold no data); the page asks for the token when the API does.
 * @module
 */
import type { Context } from "hono";
import type { ApiApp } from "./context.ts";
import INDEX_HTML from "./ui/index.html" with { type: "text" };
import APP_CSS from "./ui/app.css" with { type: "text" };
import APP_JS from "./ui/app.js" with { type: "text" };
import API_JS from "./ui/api.js" with { type: "text" };
import DOM_JS from "./ui/dom.js" with { type: "text" };
import JSON_JS from "./ui/json.js" with { type: "text" };
import GRAPH_JS from "./ui/graph.js" with { type: "text" };
import RUNS_PAGE_JS from "./ui/runs_page.js" with { type: "text" };
import RUN_PAGE_JS from "./ui/run_page.js" with { type: "text" };
import RUN_VIEW_JS from "./ui/run_view.js" with { type: "text" };
import RUN_ACTIONS_JS from "./ui/run_actions.js" with { type: "text" };
import STEP_TABLE_JS from "./ui/step_table.js" with { type: "text" };
import FLOW_PAGE_JS from "./ui/flow_page.js" with { type: "text" };
import ICON_SVG from "./ui/icon.svg" with { type: "text" };

const JS = "text/javascript; charset=utf-8";

/** The static files of the UI by name, with their content types. */
export const UI_FILES: Readonly<Record<string, { body: string; type: string }>> = {
  "app.css": { body: APP_CSS, type: "text/css; charset=utf-8" },
  "app.js": { body: APP_JS, type: JS },
  "api.js": { body: API_JS, type: JS },
  "dom.js": { body: DOM_JS, type: JS },
  "json.js": { body: JSON_JS, type: JS },
  "graph.js": { body: GRAPH_JS, type: JS },
  "runs_page.js": { body: RUNS_PAGE_JS, type: JS },
  "run_page.js": { body: RUN_PAGE_JS, type: JS },
  "run_view.js": { body: RUN_VIEW_JS, type: JS },
  "run_actions.js": { body: RUN_ACTIONS_JS, type: JS },
  "step_table.js": { body: STEP_TABLE_JS, type: JS },
  "flow_page.js": { body: FLOW_PAGE_JS, type: JS },
  "icon.svg": { body: ICON_SVG, type: "image/svg+xml; charset=utf-8" },
};

/** The Content-Security-Policy of every UI answer. */
export const UI_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

const SECURITY_HEADERS = {
  "Content-Security-Policy": UI_CSP,
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "X-Frame-Options": "DENY",
};

/** FNV-1a (32 bits) of `text`, as 8 hex digits. */
function fnv1a(text: string, seed = 0x811c9dc5): string {
  let h = seed;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, "0");
}

/** A hash of every UI file: the `<version>` of the static URLs. */
export const UI_VERSION: string = (() => {
  const all = INDEX_HTML + Object.entries(UI_FILES).map(([k, v]) => k + v.body).join("\0");
  return fnv1a(all) + fnv1a(all, 0x1b873593);
})();

const PAGE = INDEX_HTML.replaceAll("__UI_VERSION__", UI_VERSION);
const PAGE_ETAG = `"ui-${UI_VERSION}"`;

/** Adds the UI routes. */
export function addUiRoutes(app: ApiApp): void {
  const page = (status: 200 | 404) => (c: Context) => {
    const headers = {
      ...SECURITY_HEADERS,
      "Content-Type": "text/html; charset=utf-8",
      "Cache-Control": "no-cache",
      "ETag": PAGE_ETAG,
    };
    if (status === 200 && matches(c.req.header("if-none-match"), PAGE_ETAG)) {
      return c.body(null, 304, headers);
    }
    return c.body(PAGE, status, headers);
  };
  app.get("/ui", page(200));
  app.get("/ui/", page(200));
  app.get("/ui/runs/:runId", page(200));
  app.get("/ui/flows/:flowId", page(200));
  app.get("/ui/static/:version/:file", (c) => {
    const name = c.req.param("file");
    const file = UI_FILES[name];
    if (!file || !Object.hasOwn(UI_FILES, name)) return notFound(c);
    if (c.req.param("version") !== UI_VERSION) {
      // another version (an older page, a made-up one): never this file under that URL, which
      // a browser would keep; a temporary redirect (not stored) to the current one
      return c.body(null, 307, {
        ...SECURITY_HEADERS,
        "Location": `/ui/static/${UI_VERSION}/${name}`,
        "Cache-Control": "no-store",
      });
    }
    const etag = `"${UI_VERSION}"`;
    const headers = {
      ...SECURITY_HEADERS,
      "Content-Type": file.type,
      // a URL of this version never changes
      "Cache-Control": "public, max-age=31536000, immutable",
      "ETag": etag,
    };
    if (matches(c.req.header("if-none-match"), etag)) return c.body(null, 304, headers);
    return c.body(file.body, 200, headers);
  });
  // any other page under /ui: the page, which says "not found"
  app.get("/ui/*", page(404));
}

function notFound(c: Context): Response {
  return c.body("Not found\n", 404, {
    ...SECURITY_HEADERS,
    "Content-Type": "text/plain; charset=utf-8",
    "Cache-Control": "no-cache",
  });
}

function matches(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header.split(",").some((m) => {
    const t = m.trim().replace(/^W\//, "");
    return t === etag || t === "*";
  });
}
