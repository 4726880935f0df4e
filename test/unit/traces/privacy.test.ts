/**
 * Privacy mode strips every content field, whatever the destination type: the prompt and the
 * output text are searched for in the exact bytes each destination received.
 */
import { env } from "cloudflare:workers";
import { HttpResponse } from "msw";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Target } from "../../../src/traces/destination-config";
import { deliverToDestination } from "../../../src/traces/delivery";
import type { Destination } from "../../../src/traces/destination-store";
import { offloadContent } from "../../../src/traces/content";
import type { Trace } from "../../../src/traces/schema";
import { mswServer } from "../../helpers";
import { exampleTrace, sink } from "./fixtures";

beforeAll(() => mswServer.listen({ onUnhandledRequest: "error" }));
afterEach(() => mswServer.resetHandlers());
afterAll(() => mswServer.close());

const PROMPT = "PROMPT-MARKER-7f3a";
const OUTPUT = "OUTPUT-MARKER-91bc";
const REASONING = "REASONING-MARKER-55de";
const TOOL_ARGS = "TOOL-ARGS-MARKER-c0ff";

function destination(target: Target, privacyMode: boolean): Destination {
  return { workspaceId: "ws-privacy", id: `d-${target.type}`, name: null, enabled: true, filter: { samplingRate: 1, apiKeyIds: null }, privacyMode, target, problem: null };
}

/** A trace whose content has a marker in every content field. */
function richTrace(): Trace {
  return exampleTrace({
    workspace_id: "ws-privacy",
    content: {
      input: [
        { role: "user", content: [{ type: "text", text: `Look: ${PROMPT}` }] },
        { role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "lookup", arguments: `{"q":"${TOOL_ARGS}"}` } }] },
        { role: "tool", tool_call_id: "call_1", content: `result ${PROMPT}` },
      ],
      output: { text: `Answer ${OUTPUT}`, reasoning: `thinking ${REASONING}`, tool_calls: [] },
    },
  });
}

const targets: Array<{ name: string; target: Target; url: string | null }> = [
  { name: "webhook", target: { type: "webhook", url: "https://hooks.sink.test/private", headers: {}, signingSecret: "whsec_privacy_0123456789" }, url: "https://hooks.sink.test/private" },
  { name: "otlp", target: { type: "otlp", endpoint: "https://otlp.sink.test", headers: {} }, url: "https://otlp.sink.test/v1/traces" },
  { name: "langfuse", target: { type: "langfuse", baseUrl: "https://langfuse.sink.test", publicKey: "pk-lf-1", secretKey: "sk-lf-secret" }, url: "https://langfuse.sink.test/api/public/ingestion" },
  {
    name: "s3 (SigV4)",
    target: { type: "s3", via: "sigv4", endpoint: "https://s3.sink.test", bucket: "traces", region: "auto", prefix: "p/", accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret-access-key-example" },
    url: null,
  },
  { name: "s3 (R2 binding)", target: { type: "s3", via: "binding", prefix: "privacy-test/" }, url: null },
];

/** Deliver to one target and return every byte it received. */
async function deliveredBytes(target: Target, privacyMode: boolean, trace: Trace): Promise<string> {
  const bodies: string[] = [];
  if (target.type === "s3" && target.via === "binding") {
    const prefix = `${target.prefix}${privacyMode ? "private" : "open"}-${trace.generation_id}/`;
    const outcomes = await deliverToDestination(env, destination({ ...target, prefix }, privacyMode), [trace]);
    expect(outcomes[0]?.ok).toBe(true);
    const listed = await env.TRACE_ARCHIVE.list({ prefix });
    for (const object of listed.objects) bodies.push((await (await env.TRACE_ARCHIVE.get(object.key))?.text()) ?? "");
    expect(bodies).toHaveLength(1);
    return bodies.join("\n");
  }
  const url = target.type === "s3" ? /^https:\/\/s3\.sink\.test\// : (targets.find((t) => t.target === target)?.url ?? "");
  const hits = sink(url, () => (target.type === "langfuse" ? HttpResponse.json({ successes: [], errors: [] }, { status: 207 }) : new HttpResponse("ok")));
  const outcomes = await deliverToDestination(env, destination(target, privacyMode), [trace]);
  expect(outcomes[0]?.ok).toBe(true);
  expect(hits.length).toBeGreaterThan(0);
  return hits.map((h) => h.body).join("\n");
}

describe("privacy mode", () => {
  for (const { name, target } of targets) {
    it(`strips every content field from ${name} deliveries`, async () => {
      const open = await deliveredBytes(target, false, richTrace());
      // The control: without privacy mode the same delivery carries the content.
      expect(open).toContain(PROMPT);
      expect(open).toContain(OUTPUT);

      const closed = await deliveredBytes(target, true, richTrace());
      for (const marker of [PROMPT, OUTPUT, REASONING, TOOL_ARGS]) expect(closed).not.toContain(marker);
      expect(closed).toContain("gpt-4o-mini"); // metadata still arrives
    });
  }

  it("does not deliver content kept in R2 to a private destination", async () => {
    const trace = richTrace();
    const referenced = await offloadContent(env.TRACE_CONTENT, trace, trace.content ?? { input: [], output: { text: null } });
    const hook = targets[0]?.target;
    if (!hook) throw new Error("no webhook target");
    const closed = await deliveredBytes(hook, true, referenced);
    expect(closed).not.toContain(PROMPT);
    expect(closed).not.toContain("content_ref");
    const open = await deliveredBytes(hook, false, referenced);
    expect(open).toContain(PROMPT);
  });
});
