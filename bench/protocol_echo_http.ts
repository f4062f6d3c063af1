/**
 * The floor for bench/protocol_roundtrip.ts: a bare HTTP server answering each POST with its
 * body. Prints `listening on http://H:P` to stderr.
 */
Deno.serve(
  {
    hostname: "127.0.0.1",
    port: 0,
    onListen: (a) => console.error(`listening on http://${a.hostname}:${a.port}`),
  },
  async (req) =>
    new Response(await req.text(), { headers: { "content-type": "application/json" } }),
);
