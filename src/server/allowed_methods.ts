/**
 * The methods a path has routes for, to answer a request with the wrong method on a real route
 * with 405 and an `Allow` header (RFC 9110 §15.5.6) instead of 404.
 * @module
 */

/** A route as Hono lists it (`app.routes`): `ALL` entries are middleware. */
export interface RouteEntry {
  method: string;
  path: string;
}

/**
 * Returns a function giving, for a request path, the methods it has routes for (`GET` brings
 * `HEAD`, which Hono answers from the GET route), in a fixed order; an empty array for a path
 * with no route. Paths use Hono's syntax: `:name`, `:name{regex}`, a trailing `*`.
 */
export function allowedMethods(routes: readonly RouteEntry[]): (path: string) => string[] {
  const compiled = routes
    .filter((r) => r.method !== "ALL")
    .map((r) => ({ method: r.method.toUpperCase(), re: pathRegExp(r.path) }));
  return (path) => {
    const methods = new Set<string>();
    for (const r of compiled) if (r.re.test(path)) methods.add(r.method);
    if (methods.has("GET")) methods.add("HEAD");
    return ORDER.filter((m) => methods.has(m)).concat(
      [...methods].filter((m) => !ORDER.includes(m)).sort(),
    );
  };
}

const ORDER = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

function pathRegExp(path: string): RegExp {
  let re = "";
  let i = 0;
  while (i < path.length) {
    const c = path[i];
    if (c === ":") {
      const name = /^:[\w-]+/.exec(path.slice(i))![0];
      i += name.length;
      if (path[i] === "{") {
        const end = path.indexOf("}", i);
        re += `(?:${path.slice(i + 1, end)})`;
        i = end + 1;
      } else {
        re += "[^/]+";
      }
    } else if (c === "*") {
      re += ".*";
      i++;
    } else {
      re += c.replace(/[.+?^${}()|[\]\\]/g, "\\$&");
      i++;
    }
  }
  return new RegExp(`^${re}/?$`);
}
