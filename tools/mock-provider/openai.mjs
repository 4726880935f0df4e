// @ts-check
/**
 * @module mock-provider/openai
 * OpenAI chat completions (also Azure's deployment paths and every OpenAI-compatible vendor):
 * request → {@link Conversation}, {@link Plan} → `chat.completion` JSON or `chat.completion.chunk`
 * SSE, and OpenAI's error envelope.
 */
import { contentText, isRecord, wordChunk } from "./plan.mjs";

/** @typedef {import("./plan.mjs").Conversation} Conversation */
/** @typedef {import("./plan.mjs").Plan} Plan */
/** @typedef {import("./family.mjs").Route} Route */
/** @typedef {import("./family.mjs").Family} Family */

const FINISH = { stop: "stop", length: "length", tool_calls: "tool_calls" };

/** @param {Plan} plan */
function usage(plan) {
  return {
    prompt_tokens: plan.promptTokens,
    completion_tokens: plan.completionTokens,
    total_tokens: plan.promptTokens + plan.completionTokens,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0 },
  };
}

/** @param {string} args */
function splitInTwo(args) {
  const half = Math.ceil(args.length / 2);
  return [args.slice(0, half), args.slice(half)];
}

/** @type {Family} */
export const openai = {
  name: "openai",

  authorized(headers) {
    const auth = headers.authorization;
    return (typeof auth === "string" && /^Bearer \S+/.test(auth)) || typeof headers["api-key"] === "string";
  },

  read(body, route) {
    const messages = Array.isArray(body.messages) ? body.messages.filter(isRecord) : [];
    let promptChars = 0;
    let lastUserText = "";
    for (const m of messages) {
      const text = contentText(m.content);
      promptChars += text.length;
      if (m.role === "user") lastUserText = text;
    }
    /** @type {string[] | null} */
    let toolResults = null;
    if (messages.at(-1)?.role === "tool") {
      let first = messages.length - 1;
      while (first > 0 && messages[first - 1]?.role === "tool") first--;
      toolResults = messages.slice(first).map((m) => contentText(m.content));
    }
    const choice = body.tool_choice;
    let tools = (Array.isArray(body.tools) ? body.tools : [])
      .filter((t) => isRecord(t) && isRecord(t.function) && typeof t.function.name === "string")
      .map((t) => ({ name: t.function.name, schema: t.function.parameters }));
    if (choice === "none") tools = [];
    else if (isRecord(choice) && isRecord(choice.function)) {
      const forced = choice.function.name;
      tools = tools.filter((t) => t.name === forced);
    }
    const max = body.max_completion_tokens ?? body.max_tokens;
    return {
      model: typeof body.model === "string" ? body.model : (route.model ?? "mock-model"),
      stream: body.stream === true,
      lastUserText,
      toolResults,
      tools,
      parallelTools: body.parallel_tool_calls !== false,
      promptChars,
      maxTokens: typeof max === "number" ? max : null,
      thinking: false,
    };
  },

  json(plan, seq) {
    /** @type {Record<string, unknown>} */
    const message = { role: "assistant", content: plan.calls.length ? null : plan.words.join(" "), refusal: null };
    if (plan.calls.length) {
      message.tool_calls = plan.calls.map((c) => ({ id: c.id, type: "function", function: { name: c.name, arguments: c.args } }));
    }
    return JSON.stringify({
      id: `chatcmpl-mock-${seq}`,
      object: "chat.completion",
      created: Math.floor(Date.now() / 1000),
      model: plan.model,
      choices: [{ index: 0, message, logprobs: null, finish_reason: FINISH[plan.finish] }],
      usage: usage(plan),
      system_fingerprint: "fp_mock",
    });
  },

  events(plan, seq, body) {
    const head = `data: {"id":"chatcmpl-mock-${seq}","object":"chat.completion.chunk","created":${Math.floor(Date.now() / 1000)},"model":${JSON.stringify(plan.model)},"system_fingerprint":"fp_mock","choices":`;
    const open = `${head}[{"index":0,"delta":`;
    const tail = `,"logprobs":null,"finish_reason":null}]}\n\n`;
    /** @type {string[]} */
    const events = [`${open}{"role":"assistant","content":"","refusal":null}${tail}`];
    for (let i = 0; i < plan.words.length; i++) {
      events.push(`${open}{"content":${JSON.stringify(wordChunk(plan.words, i))}}${tail}`);
    }
    plan.calls.forEach((call, index) => {
      const start = { index, id: call.id, type: "function", function: { name: call.name, arguments: "" } };
      events.push(`${open}{"tool_calls":[${JSON.stringify(start)}]}${tail}`);
      for (const piece of splitInTwo(call.args)) {
        events.push(`${open}{"tool_calls":[{"index":${index},"function":{"arguments":${JSON.stringify(piece)}}}]}${tail}`);
      }
    });
    events.push(`${open}{},"logprobs":null,"finish_reason":"${FINISH[plan.finish]}"}]}\n\n`);
    const options = body.stream_options;
    if (isRecord(options) && options.include_usage === true) {
      events.push(`${head}[],"usage":${JSON.stringify(usage(plan))}}\n\n`);
    }
    events.push("data: [DONE]\n\n");
    return { events, head: 1 };
  },

  error(status, message) {
    const [type, code] =
      status === 401
        ? ["invalid_request_error", "invalid_api_key"]
        : status === 429
          ? ["requests", "rate_limit_exceeded"]
          : status >= 500
            ? ["server_error", null]
            : ["invalid_request_error", null];
    return JSON.stringify({ error: { message, type, param: null, code } });
  },

  errorEvent(message) {
    return `data: ${JSON.stringify({ error: { message, type: "server_error", param: null, code: null } })}\n\n`;
  },

  malformed: { json: '{"id":"chatcmpl-mock","choices":[{"message":', sse: 'data: {"id":"chatcmpl-mock","choices":[{"delta":\n\n' },
};
