/**
 * @module traces/test-trace
 * The trace the admin API's test send delivers: realistic in every field, obviously a test in its
 * model, ids and content, so an operator can find it in their tool and delete it.
 */
import { TRACE_VERSION, type Trace } from "./schema";

export function testTrace(workspaceId: string, now = Date.now()): Trace {
  const suffix = crypto.randomUUID().replaceAll("-", "").slice(0, 16);
  return {
    v: TRACE_VERSION,
    generation_id: `gen-test-${suffix}`,
    request_id: `req-test-${suffix}`,
    trace: { trace_name: "switchyard destination test", metadata: { test: true } },
    session_id: null,
    user: null,
    workspace_id: workspaceId,
    key_id: "test",
    model: "switchyard/test",
    endpoint: { id: "test", provider: "switchyard", provider_name: "Switchyard", upstream_model: "test", region: "global" },
    region: "global",
    started_at: now - 420,
    timings: { latency_ms: 420, ttft_ms: 120, generation_ms: 300 },
    tokens: { prompt: 12, completion: 9, cached: 0, cache_write: 0, reasoning: 0 },
    cost: { charged_micros: 0, upstream_micros: 0 },
    finish_reason: "stop",
    native_finish_reason: "stop",
    streamed: false,
    cancelled: false,
    byok: false,
    status: 200,
    error: null,
    attempts: [{ provider: "switchyard", model: "test", status: 200, error_type: null, ms: 420 }],
    zero_retention: false,
    content: {
      input: [{ role: "user", content: "This is a test trace from Switchyard." }],
      output: { text: "Test received: this destination is configured." },
    },
  };
}
