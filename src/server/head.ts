/**
 * `HEAD` answers with the headers of the `GET` they stand for, `content-length` included, and no
 * body (RFC 9110 §9.3.2).
 *
 * Hono answers a HEAD from the GET route with the GET's headers and a null body, and `Deno.serve`
 * then sends `content-length: 0` for a null body without that header (what users and proxies
 * read as "the resource is empty"). Here the GET is answered and its body counted (read to its
 * end and dropped, chunk by chunk: never held whole): the HEAD's answer carries that length in an
 * explicit `content-length`, which `Deno.serve` keeps for a null body (Deno 2.9). An event stream
 * (`text/event-stream`), which has no end, is not read: it is cancelled at once and answered with
 * an empty stream, so that no length is sent, as for its GET (chunked).
 * @module
 */

/**
 * The answer to HEAD `request`: `get` answers the GET made from it (added to `heads`, so that
 * the service counts it as a HEAD in its metrics), its body counted (bytes) into
 * `content-length` unless it has one, then dropped.
 */
export async function headAnswer(
  request: Request,
  get: (request: Request) => Response | Promise<Response>,
  heads: WeakSet<Request>,
): Promise<Response> {
  const asGet = new Request(request, { method: "GET" });
  heads.add(asGet);
  const res = await get(asGet);
  const init = {
    status: res.status,
    statusText: res.statusText,
    headers: new Headers(res.headers),
  };
  const body = res.body;
  if (body === null) return new Response(null, init);
  if (init.headers.has("content-length")) {
    await body.cancel().catch(() => {});
    return new Response(null, init);
  }
  if ((init.headers.get("content-type") ?? "").startsWith("text/event-stream")) {
    await body.cancel().catch(() => {});
    return new Response(new ReadableStream({ start: (c) => c.close() }), init);
  }
  let length = 0;
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      length += value.byteLength;
    }
  } finally {
    reader.releaseLock();
  }
  init.headers.set("content-length", String(length));
  return new Response(null, init);
}
