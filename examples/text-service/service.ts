/**
 * A step service for text work, built with the Stepflow TypeScript SDK.
 *
 * stdio (started by the engine, see stepflow-config.yml):
 *   deno run --quiet service.ts
 * HTTP (start it first, see stepflow-config-http.yml):
 *   deno run --quiet --allow-net=127.0.0.1 examples/text-service/service.ts --http --port 8717
 */
import { z } from "zod";
import { StepflowServer } from "../../sdk/mod.ts";

const STOPWORDS = new Set(
  ("a an and are as at be but by each every for from had has have he her his how in into is it " +
    "its let made many most needed never of on once or out over same still that the their them " +
    "they this through to too was were what when which who will with without")
    .split(" "),
);

/** Lower-case words of a text (letters, digits and inner apostrophes). */
function words(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}]+(?:'[\p{L}]+)?/gu) ?? [];
}

const Text = z.object({ text: z.string().describe("The text to work on") });

const server = new StepflowServer({ name: "text-service" });

server.component({
  name: "split_sentences",
  description: "Splits a text into sentences (a title line counts as one)",
  input: Text,
  output: z.object({ sentences: z.array(z.string()), count: z.number().int() }),
  handler: ({ text }) => {
    const sentences = text.split(/\n\s*\n/).flatMap((para) =>
      para.replace(/\s+/g, " ").trim().match(/[^.!?]+(?:[.!?]+|$)/g) ?? []
    ).map((s) => s.trim()).filter((s) => s !== "");
    return { sentences, count: sentences.length };
  },
});

server.component({
  name: "word_stats",
  description: "Counts words, distinct words and paragraphs, and the mean word length",
  input: Text,
  output: z.object({
    words: z.number().int(),
    distinct_words: z.number().int(),
    paragraphs: z.number().int(),
    mean_word_length: z.number(),
  }),
  handler: ({ text }) => {
    const ws = words(text);
    const letters = ws.reduce((n, w) => n + w.length, 0);
    return {
      words: ws.length,
      distinct_words: new Set(ws).size,
      paragraphs: text.split(/\n\s*\n/).filter((p) => p.trim() !== "").length,
      mean_word_length: Math.round((letters / Math.max(ws.length, 1)) * 100) / 100,
    };
  },
});

server.component({
  name: "keywords",
  description: "The most frequent words that are not stopwords, most frequent first",
  input: Text.extend({ top: z.number().int().positive().default(5) }),
  output: z.object({ keywords: z.array(z.object({ word: z.string(), count: z.number() })) }),
  handler: ({ text, top }) => {
    const counts = new Map<string, number>();
    for (const w of words(text)) {
      if (w.length > 2 && !STOPWORDS.has(w)) counts.set(w, (counts.get(w) ?? 0) + 1);
    }
    const keywords = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, top).map(([word, count]) => ({ word, count }));
    return { keywords };
  },
});

server.component({
  name: "store_report",
  description: "Stores a report as a blob through the engine and returns its id",
  input: z.object({ title: z.string(), report: z.record(z.string(), z.unknown()) }),
  output: z.object({ blob_id: z.string() }),
  // uses its context: over HTTP this component answers with an SSE stream
  handler: async ({ title, report }, ctx) => ({
    blob_id: await ctx.putBlob({ title, ...report }),
  }),
});

await server.run();
