/**
 * Reading a body or a file with a size limit: a step service's HTTP answer
 * (src/plugins/stepflow/http_body.ts), a model endpoint's answer (src/plugins/builtin/model_http.ts),
 * an MCP server's Streamable HTTP answer (src/plugins/mcp/http_fetch.ts), the service's answers to
 * the CLI (src/cli/service_client.ts), and every file or stdin the CLI reads
 * ({@linkcode readFileBounded}, {@linkcode MAX_READ_FILE_BYTES}). Each caller says in its own words
 * what an answer over the limit means; this reads, counts and stops.
 * @module
 */

/** What {@linkcode readBounded} read. */
export interface BoundedRead {
  /**
   * The body; when it had more than the limit, its first `limit` bytes with `keepCut`, else no
   * bytes.
   */
  bytes: Uint8Array<ArrayBuffer>;
  /** Bytes read, in bytes (more than the limit when `over`: the chunk that went past counts). */
  size: number;
  /** True when the body had more than the limit: it was cancelled, not read to its end. */
  over: boolean;
}

const NONE = new Uint8Array(0);

/**
 * Reads `body` to its end, or until more than `limit` bytes came; then the body is cancelled.
 * `stop`: when it aborts, the body is cancelled and the read ends with what came (not `over`).
 * `keepCut`: an over-long body gives its first `limit` bytes (an error status's text for a
 * message), else none (nothing is copied for an answer that is refused).
 * @throws what reading the body throws (the caller names the source).
 */
export async function readBounded(
  body: ReadableStream<Uint8Array>,
  limit: number,
  options: { stop?: AbortSignal; keepCut?: boolean } = {},
): Promise<BoundedRead> {
  const { stop, keepCut = false } = options;
  const reader = body.getReader();
  const cancel = () => void reader.cancel().catch(() => {});
  stop?.addEventListener("abort", cancel, { once: true });
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done || stop?.aborted) break;
      size += value.length;
      if (size > limit) {
        cancel();
        if (!keepCut) return { bytes: NONE, size, over: true };
        chunks.push(value.subarray(0, value.length - (size - limit)));
        return { bytes: concatBytes(chunks), size, over: true };
      }
      chunks.push(value);
    }
  } finally {
    stop?.removeEventListener("abort", cancel);
    reader.releaseLock();
  }
  return { bytes: concatBytes(chunks), size, over: false };
}

/** `chunks` in one buffer (one chunk is given as it is: a stream's chunks are the reader's). */
export function concatBytes(chunks: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  if (chunks.length === 1 && chunks[0].buffer instanceof ArrayBuffer) {
    return chunks[0] as Uint8Array<ArrayBuffer>;
  }
  let n = 0;
  for (let i = 0; i < chunks.length; i++) n += chunks[i].length;
  const out = new Uint8Array(n);
  let at = 0;
  for (let i = 0; i < chunks.length; i++) {
    out.set(chunks[i], at);
    at += chunks[i].length;
  }
  return out;
}

/**
 * The most bytes read from one file or stream given to the CLI (a flow, a config, `--input`,
 * `--inputs`, `--variables`, `--overrides`, `--data`, stdin): 512 MiB, about the longest text V8
 * can hold anyway. Past it the read stops, so a device (`/dev/zero`), a FIFO or a pipe that never
 * ends, or a huge file cannot fill the memory (they took 3-4 GB in 30 s, and on).
 */
export const MAX_READ_FILE_BYTES = 512 * 1024 * 1024;

/** A file or stream longer than {@linkcode MAX_READ_FILE_BYTES}; the message says how long. */
export class ReadTooLargeError extends Error {
  override name = "ReadTooLargeError";
  constructor(readonly limit: number) {
    super(
      `it has more than ${limit} bytes (${limit / 1024 / 1024} MiB), the most stepflow reads ` +
        "from one file or stream: give a smaller file (a device or a pipe that never ends is " +
        "read up to there)",
    );
  }
}

/**
 * Reads the file at `path` (a regular file, a device, a FIFO) to its end, holding at most `limit`
 * bytes. A regular file's size is checked before reading it.
 * @throws {ReadTooLargeError} past `limit`; what `Deno.open`/`Deno.stat`/reading throw (NotFound,
 * IsADirectory, NotCapable, ...).
 */
export async function readFileBounded(
  path: string,
  limit = MAX_READ_FILE_BYTES,
): Promise<Uint8Array<ArrayBuffer>> {
  const info = await Deno.stat(path);
  if (info.isDirectory) throw new Deno.errors.IsADirectory(`Is a directory: '${path}'`);
  if (info.isFile) {
    if (info.size > limit) throw new ReadTooLargeError(limit);
    const bytes = await Deno.readFile(path);
    // a file that grew while it was read
    if (bytes.length > limit) throw new ReadTooLargeError(limit);
    return bytes;
  }
  const file = await Deno.open(path, { read: true });
  const read = await readBounded(file.readable, limit);
  if (read.over) throw new ReadTooLargeError(limit);
  return read.bytes;
}
